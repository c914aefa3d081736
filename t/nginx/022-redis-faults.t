#!/usr/bin/perl
# A sick Redis never reaches a request: Redis stalled by DEBUG SLEEP, then
# killed in the middle of traffic, then restarted on the same port.  Every
# request is answered as it would be untraced and quickly; the counters add
# up exactly; export resumes without a restart; no worker crashes.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use POSIX ();
use Edgetrace::Test qw(:all);

my @debug = ('--enable-debug-command', 'local');
my $redis = start_redis(args => \@debug);
my $port = $redis->port;
my $b = start_backend();
# the same locations traced (%%PORT%%) and not (%%PORT2%%): the measure of
# what tracing adds to a request while Redis is sick
my $locations = <<'EOF';
        location /api {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location = /fast {
            return 200 "fast\n";
        }
        location = /missing {
            return 404;
        }
        location /metrics {
            edgetrace off;
            edgetrace_status;
        }
EOF
my $ngx = start_nginx(redis => $redis, workers => 2,
                      conf => <<'EOF' . traced_and_not($locations));
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace_redis_timeout 10s;
    edgetrace on;

EOF

my @PATHS = (['/fast', 200], ['/api/x', 200], ['/missing', 404]);

sub send_traffic { Edgetrace::Test::traffic($ngx->port, $_[0], \@PATHS) }

# 100 requests to each server in turn: (kept up with the untraced server,
# answers with another status, the numbers)
sub paired {
    my ($fast, $sent, $wrong, $say) =
        keeps_up($ngx->port, $ngx->ports->{PORT2}, 100, \@PATHS);
    return ($fast, $wrong, $say);
}

# at rest the counters add up and match the stream of the running Redis
sub invariant {
    my ($what, %o) = @_;
    return Edgetrace::Test::counters_match_redis($ngx, $redis, what => $what,
                                                 %o);
}

# --- healthy
my ($n, $wrong) = send_traffic(1);
ok($n > 20, "healthy: $n requests");
is($wrong, 0, 'healthy: every answer as untraced');
my $m = invariant('healthy', dropped => 0);
is($m->{edgetrace_spans_exported_total}, $m->{edgetrace_spans_total},
   'healthy: everything exported');
is(stream_len($port), $m->{edgetrace_spans_exported_total},
   'healthy: the stream holds what was acknowledged');

# --- stalled: DEBUG SLEEP 3 in a child, traffic meanwhile
my $stall = stall_redis($port, 3);
Time::HiRes::sleep(0.2);
my ($fast, $say);
($fast, $wrong, $say) = paired();
my $stalled = $stall->();
ok($stalled && $stalled >= 2.9, sprintf('the stall happened (%.1fs)',
                                       $stalled // 0));
is($wrong, 0, 'stalled: every answer as untraced');
ok($fast, "stalled: as fast as untraced: $say");
$m = invariant('after the stall', dropped => 0);

# --- killed in the middle of traffic
my $base = $m;
my $before = $m->{edgetrace_spans_exported_total};
my $reconnects = $m->{edgetrace_redis_reconnects_total};
Edgetrace::Test::stop_pid($redis->pid, 'KILL');
($fast, $wrong, $say) = paired();
is($wrong, 0, 'Redis killed: every answer as untraced');
ok($fast, "Redis killed: as fast as untraced: $say");
$m = metrics($ngx->port);
is($m->{edgetrace_redis_connected}, 0, 'Redis killed: no worker connected');

# --- restarted on the same port: export resumes by itself
$redis = start_redis(port => $port, args => \@debug);
($n, $wrong) = send_traffic(1);
is($wrong, 0, 'Redis back: every answer as untraced');
ok(wait_until(sub {
       $m = metrics($ngx->port);
       $m->{edgetrace_redis_connected} == 2
           && $m->{edgetrace_spans_exported_total} > $before;
   }, 15), 'Redis back: both workers reconnected and export resumed');
ok($m->{edgetrace_redis_reconnects_total} >= $reconnects + 2,
   'Redis back: the reconnects are counted');
# the new Redis holds what was exported since the old one was killed
$m = invariant('after the restart', base => $base);
ok(stream_len($port) > 0, 'Redis back: new entries in the new stream');

unlike($ngx->error_log, qr/exited on signal|worker process \d+ exited/,
       'no worker crashed');
is(scalar $ngx->crashes, 0, 'no crash reported');

done_testing;
