#!/usr/bin/perl
# Graceful stop: `nginx -s quit` (SIGQUIT) flushes every queued span before
# the workers exit; with Redis gone, the exit is bounded by
# edgetrace_flush_timeout (032-flush-timeout.t: a stalled Redis).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(:all);

my $redis = start_redis();

# the longest flush interval there is (1s): the spans of the requests just
# sent are still queued when the signal comes
my $conf = <<'EOF';
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 1s;
    edgetrace_flush_timeout 1s;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;

        location / {
            return 200 "ok\n";
        }
        location = /metrics {
            edgetrace off;
            edgetrace_status;
        }
    }
EOF

for my $workers (1, 2) {
    my $key = "quit$workers";
    (my $c = $conf) =~ s/(edgetrace on;)/$1\n    edgetrace_stream $key;/;
    my $ngx = start_nginx(redis => $redis, workers => $workers, conf => $c);
    wait_until(sub {
        metrics($ngx->port)->{edgetrace_redis_connected} == $workers }, 5);

    http_get($ngx->port, "/r$_") for 1 .. 30;
    my $m = metrics($ngx->port);
    is($m->{edgetrace_spans_total}, 30, "$workers worker(s): 30 spans");
    my $early = stream_len($redis->port, $key);
    note("$early of 30 already in the stream before the signal");

    my $t = Time::HiRes::time();
    my $st = $ngx->quit(timeout => 10);
    my $took = Time::HiRes::time() - $t;
    ok(defined $st, "$workers worker(s): the master exited");
    is($st, 0, "$workers worker(s): exit status 0");
    ok($took < 3, sprintf("$workers worker(s): exited in %.2fs", $took));

    is(stream_len($redis->port, $key), 30,
       "$workers worker(s): every span is in the stream after the exit");
    my @e = stream_entries($redis->port, $key, count => 30, timeout => 0);
    is_deeply([sort map { $_->{'url.path'} } @e],
              [sort map { "/r$_" } 1 .. 30], "$workers worker(s): the 30 spans");
    is(scalar $ngx->crashes, 0, "$workers worker(s): no worker crashed");
}

# --- Redis gone: quit still ends, bounded by edgetrace_flush_timeout
my $dead = dead_port();
my $ngx = start_nginx(redis => $dead, conf => $conf);
http_get($ngx->port, "/r$_") for 1 .. 10;
is(metrics($ngx->port)->{edgetrace_spans_queued}, 10, 'Redis absent: queued');
my $t = Time::HiRes::time();
my $st = $ngx->quit(timeout => 10);
my $took = Time::HiRes::time() - $t;
ok(defined $st, 'Redis absent: the master exited');
ok($took < 4, sprintf('Redis absent: within the flush timeout (%.2fs)', $took));
like($ngx->error_log, qr/\Qexporter stopping: 10 spans dropped at exit: redis \E
                         \Qat 127.0.0.1:$dead unreachable\E/x,
     'Redis absent: the line says the 10 spans were dropped, Redis '
     . 'unreachable');
is(scalar $ngx->crashes, 0, 'Redis absent: no worker crashed');

done_testing;
