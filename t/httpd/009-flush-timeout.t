#!/usr/bin/perl
# EdgeTraceFlushTimeout bounds how long an exiting child waits for a Redis
# that is connected but does not answer (DEBUG SLEEP, from another
# connection), under each MPM: `apachectl -k graceful-stop` and `graceful`
# end the old children no sooner than about the timeout while spans wait,
# and not much later, and the lines logged say how long they waited.  With
# Redis answering, the queued spans are in Redis by the time the old
# children are gone; with Redis unreachable (`graceful-stop` and `stop`)
# there is nothing to wait for, and the lines say so.  Unreachable is a
# port held bound and never listening (dead_port()), which a Redis another
# test run starts meanwhile cannot take.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);

# longer than the bound below: Redis sleeps until the children have exited
my $STALL = 5;

my $redis = start_redis(args => ['--enable-debug-command', 'local']);
my $port = $redis->port;

# a long EdgeTraceRedisTimeout: only the flush timeout ends the wait
my $CONF = <<'EOF';
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 50ms
EdgeTraceFlushTimeout 1s
EdgeTraceRedisTimeout 30s
EdgeTrace On
<Location /metrics>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>
EOF

sub start {
    my ($mpm, $conf, %o) = @_;
    my $h = start_httpd(mpm => $mpm, redis => $o{redis} // $redis,
                        conf => $conf, files => { 'f.txt' => "f\n" });
    if ($o{connected} // 1) {
        wait_until(sub {
            my $m = metrics($h->port, '/metrics');
            $m->{edgetrace_redis_connected} >= 1
                && $m->{edgetrace_redis_connected} == $h->children;
        }, 10) or die "the children did not connect to Redis\n";
    }
    return $h;
}

# $n spans handed to the exporters and counted as queued (in a queue or
# written to a Redis that does not answer)
sub spans_waiting {
    my ($h, $n, $what) = @_;
    my $q;
    for (1 .. $n) {
        my $r = http_get($h->port, '/f.txt');
        die "$what: status $r->{status}\n" unless $r->{status} == 200;
    }
    ok(wait_until(sub {
           $q = metrics($h->port, '/metrics')->{edgetrace_spans_queued};
           $q == $n }, 3), "$what: $n spans wait for Redis ($q)");
}

# sends $sig to the parent; returns the seconds until the children that
# ran are gone
sub signal_children_gone {
    my ($h, $sig, $what) = @_;
    my @kids = $h->children;
    my $t = Time::HiRes::time();
    kill $sig, $h->pid or die "$sig: $!";
    ok(Edgetrace::Test::pids_gone(15, @kids),
       "$what: the children exited (" . scalar(@kids) . ")");
    return Time::HiRes::time() - $t;
}

