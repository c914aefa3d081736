#!/usr/bin/perl
# A sick Redis never reaches an httpd request, under each MPM: Redis absent
# at startup, stalled by DEBUG SLEEP, killed in the middle of traffic and
# restarted on the same port; `apachectl -k graceful` repeated under
# traffic loses no queued span and leaks no descriptor or thread in the
# parent; a graceful stop right after a burst flushes everything; no Redis
# connection at all when tracing is on nowhere.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use POSIX ();
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);

my @debug = ('--enable-debug-command', 'local');
# 20 graceful restarts as nginx's reload test has 20 reloads; 10 for the
# other MPMs
my %RESTARTS = (event => 20);
my $b = start_backend();

my $CONF = <<'EOF';
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTraceRedisTimeout 10s
EdgeTrace On
ProxyPass /api http://127.0.0.1:%%BACKEND%%/api
ProxyPass /s404 http://127.0.0.1:%%BACKEND%%/status/404
<Location /metrics>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>
# the same server untraced: the measure of what tracing adds to a request
Listen 127.0.0.1:%%PORT2%%
<VirtualHost 127.0.0.1:%%PORT2%%>
    EdgeTrace Off
</VirtualHost>
EOF

for my $mpm (mpms()) {
    my $port = free_port();

    # --- Redis absent at startup
    my $h = start_httpd(mpm => $mpm, redis => $port, conf => $CONF,
                        files => { 'fast.txt' => "fast\n" });
    my ($fast, $wrong, $say) = paired($h);
    is($wrong, 0, "$mpm: Redis absent: every answer as untraced");
    ok($fast, "$mpm: Redis absent: as fast as untraced: $say");
    my $m = metrics($h->port, '/metrics');
    is($m->{edgetrace_redis_connected}, 0, "$mpm: Redis absent: not connected");
    ok($m->{edgetrace_redis_errors_total} > 0, "$mpm: connect errors counted");

    # --- Redis appears: export resumes by itself
    my $redis = start_redis(port => $port, args => \@debug);
    send_traffic($h, 0.5);
    ok(wait_until(sub {
           $m = metrics($h->port, '/metrics');
           $m->{edgetrace_redis_connected} >= 1
               && $m->{edgetrace_spans_exported_total} > 0;
       }, 15), "$mpm: Redis up later: connected and exporting");
    $m = invariant($h, "$mpm: Redis up later", $port);

    # --- stalled: DEBUG SLEEP 3, traffic meanwhile
    my $stall = stall_redis($port, 3);
    Time::HiRes::sleep(0.2);
    ($fast, $wrong, $say) = paired($h);
    my $stalled = $stall->();
    ok($stalled && $stalled >= 2.9,
       sprintf("$mpm: the stall happened (%.1fs)", $stalled // 0));
    is($wrong, 0, "$mpm: stalled: every answer as untraced");
    ok($fast, "$mpm: stalled: as fast as untraced: $say");
    $m = invariant($h, "$mpm: after the stall", $port, dropped_since => $m,
                   dropped => 0);

    # --- killed in the middle of traffic, restarted on the same port
    my $base = $m;
    my $before = $m->{edgetrace_spans_exported_total};
    Edgetrace::Test::stop_pid($redis->pid, 'KILL');
    ($fast, $wrong, $say) = paired($h);
    is($wrong, 0, "$mpm: Redis killed: every answer as untraced");
    ok($fast, "$mpm: Redis killed: as fast as untraced: $say");
    $redis = start_redis(port => $port, args => \@debug);
    send_traffic($h, 0.5);
    ok(wait_until(sub {
           $m = metrics($h->port, '/metrics');
           $m->{edgetrace_spans_exported_total} > $before;
       }, 15), "$mpm: Redis back: export resumed");
    ok($m->{edgetrace_redis_reconnects_total} >= 1,
       "$mpm: reconnects counted");
    # the new Redis holds what was exported since the old one was killed
    invariant($h, "$mpm: after the restart", $port, base => $base);

    # --- graceful restarts under traffic: nothing lost, nothing leaked
    $redis->client->del('edgetrace:spans');
    my $m0 = invariant($h, "$mpm: before the graceful restarts", $port,
                       base => metrics($h->port, '/metrics'));
    # one restart first: the parent's first-restart allocations settle
    ok($h->graceful, "$mpm: first graceful restart");
    my $state0 = $h->proc_state;
    my ($tpid, $trd) = background_traffic($h);
    my $restarts = 0;
    my $RESTARTS = $RESTARTS{$mpm} // 10;
    for (1 .. $RESTARTS) {
        $restarts++ if $h->graceful;
    }
    is($restarts, $RESTARTS, "$mpm: $RESTARTS graceful restarts");
    kill 'TERM', $tpid;
    my $res = <$trd> // '';
    waitpid($tpid, 0);
    my ($bn, $bwrong) = split ' ', $res;
    ok(($bn // 0) > 0, "$mpm: traffic during the restarts: " . ($bn // 0));
    is($bwrong, 0, "$mpm: every answer as untraced during the restarts");
    my $m1 = invariant($h, "$mpm: after the graceful restarts", $port,
                       base => $m0, dropped => 0);
    my $dropped = sub {
        $_[0]{'edgetrace_spans_dropped_total{reason="queue_full"}'}
        + $_[0]{'edgetrace_spans_dropped_total{reason="redis_error"}'};
    };
    is($dropped->($m1), $dropped->($m0),
       "$mpm: graceful restarts lost no span");
    is(stream_len($port), $m1->{edgetrace_spans_exported_total}
                          - $m0->{edgetrace_spans_exported_total},
       "$mpm: every span of the restarts is in the stream");
    my $state1 = $h->proc_state;
    ok($state1->{fds} <= $state0->{fds}, "$mpm: the parent's descriptors: "
       . "$state0->{fds} before the restarts, $state1->{fds} after");
    is($state1->{threads}, $state0->{threads}, "$mpm: the parent's threads");
    is($state0->{threads}, 1, "$mpm: the parent runs no exporter thread");
    if ($ENV{EDGETRACE_NGINX_PRELOAD}) {
        note("parent RSS under the sanitizers: $state0->{rss} kB before, "
             . "$state1->{rss} kB after (not asserted)");
    } else {
        ok($state1->{rss} - $state0->{rss} < 2048,
           "$mpm: parent RSS: $state0->{rss} kB before, $state1->{rss} kB "
           . "after");
    }
    my ($clients, @kids);
    ok(wait_until(sub {
           @kids = $h->children;
           $clients = Edgetrace::Test::redis($port)->info('clients')
                          ->{connected_clients};
           $clients == @kids + 1;
       }, 10), "$mpm: one Redis connection per child after the restarts "
               . "($clients for " . scalar(@kids) . " children and the test)");

    # hooks registered once per configuration pass: still one try
    my ($resp, @sp) = traced_request($port, $b, $h->port, '/api/once', 2);
    my ($cl) = grep { $_->{kind} eq 'client' } @sp;
    ok($cl && $cl->{'event.0'} && !exists $cl->{'event.1'}
       && !exists $cl->{'http.request.resend_count'},
       "$mpm: after the restarts a proxied request is still one try");

    # --- graceful stop right after a burst: every span flushed
    $redis->client->del('edgetrace:spans');
    for my $i (1 .. 50) {
        my $r = http_get($h->port, '/fast.txt');
        die "burst: $r->{status}" unless $r->{status} == 200;
    }
    my $status = $h->graceful_stop(timeout => 20);
    ok(defined $status, "$mpm: graceful stop finished");
    is(stream_len($port), 50, "$mpm: the burst's 50 spans all reached Redis");
    is_deeply([$h->crashes], [], "$mpm: no crash");

    $redis->stop;
}

# --- tracing on nowhere: no Redis connection at all
my $redis = start_redis();
my $h = start_httpd(mpm => 'event', redis => $redis, conf => <<'EOF',
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
ProxyPass /api http://127.0.0.1:%%BACKEND%%/api
EOF
                    files => { 'fast.txt' => "fast\n" });
http_get($h->port, '/fast.txt');
http_get($h->port, '/api/x');
Time::HiRes::sleep(0.3);
my $clients = $redis->client->info('clients')->{connected_clients};
is($clients, 1, 'tracing on nowhere: no connection but the test\'s own');
unlike($h->error_log, qr/connected to redis/,
       'tracing on nowhere: no exporter started');
$h->stop;

sub send_traffic {
    my ($h, $secs) = @_;
    return Edgetrace::Test::traffic($h->port, $secs,
               [['/fast.txt', 200], ['/api/x', 200], ['/s404', 404]]);
}

# 100 requests to each port in turn, traced and not: (kept up with the
# untraced server, answers with another status, the numbers)
sub paired {
    my ($h) = @_;
    my ($fast, $sent, $wrong, $say) =
        keeps_up($h->port, $h->ports->{PORT2}, 100,
                 [['/fast.txt', 200], ['/api/x', 200], ['/s404', 404]]);
    return ($fast, $wrong, $say);
}

# traffic in a child until TERM; it prints "count wrong" on the pipe
sub background_traffic {
    my ($h) = @_;
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $rd;
        my ($n, $wrong, $stop) = (0, 0, 0);
        $SIG{TERM} = sub { $stop = 1 };
        until ($stop) {
            my $r = eval { http_get($h->port, '/fast.txt') };
            $wrong++ unless $r && $r->{status} == 200;
            $n++;
        }
        print $wr "$n $wrong\n";
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    return ($pid, $rd);
}

# at rest the counters add up and match what the stream holds
sub invariant {
    my ($h, $what, $port, %o) = @_;
    return Edgetrace::Test::counters_match_redis($h, $port, what => $what,
                                                 path => '/metrics', %o);
}

done_testing();
