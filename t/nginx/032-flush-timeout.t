#!/usr/bin/perl
# edgetrace_flush_timeout bounds how long an exiting worker waits for a
# Redis that is connected but does not answer (DEBUG SLEEP, from another
# connection): `nginx -s quit` and `nginx -s reload` end no sooner than
# about the timeout while spans wait, and not much later, and the line
# logged says how long the worker waited.  With Redis answering, the queued
# spans are in Redis by the time the old worker is gone; with Redis
# unreachable there is nothing to wait for, and the line says so.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(:all);

# longer than the bound below: Redis sleeps until the worker has exited
my $STALL = 6;

my $redis = start_redis(args => ['--enable-debug-command', 'local']);
my $port = $redis->port;

# a long redis_timeout: only the flush timeout ends the wait
my $CONF = <<'EOF';
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace_flush_timeout 1s;
    edgetrace_redis_timeout 30s;
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

sub start {
    my ($conf, %o) = @_;
    my $ngx = start_nginx(redis => $o{redis} // $redis, conf => $conf);
    if ($o{connected} // 1) {
        wait_until(sub { metrics($ngx->port)->{edgetrace_redis_connected}
                         == 1 }, 5)
            or die "the worker did not connect to Redis\n";
    }
    return $ngx;
}

# $n spans handed to the exporter and counted as queued (in the queue or
# written to a Redis that does not answer)
sub spans_waiting {
    my ($ngx, $n, $what) = @_;
    my $q;
    http_get($ngx->port, "/w$_") for 1 .. $n;
    ok(wait_until(sub {
           $q = metrics($ngx->port)->{edgetrace_spans_queued};
           $q == $n }, 3), "$what: $n spans wait for Redis ($q)");
}

# the one line an exiting worker wrote about what it dropped
sub exit_line {
    my ($ngx, $what) = @_;
    my @l = grep { /exporter stopping/ } split /\n/, $ngx->error_log;
    is(scalar @l, 1, "$what: one line at exit");
    return $l[0] // '';
}

sub stalled_exit_ok {
    my ($ngx, $took, $what) = @_;
    ok($took >= 0.8 && $took < 3,
       sprintf("$what: the worker waited about the flush timeout, 1s "
               . "(exited after %.2fs)", $took));
    my $line = exit_line($ngx, $what);
    like($line, qr/\Qexporter stopping: 10 spans dropped at exit: not \E
                   \Qacknowledged by redis at 127.0.0.1:$port within the \E
                   \Qflush timeout (waited \E\d+\Q ms; 10 of them were \E
                   \Qwritten, redis may still store those)\E/x,
         "$what: the line says the 10 spans were not acknowledged");
    my ($ms) = $line =~ /waited (\d+) ms/;
    ok(defined $ms && $ms >= 1000 && $ms < 2000,
       "$what: and that it waited the flush timeout (" . ($ms // '?')
       . ' ms)');
}

# --- quit, Redis connected and stalled
{
    my $what = 'quit, Redis stalled';
    my $ngx = start($CONF);
    my $stall = Edgetrace::Test::redis_stalled($port, $STALL);
    spans_waiting($ngx, 10, $what);

    my $t = Time::HiRes::time();
    my $st = $ngx->quit(timeout => 15);
    my $took = Time::HiRes::time() - $t;
    ok(defined $st, "$what: the master exited");
    stalled_exit_ok($ngx, $took, $what);

    my $slept = $stall->();
    ok($slept >= $STALL - 0.5,
       sprintf("$what: Redis slept all along (%.1fs)", $slept));
    # what the line says: Redis may still store what was written to it
    ok(wait_until(sub { stream_len($port) == 10 }, 3),
       "$what: Redis, awake, stored the 10 spans written to it");
    is(scalar $ngx->crashes, 0, "$what: no worker crashed");
}

# --- reload, Redis connected and stalled: the old worker's exit is bounded
{
    my $what = 'reload, Redis stalled';
    redis($port)->del('edgetrace:spans');
    my $ngx = start($CONF);
    my $stall = Edgetrace::Test::redis_stalled($port, $STALL);
    spans_waiting($ngx, 10, $what);

    my @old = $ngx->worker_pids;
    my $t = Time::HiRes::time();
    kill 'HUP', $ngx->pid or die "HUP: $!";
    ok(Edgetrace::Test::pids_gone(15, @old), "$what: the old worker exited");
    my $took = Time::HiRes::time() - $t;
    stalled_exit_ok($ngx, $took, $what);

    my %old = map { $_ => 1 } @old;
    ok((grep { !$old{$_} } $ngx->worker_pids) == 1,
       "$what: a new worker runs");
    $stall->();
    is(scalar $ngx->crashes, 0, "$what: no worker crashed");
    $ngx->stop;
}

# --- reload, Redis answering: the queued spans arrive before the old
# worker is gone (a 1s flush interval: they are still queued at the HUP)
{
    my $what = 'reload, Redis answering';
    redis($port)->del('edgetrace:spans');
    (my $conf = $CONF) =~ s/flush_interval 50ms/flush_interval 1s/;
    my $ngx = start($conf);
    http_get($ngx->port, "/r$_") for 1 .. 30;
    my $early = stream_len($port);
    note("$early of 30 in the stream before the HUP");

    my @old = $ngx->worker_pids;
    my $t = Time::HiRes::time();
    kill 'HUP', $ngx->pid or die "HUP: $!";
    ok(Edgetrace::Test::pids_gone(15, @old), "$what: the old worker exited");
    my $took = Time::HiRes::time() - $t;
    is(stream_len($port), 30,
       "$what: the 30 spans are in Redis when the old worker is gone");
    ok($took < 3, sprintf("$what: without waiting for the flush timeout "
                          . "(%.2fs)", $took));
    is_deeply([grep { /exporter stopping/ } split /\n/, $ngx->error_log], [],
              "$what: nothing dropped at exit");
    $ngx->stop;
}

# --- quit, Redis unreachable: nothing to wait for, and the line says so
{
    my $what = 'quit, Redis unreachable';
    my $dead = dead_port();
    (my $conf = $CONF) =~ s/flush_timeout 1s/flush_timeout 3s/;
    my $ngx = start($conf, redis => $dead, connected => 0);
    spans_waiting($ngx, 10, $what);

    my $t = Time::HiRes::time();
    my $st = $ngx->quit(timeout => 15);
    my $took = Time::HiRes::time() - $t;
    ok(defined $st, "$what: the master exited");
    ok($took < 1.5, sprintf("$what: no wait for the 3s flush timeout "
                            . "(%.2fs)", $took));
    my $line = exit_line($ngx, $what);
    like($line, qr/\Qexporter stopping: 10 spans dropped at exit: \E
                   \Qredis at 127.0.0.1:$dead unreachable \E
                   \Q(Connection refused)\E/x,
         "$what: the line says Redis was unreachable");
    unlike($line, qr/within|waited/, "$what: and claims no wait");
}

done_testing;
