#!/usr/bin/perl
# Redis absent at startup: requests are served as without tracing, spans
# wait in the (bounded) queue, the overflow is dropped and counted; once
# Redis comes up the exporter connects by itself and the queue drains.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(:all);

my $redis_port = free_port();
my $b = start_backend();
# the same locations traced (%%PORT%%) and not (%%PORT2%%): the measure of
# what tracing adds to a request while Redis is away
my $locations = <<'EOF';
        location /api {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /static {
            return 200 "ok\n";
        }
        location = /metrics {
            edgetrace off;
            edgetrace_status;
        }
EOF
my $ngx = start_nginx(redis => $redis_port,
                      conf => <<'EOF' . traced_and_not($locations));
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace_queue_size 4k;
    edgetrace_redis_connect_timeout 200ms;
    edgetrace on;

EOF

sub invariant {
    my ($m, $what) = @_;
    is($m->{edgetrace_spans_total},
       $m->{edgetrace_spans_exported_total}
       + $m->{'edgetrace_spans_dropped_total{reason="queue_full"}'}
       + $m->{'edgetrace_spans_dropped_total{reason="redis_error"}'}
       + $m->{edgetrace_spans_queued},
       "$what: spans_total = exported + dropped + queued");
}

my $t0 = Time::HiRes::time();

# --- requests are served normally, and as fast as without tracing
my ($fast, $sent, $wrong, $say) =
    keeps_up($ngx->port, $ngx->ports->{PORT2}, 100,
             [['/static', 200], ['/api/x', 200]]);
is($wrong, 0, 'every request answered 200 without Redis');
ok($fast, "no request waited on Redis: $say");

my $m = metrics($ngx->port);
my $spans = $sent / 2 + $sent / 2 * 2;
is($m->{edgetrace_requests_total}, $sent, 'traced requests counted');
is($m->{edgetrace_spans_total}, $spans, 'spans handed to the exporter');
is($m->{edgetrace_spans_exported_total}, 0, 'nothing exported');
ok($m->{'edgetrace_spans_dropped_total{reason="queue_full"}'} > 0,
   'a 4k queue overflows: queue_full drops counted ('
   . $m->{'edgetrace_spans_dropped_total{reason="queue_full"}'} . ')');
ok($m->{edgetrace_spans_queued} > 0,
   "spans wait in the queue ($m->{edgetrace_spans_queued})");
ok($m->{edgetrace_spans_queued} < $spans, 'the queue is bounded');
is($m->{edgetrace_redis_connected}, 0, 'not connected');
ok($m->{edgetrace_redis_errors_total} > 0,
   "failed connects counted ($m->{edgetrace_redis_errors_total})");
invariant($m, 'Redis absent');
my $queued = $m->{edgetrace_spans_queued};
my $dropped = $m->{'edgetrace_spans_dropped_total{reason="queue_full"}'};

# --- Redis comes up on that port: export resumes without a restart
Time::HiRes::sleep(1);
my $redis = start_redis(port => $redis_port);
my $t1 = Time::HiRes::time();
ok(wait_until(sub {
       my $m = metrics($ngx->port);
       $m->{edgetrace_spans_queued} == 0
           && $m->{edgetrace_redis_connected} == 1 }, 7, 0.1),
   'the queue drains once Redis is up');
my $took = Time::HiRes::time() - $t1;
ok($took < 6, sprintf('within the backoff bound (%.1fs)', $took));

$m = metrics($ngx->port);
is($m->{edgetrace_spans_exported_total}, $queued,
   'every queued span exported');
is($m->{'edgetrace_spans_dropped_total{reason="queue_full"}'}, $dropped,
   'no more drops');
is($m->{edgetrace_redis_connected}, 1, 'connected');
Edgetrace::Test::counters_match_redis($ngx, $redis, what => 'after recovery',
                                      dropped => $dropped);
is(stream_len($redis->port), $queued, 'the stream has the queued spans');

# the spans in the stream are whole entries
my @e = stream_entries($redis->port, undef, count => $queued);
is(scalar(grep { $_->{v} eq '1' && $_->{trace_id} && $_->{kind} } @e),
   $queued, 'whole entries');

# --- new traffic flows straight through
http_get($ngx->port, '/static');
ok(wait_until(sub { stream_len($redis->port) == $queued + 1 }, 2),
   'a new span reaches Redis');

# --- Redis restarts: the lost connection is retried and counted
$m = Edgetrace::Test::counters_match_redis($ngx, $redis,
                                           what => 'before the restart',
                                           dropped => $dropped);
my $base = $m;
my $before = $m->{edgetrace_redis_reconnects_total};
$redis->stop;
http_get($ngx->port, '/static') for 1 .. 3;
Time::HiRes::sleep(0.3);
$redis = start_redis(port => $redis_port);
ok(wait_until(sub {
       my $m = metrics($ngx->port);
       $m->{edgetrace_spans_queued} == 0
           && $m->{edgetrace_redis_connected} == 1
           && $m->{edgetrace_redis_reconnects_total} > $before }, 7, 0.1),
   'reconnected after Redis restarted');
http_get($ngx->port, '/static');
ok(wait_until(sub { stream_len($redis->port) >= 1 }, 2),
   'spans flow into the new Redis');
$m = metrics($ngx->port);
is($m->{edgetrace_redis_reconnects_total}, $before + 1, 'one reconnect counted');
# the new Redis holds what was exported since the old one went
Edgetrace::Test::counters_match_redis($ngx, $redis, what => 'after the restart',
                                      base => $base);

# --- the trouble was logged rate-limited, not once per request
my $elapsed = Time::HiRes::time() - $t0;
my @lines = grep { /edgetrace/ && /redis/i && /\[(error|warn|crit|alert)\]/ }
            split /\n/, $ngx->error_log;
ok(@lines >= 1, 'the outage was logged');
ok(@lines <= 2 * ($elapsed + 1),
   sprintf('rate-limited: %d lines in %.1fs', scalar @lines, $elapsed));
diag(join "\n", @lines[0 .. ($#lines < 3 ? $#lines : 3)]) if $ENV{VERBOSE};
like($lines[0] // '', qr/127\.0\.0\.1:$redis_port/, 'the line says where');
ok(!grep({ /edgetrace: edgetrace:/ } @lines), 'the module named once');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