# the lines the exiting children wrote about what they dropped: each
# matches $re (its first group the number of spans), and they add up to $n
sub exit_lines {
    my ($h, $n, $re, $what) = @_;
    my @l = grep { /exporter stopping/ } split /\n/, $h->error_log;
    my ($sum, $bad) = (0, 0);
    for (@l) {
        if (/$re/) {
            $sum += $1;
        } else {
            $bad++;
            diag("unexpected: $_");
        }
    }
    ok(@l >= 1 && !$bad, "$what: " . scalar(@l) . ' line(s) at exit, as '
                         . 'expected');
    is($sum, $n, "$what: they count the $n spans dropped")
        or diag(join "\n", 'the exporters said:',
                grep { /\[edgetrace:/ } split /\n/, $h->error_log);
    return @l;
}

# what a concurrent test run may do: start its Redis on a port its own
# free_port() gave, the one meant to be unreachable here.  It must fail to
# listen there (dead_port()): a Redis there would take the spans meant to
# be dropped, and the children would have nothing to say at exit.
# Returns that Redis if it runs, to be stopped after the case.
sub interloper_refused {
    my ($port, $what) = @_;
    my $other = eval { start_redis(port => $port) };
    (my $why = $@) =~ s/\n//;
    ok(!$other && $why =~ /before listening/,
       "$what: a Redis started on the unreachable port cannot listen "
       . "($why)");
    return $other;
}

my $NOT_ACKED = qr/\Qexporter stopping: \E(\d+)
                   \Q span\Es?\Q dropped at exit: not\E
                   \Q acknowledged by redis at 127.0.0.1:$port within the \E
                   \Qflush timeout (waited \E\d+\Q ms; \E\d+\Q of them were \E
                   \Qwritten, redis may still store those)\E/x;

sub stalled_exit_ok {
    my ($h, $took, $what) = @_;
    ok($took >= 0.8 && $took < 3,
       sprintf("$what: the children waited about the flush timeout, 1s "
               . "(gone after %.2fs)", $took));
    my @l = exit_lines($h, 10, $NOT_ACKED, $what);
    my @ms = map { /waited (\d+) ms/ ? $1 : -1 } @l;
    ok(!grep({ $_ < 1000 || $_ >= 2000 } @ms),
       "$what: each waited the flush timeout (@ms ms)");
}

for my $mpm (mpms()) {

    # --- graceful-stop, Redis connected and stalled
    {
        my $what = "$mpm: graceful-stop, Redis stalled";
        redis($port)->del('edgetrace:spans');
        my $h = start($mpm, $CONF);
        my $stall = Edgetrace::Test::redis_stalled($port, $STALL);
        spans_waiting($h, 10, $what);

        my $took = signal_children_gone($h, 'WINCH', $what);
        stalled_exit_ok($h, $took, $what);
        my $st = Edgetrace::Test::wait_exit($h->pid, 20);
        $h->{stopped} = 1 if defined $st;
        ok(defined $st, "$what: the parent exited");

        my $slept = $stall->();
        ok($slept >= $STALL - 0.5,
           sprintf("$what: Redis slept all along (%.1fs)", $slept));
        # what the lines say: Redis may still store what was written to it
        ok(wait_until(sub { stream_len($port) == 10 }, 3),
           "$what: Redis, awake, stored the 10 spans written to it");
        is_deeply([$h->crashes], [], "$what: no crash");
    }

    # --- graceful restart, Redis connected and stalled
    {
        my $what = "$mpm: graceful restart, Redis stalled";
        my $h = start($mpm, $CONF);
        my $stall = Edgetrace::Test::redis_stalled($port, $STALL);
        spans_waiting($h, 10, $what);

        my $took = signal_children_gone($h, 'USR1', $what);
        stalled_exit_ok($h, $took, $what);
        ok(wait_until(sub { $h->children >= 1 }, 10),
           "$what: new children run");
        $stall->();
        is_deeply([$h->crashes], [], "$what: no crash");
        $h->stop;
    }

    # --- Redis answering, a 1s flush interval: the spans are still queued
    # at the signal, and in Redis once the old children are gone
    (my $slow = $CONF) =~ s/FlushInterval 50ms/FlushInterval 1s/;
    for my $sig ('WINCH', 'USR1') {
        my $what = "$mpm: " . ($sig eq 'WINCH' ? 'graceful-stop'
                                               : 'graceful restart')
                   . ', Redis answering';
        redis($port)->del('edgetrace:spans');
        my $h = start($mpm, $slow);
        http_get($h->port, '/f.txt') for 1 .. 30;
        note("$what: " . stream_len($port) . ' of 30 in the stream before '
             . 'the signal');

        my $took = signal_children_gone($h, $sig, $what);
        is(stream_len($port), 30,
           "$what: the 30 spans are in Redis when the children are gone");
        ok($took < 3, sprintf("$what: no wait for the flush timeout "
                              . "(%.2fs)", $took));
        is_deeply([grep { /exporter stopping/ } split /\n/, $h->error_log],
                  [], "$what: nothing dropped at exit");
        if ($sig eq 'WINCH') {
            my $st = Edgetrace::Test::wait_exit($h->pid, 20);
            $h->{stopped} = 1 if defined $st;
        } else {
            $h->stop;
        }
    }

    # --- Redis unreachable: nothing to wait for, and the lines say so
    my $dead = dead_port();
    (my $long = $CONF) =~ s/FlushTimeout 1s/FlushTimeout 3s/;
    for my $sig ('WINCH', 'TERM') {
        my $what = "$mpm: " . ($sig eq 'WINCH' ? 'graceful-stop' : 'stop')
                   . ', Redis unreachable';
        my $h = start($mpm, $long, redis => $dead, connected => 0);
        spans_waiting($h, 10, $what);
        my $other = interloper_refused($dead, $what);

        my $took = signal_children_gone($h, $sig, $what);
        $other->stop if $other;
        ok($took < 1.5, sprintf("$what: no wait for the 3s flush timeout "
                                . "(%.2fs)", $took));
        my @l = exit_lines($h, 10,
                           qr/\Qexporter stopping: \E(\d+)\Q span\Es?\Q dropped at\E
                              \Q exit: redis at 127.0.0.1:$dead \E
                              \Qunreachable (Connection refused)\E/x,
                           $what);
        ok(!grep({ /within|waited/ } @l), "$what: no wait is claimed");
        my $st = Edgetrace::Test::wait_exit($h->pid, 20);
        $h->{stopped} = 1 if defined $st;
    }
}

done_testing;
