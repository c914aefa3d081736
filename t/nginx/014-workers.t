#!/usr/bin/perl
# Two workers: each has its own exporter; the status handler sums the
# counters over both, whichever worker serves it.  A reload keeps the sums
# and flushes the old workers' spans.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, workers => 2, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    server {
        # reuseport: the kernel spreads connections over both workers
        listen 127.0.0.1:%%PORT%% reuseport;

        location /pid {
            return 200 "$pid\n";
        }
        location /api {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location = /metrics {
            edgetrace off;
            edgetrace_status;
        }
    }
EOF

my @workers = $ngx->worker_pids;
is(scalar @workers, 2, 'two workers');

ok(wait_until(sub { metrics($ngx->port)->{edgetrace_redis_connected} == 2 },
              5), 'both workers connected to Redis');

my %served;
for (1 .. 40) {
    my $r = http_get($ngx->port, '/pid');
    chomp(my $pid = $r->{body});
    $served{$pid}++;
}
http_get($ngx->port, '/api/x') for 1 .. 10;
is(scalar keys %served, 2, 'both workers served requests: '
   . join(', ', map { "$_=$served{$_}" } sort keys %served));

my $spans = 40 + 10 * 2;
ok(wait_until(sub {
       metrics($ngx->port)->{edgetrace_spans_exported_total} == $spans }, 5),
   'every span exported');

# every worker answers the same sums
for (1 .. 6) {
    my $m = metrics($ngx->port);
    is($m->{edgetrace_requests_total}, 50, "scrape $_: requests summed");
    is($m->{edgetrace_spans_total}, $spans, "scrape $_: spans summed");
}
my $m = metrics($ngx->port);
is($m->{edgetrace_spans_exported_total}, $spans, 'exported summed');
is($m->{edgetrace_spans_queued}, 0, 'nothing queued');
is($m->{edgetrace_redis_connected}, 2, 'connected: one per worker');
Edgetrace::Test::counters_match_redis($ngx, $redis, what => 'at rest',
                                      dropped => 0);
is(stream_len($redis->port), $spans, 'the stream has every span');

# --- reload: the old workers flush, the counters keep their sums
http_get($ngx->port, '/pid') for 1 .. 10;
ok($ngx->reload, 'reloaded: new workers');
my @new = $ngx->worker_pids;
is(scalar @new, 2, 'two new workers');
ok(!grep({ my $n = $_; grep { $_ == $n } @workers } @new),
   'the old workers are gone');
is(stream_len($redis->port), $spans + 10,
   'the old workers flushed their spans before exiting');
ok(wait_until(sub { metrics($ngx->port)->{edgetrace_redis_connected} == 2 },
              5), 'connected: the new workers only');
$m = metrics($ngx->port);
is($m->{edgetrace_requests_total}, 60, 'requests_total kept over the reload');
is($m->{edgetrace_spans_exported_total}, $spans + 10,
   'exported kept over the reload');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
