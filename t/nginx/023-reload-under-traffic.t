#!/usr/bin/perl
# `nginx -s reload` twenty times under traffic: every request answered,
# every span of the old workers flushed before they exit (nothing dropped,
# nothing queued at rest), the counters summed across generations, and the
# master leaks no file descriptor, thread or memory.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use POSIX ();
use Edgetrace::Test qw(:all);

my $reloads = 20;

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, workers => 2, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 1s;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /api {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location = /fast {
            return 200 "fast\n";
        }
        location /metrics {
            edgetrace off;
            edgetrace_status;
        }
    }
EOF

sub master_state { $ngx->proc_state }

# one reload first: the master's own first-reload allocations settle
ok($ngx->reload, 'first reload');
my $before = master_state();

# traffic from a child, for as long as the reloads take
pipe(my $rd, my $wr) or die "pipe: $!";
my $child = fork // die "fork: $!";
if ($child == 0) {
    close $rd;
    my ($n, $wrong) = (0, 0);
    my $until = Time::HiRes::time() + 60;
    while (Time::HiRes::time() < $until && !-e "$ngx->{prefix}/stop") {
        my $path = $n % 2 ? '/api/x' : '/fast';
        my $r = http_get($ngx->port, $path);
        $wrong++ if $r->{status} != 200;
        $n++;
    }
    print $wr "$n $wrong\n";
    close $wr;
    POSIX::_exit(0);
}
close $wr;

my $done = 0;
for my $i (1 .. $reloads) {
    Time::HiRes::sleep(0.1);
    $done++ if $ngx->reload;
}
is($done, $reloads, "$reloads reloads under traffic");

open my $stop, '>', "$ngx->{prefix}/stop" or die "stop: $!";
close $stop;
my ($n, $wrong) = split ' ', <$rd> // '0 -1';
waitpid($child, 0);
ok($n > 100, "traffic: $n requests");
is($wrong, 0, 'traffic: every request answered 200');

# at rest: every span of every generation exported, nothing lost
my $m;
ok(wait_until(sub {
       $m = metrics($ngx->port);
       $m->{edgetrace_spans_queued} == 0
           && $m->{edgetrace_spans_exported_total}
              == $m->{edgetrace_spans_total};
   }, 15), 'at rest: everything exported');
is($m->{'edgetrace_spans_dropped_total{reason="queue_full"}'}, 0,
   'nothing dropped: queue_full');
is($m->{'edgetrace_spans_dropped_total{reason="redis_error"}'}, 0,
   'nothing dropped: redis_error (old workers flushed before exiting)');
ok($m->{edgetrace_requests_total} >= $n,
   'requests summed over every generation of workers');
is($m->{edgetrace_redis_connected}, 2, 'only the live workers connected');
is(stream_len($redis->port), $m->{edgetrace_spans_exported_total},
   'the stream holds every exported span');

my $after = master_state();
# the master may still hold the channels of workers it has not reaped at
# the first measure: a leak is growth
ok($after->{fds} <= $before->{fds}, "master fds: $before->{fds} before, "
                                    . "$after->{fds} after");
is($after->{threads}, $before->{threads}, 'master threads: unchanged');
if ($ENV{EDGETRACE_NGINX_PRELOAD}) {
    # AddressSanitizer keeps freed memory in quarantine: RSS says nothing
    note("master RSS under the sanitizers: $before->{rss} kB before, "
         . "$after->{rss} kB after (not asserted)");
} else {
    ok($after->{rss} - $before->{rss} < 2048,
       "master RSS: $before->{rss} kB before, $after->{rss} kB after");
}

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
