#!/usr/bin/perl
# Every command on a sharded stream (docs/stream.md, "Sharded streams";
# docs/cli.md, "Sharded streams"): spans written into N shard keys the way
# the modules write them, named and placed by the documented rule computed
# here in Perl (Edgetrace::Test's shard_key, trace_shard); what the
# command sends Redis watched with MONITOR.  show reads the trace's own
# shard only; tail follows every shard, in entry id order; top sums the
# shards; export shares one consumer group over them, exactly once,
# acknowledged on every shard.
# --shards and $EDGETRACE_SHARDS refuse what the modules' shards= refuses.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use IO::Select;
use IO::Socket::INET;
use Time::HiRes ();
use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli start_cli);
use Edgetrace::Sink qw(start_sink);

my $redis = start_redis();
my $rc = $redis->client;
my $N = 4;

# the names of the $n shards of $key, in shard order
sub shard_keys {
    my ($key, $n) = @_;
    return map { shard_key($key, $_, $n) } 0 .. $n - 1;
}

my @keys = shard_keys('edgetrace:spans', $N);

sub now_ms { int(Time::HiRes::time() * 1000) }

# a trace id whose shard of $n is $i
sub trace_in {
    my ($i, $n) = @_;
    while (1) {
        my $t = new_trace_id();
        return $t if trace_shard($t, $n // $N) == $i;
    }
}

# a span written to $key as the modules write it (to the Redis of client
# => when given); returns its span id (and the entry id in list context)
sub span {
    my ($key, %o) = @_;
    my $sid = $o{span_id} // new_span_id();
    my $start = $o{start_ns} // int(Time::HiRes::time() * 1e6) . '000';
    my $eid = ($o{client} // $rc)->xadd(
        $key, $o{id} // '*', v => 1,
        trace_id => $o{trace_id} // new_trace_id(), span_id => $sid,
        ($o{parent_id} ? (parent_id => $o{parent_id}) : ()),
        name => $o{name} // 'GET /s', kind => $o{kind} // 'server',
        start_ns => $start, end_ns => $start + ($o{ms} // 1) * 1_000_000,
        status => 'unset', 'service.name' => $o{service} // 'svc');
    return wantarray ? ($sid, $eid) : $sid;
}

# MONITOR on its own connection: what every client sends, from now on
sub monitor {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $redis->port)
        or die "monitor: $!";
    syswrite($s, "MONITOR\r\n");
    my $buf = '';
    sysread($s, $buf, 5, length $buf) while length($buf) < 5;
    die "monitor: $buf\n" unless $buf eq "+OK\r\n";
    return $s;
}

# the commands seen (those named in @names), each as [name, args...],
# once nothing more came for 0.3 s
sub monitored {
    my ($s, @names) = @_;
    my $buf = '';
    my $sel = IO::Select->new($s);
    while ($sel->can_read(0.3)) {
        last unless sysread($s, $buf, 65536, length $buf);
    }
    close $s;
    my %want = map { $_ => 1 } @names;
    my @cmds;
    for my $l (split /\r\n/, $buf) {
        next unless $l =~ s/^\+\S+ \[[^\]]*\] //;
        my @a = map { s/\\(.)/$1/gr } $l =~ /"((?:[^"\\]|\\.)*)"/g;
        push @cmds, \@a if $want{ uc $a[0] };
    }
    return @cmds;
}

sub pending {
    my ($key, $group) = @_;
    return $rc->xpending($key, $group)->[0];
}

# --- the names: the documented table, from the documented rule

is_deeply(\@keys, ['edgetrace:spans:0{3}', 'edgetrace:spans:1{2}',
                   'edgetrace:spans:2{1}', 'edgetrace:spans:3{0}'],
          'the names of 4 shards, as docs/stream.md tables them');
is(shard_key('edgetrace:spans', 7, 8), 'edgetrace:spans:7{40}',
   'and of 8 shards');
is(trace_shard('4bf92f3577b34da6a3ce929d0e0e4736', 8), 6,
   'the shard of the documented trace id');

# --- --shards and $EDGETRACE_SHARDS: what shards= refuses

for my $bad ('0', '257', 'x', '', '-1', '+4', ' 4', '4 ', '4x', '1e2',
             '99999999999999999999') {
    my $r = run_cli($redis, '--shards', $bad, 'top');
    is($r->{rc}, 2, "--shards '$bad': usage error");
    is($r->{err}, "edgetrace: invalid --shards \"$bad\": a number from 1 to "
                  . "256, the shards=N of the modules' stream\n",
       "--shards '$bad': said so");
    is($r->{out}, '', "--shards '$bad': nothing read");
}
my $r = run_cli($redis, '--shards=0', 'top');
is($r->{rc}, 2, '--shards=0: usage error');
$r = run_cli($redis, 'top', '--shards', '4');
is($r->{rc}, 2, '--shards after the command: not a command option');
$r = run_cli($redis, '--shards');
is($r->{rc}, 2, '--shards without a value: usage error');
like($r->{err}, qr/option --shards needs a value/, '... said so');
{
    local $ENV{EDGETRACE_SHARDS} = '257';
    $r = run_cli($redis, 'top');
    is($r->{rc}, 2, '$EDGETRACE_SHARDS=257: usage error');
    is($r->{err}, "edgetrace: invalid \$EDGETRACE_SHARDS \"257\": a number "
                  . "from 1 to 256, the shards=N of the modules' stream\n",
       '$EDGETRACE_SHARDS=257: said so');
    $r = run_cli($redis, '--shards', '2', 'top');
    is($r->{out}, "edgetrace:spans (2 shards): 0 spans in the last 15m\n",
       '--shards wins over $EDGETRACE_SHARDS');
}
{
    local $ENV{EDGETRACE_SHARDS} = '';
    $r = run_cli($redis, 'top');
    is($r->{out}, "edgetrace:spans: 0 spans in the last 15m\n",
       'an empty $EDGETRACE_SHARDS is an unset one: 1 shard');
}
$r = run_cli($redis, '--shards', '256', 'top');
is($r->{rc}, 0, '--shards 256: accepted');
is($r->{out}, "edgetrace:spans (256 shards): 0 spans in the last 15m\n",
   '--shards 256: the 256 shards read');
$r = run_cli($redis, '--shards', '004', 'top');
is($r->{out}, "edgetrace:spans (4 shards): 0 spans in the last 15m\n",
   '--shards 004: 4, as shards=004 is');
$r = run_cli($redis, '--stream', 'a{b}', '--shards', '4', 'top');
is($r->{rc}, 2, 'a key with "{" and 4 shards: usage error');
is($r->{err}, "edgetrace: --stream \"a{b}\": a sharded stream's key must "
              . "not hold \"{\": its hash tag would put every shard on one "
              . "slot\n",
   '... said so, as the modules say it');
$r = run_cli($redis, '--stream', 'a{b}', '--shards', '1', 'top');
is($r->{rc}, 0, 'a key with "{" and 1 shard: read as today');
$r = run_cli($redis, '--shards', '4', 'top', '--help');
is($r->{rc}, 0, '--shards 4 top --help');
$r = run_cli($redis, '--help');
like($r->{out}, qr/^  --shards N +the stream's shards, 1 to 256/m,
     'edgetrace --help names --shards');

# --- show: the trace's own shard, and only that one

my (%trace, %spans);
for my $i (0 .. $N - 1) {
    my $t = $trace{$i} = trace_in($i);
    my $srv = span($keys[$i], trace_id => $t, name => "GET /s$i");
    my $cli = span($keys[$i], trace_id => $t, parent_id => $srv,
                   kind => 'client', name => 'GET');
    $spans{$i} = [$srv, $cli];
}

for my $i (0 .. $N - 1) {
    $r = run_cli($redis, '--shards', $N, 'show', $trace{$i});
    is($r->{rc}, 0, "show, shard $i: exit 0");
    like($r->{out}, qr/^trace $trace{$i}: 2 spans, 1 service, 0 errors, /,
         "show, shard $i: the trace found in its shard");
    like($r->{out}, qr/ $spans{$i}[0] .* svc: GET \/s$i \[server\]\n.* $spans{$i}[1] .* svc: GET \[client\]\n/,
         "show, shard $i: both spans, as a tree");
}
{
    local $ENV{EDGETRACE_SHARDS} = $N;
    my $t = $trace{2};
    $r = run_cli($redis, 'show', $t);
    like($r->{out}, qr/^trace $t: 2 spans/,
         'show with $EDGETRACE_SHARDS: found');
}

my $m = monitor();
$r = run_cli($redis, '--shards', $N, 'show', $trace{3});
my @c = monitored($m, qw(XRANGE XREVRANGE XREAD));
is_deeply([@{ $c[0] }[0, 1, 3 .. 5]], ['XRANGE', $keys[3], '+', 'COUNT',
                                       '1000'],
          'show: XRANGE of the trace\'s shard');
is_deeply([grep { $_->[1] ne $keys[3] } @c], [],
          'show: of that shard only');

# a trace whose spans sit in a shard not its own is not found: show does
# not look there
my $lost = trace_in(1);
span($keys[2], trace_id => $lost);
$r = run_cli($redis, '--shards', $N, 'show', $lost);
is($r->{rc}, 1, 'show, a trace in a wrong shard: exit 1');
is($r->{err}, "edgetrace: trace $lost not found in $keys[1]: no span of it "
              . "in the last 15m (a longer --since looks further back)\n",
   'show, a trace in a wrong shard: not found in its own shard, named');
$r = run_cli($redis, 'show', $trace{0});
is($r->{rc}, 1, 'show without --shards: the single key, not the shards');
like($r->{err}, qr/not found in edgetrace:spans: /, '... named');

# one shard: the command it always sent
my $one = new_trace_id();
span('edgetrace:spans', trace_id => $one);
$m = monitor();
$r = run_cli($redis, 'show', $one);
like($r->{out}, qr/^trace $one: 1 span/, 'show, 1 shard: found');
@c = monitored($m, qw(XRANGE XREVRANGE XREAD));
like(join(' ', @{ $c[0] }), qr/^XRANGE edgetrace:spans \d+ \+ COUNT 1000$/,
     'show, 1 shard: of the key itself, as before');
is_deeply([grep { $_->[1] ne 'edgetrace:spans' } @c], [],
          'show, 1 shard: of that key only');

# --- tail: every shard, in entry id order

sub ready {
    my ($p, $what) = @_;
    return wait_until(sub { $p->err =~ /following \Q$what\E at / }, 10);
}

# span ids in the order tail printed them
sub printed { map { (split / /)[2] } split /\n/, $_[0]->out }

$m = monitor();
my $tl = start_cli($redis, '--shards', $N, 'tail');
ok(ready($tl, "edgetrace:spans ($N shards)"), 'tail: ready');
like($tl->err, qr/^edgetrace: tail: following edgetrace:spans \(4 shards\) at redis:\/\/127\.0\.0\.1:\d+ \(interrupt to stop\)$/m,
     'tail says what it follows');
my @want;
for my $k (0 .. 11) {
    my $i = (5 * $k) % $N;
    my ($sid, $eid) = span($keys[$i], trace_id => trace_in($i));
    push @want, [$sid, $eid, $i];
    Time::HiRes::sleep(0.01);
}
ok(wait_until(sub { printed($tl) >= 12 }, 10), 'tail: twelve lines');
my @order = map { $_->[0] } sort {
    my ($am, $as) = split /-/, $a->[1];
    my ($bm, $bs) = split /-/, $b->[1];
    $am <=> $bm || $as <=> $bs || $a->[2] <=> $b->[2]
} @want;
is_deeply([printed($tl)], \@order,
          'tail: the spans of every shard, in entry id order');
is($tl->kill('TERM'), 128 + 15, 'tail: stopped by SIGTERM');
@c = grep { $_->[0] eq 'XREAD' } monitored($m, 'XREAD');
ok(@c >= 2, 'tail: XREADs');
is_deeply([@{ $c[0] }[0 .. 9]], ['XREAD', 'COUNT', '100', 'BLOCK', '1000',
                                 'STREAMS', @keys],
          'tail: one XREAD BLOCK over the four shards');

# A shard that returns a full COUNT (100) may hold more, older than the
# entries another shard returned in the same reply: those wait.  Written
# in one transaction: shard 0 gets X-1 .. X-250, shard 1 X-220.
my @ord = shard_keys('ord', 2);
$tl = start_cli($redis, '--stream', 'ord', '--shards', 2, 'tail');
ok(ready($tl, 'ord (2 shards)'), 'tail ord: ready');
my $x = now_ms();
my (%sid, @expect);
$sid{$_} = new_span_id() for 1 .. 250;
my $other = new_span_id();
$rc->multi;
span($ord[0], id => "$x-1", span_id => $sid{1});
span($ord[1], id => "$x-220", span_id => $other);
span($ord[0], id => "$x-$_", span_id => $sid{$_}) for 2 .. 250;
$rc->exec;
@expect = ((map { $sid{$_} } 1 .. 220), $other,
           (map { $sid{$_} } 221 .. 250));
ok(wait_until(sub { printed($tl) >= 251 }, 10), 'tail ord: 251 lines');
is_deeply([printed($tl)], \@expect,
          'tail: past a full COUNT, still in entry id order');
$tl->kill('TERM');

# Redis going away and coming back: every shard followed on
my $r2 = start_redis();
my $port2 = $r2->port;
$tl = start_cli($r2, '--shards', 2, 'tail');
ok(ready($tl, 'edgetrace:spans (2 shards)'), 'tail on a second Redis');
$r2->stop;
ok(wait_until(sub { $tl->err =~ /lost Redis/ }, 10), 'Redis gone: noticed');
$r2 = start_redis(port => $port2);
my $c2 = $r2->client;
my @back = map { scalar span(shard_key('edgetrace:spans', $_, 2),
                             trace_id => trace_in($_, 2), client => $c2) }
           0, 1;
ok(wait_until(sub { printed($tl) >= 2 }, 20), 'Redis back: new spans shown');
is_deeply([sort { $a cmp $b } printed($tl)], [sort @back],
          'Redis back: of both shards');
like($tl->err, qr/^edgetrace: tail: Redis at redis:\/\/127\.0\.0\.1:$port2 is back; following on from the last entry shown of each shard$/m,
     'Redis back: said so');
$tl->kill('TERM');

# --- top: the window read from every shard, summed

my @tk = shard_keys('tp', $N);
my $now = now_ms();
# first entries: shard 0 30 min ago, 1 5 min ago, 2 and 3 10 min ago
my %first = (0 => 30, 1 => 5, 2 => 10, 3 => 10);
my $n = 0;
for my $i (0 .. $N - 1) {
    my $t0 = $now - $first{$i} * 60_000;
    for my $k (0 .. $i) {
        span($tk[$i], id => ($t0 + $k) . '-0', trace_id => trace_in($i),
             name => 'GET /t', ms => 10 * ($n + 1));
        $n++;
    }
}
span('tp', trace_id => new_trace_id(), name => 'GET /t');
$m = monitor();
$r = run_cli($redis, '--stream', 'tp', '--shards', $N, 'top', '--since',
             '1h', '--slowest', '0');
@c = monitored($m, qw(XRANGE XREVRANGE));
is($r->{rc}, 0, 'top: exit 0');
my @l = split /\n/, $r->{out};
like($l[0], qr/^tp \(4 shards\): 10 spans in the last 1h \(the stream starts 5m[0-2]s ago: rates over that\)$/,
     'top: the spans of the four shards, none of the unsharded key; the '
     . 'youngest first entry');
like($l[3], qr/^svc +server GET \/t +10 +0\.03 +0\.0% +50\.000ms +100\.000ms +100\.000ms$/,
     'top: counted, rated over 5 minutes, percentiles over all shards');
is_deeply([sort keys %{ { map { $_->[1] => 1 } @c } }], [sort @tk],
          'top: every shard read, the unsharded key not');
is_deeply([sort map { $_->[1] } grep { "@$_[2 .. $#$_]" eq '- + COUNT 1' }
           @c], [sort @tk], 'top: the first entry of each shard');

# an empty shard holds no time: the youngest first entry of the others
my @tq = shard_keys('tq', $N);
span($tq[0], id => ($now - 30 * 60_000) . '-0', trace_id => trace_in(0));
span($tq[1], id => ($now - 10 * 60_000) . '-0', trace_id => trace_in(1));
$r = run_cli($redis, '--stream', 'tq', '--shards', $N, 'top', '--since',
             '1h', '--slowest', '0');
like($r->{out}, qr/^tq \(4 shards\): 2 spans in the last 1h \(the stream starts 10m[0-2]s ago: rates over that\)\n/,
     'top: empty shards left out of the youngest first entry');

# --- export: one group over the shards

for my $i (0 .. $N - 1) {
    span($keys[$i], trace_id => trace_in($i)) for 1 .. 10;
}
# every entry of the shards (those of show and tail above too), as
# "shard id" and by span id
my (@entries, @sids);
for my $i (0 .. $N - 1) {
    for my $e (@{ $rc->xrange($keys[$i], '-', '+') }) {
        my %f = @{ $e->[1] };
        push @entries, "$i $e->[0]";
        push @sids, $f{span_id};
    }
}
my $nall = @sids;
cmp_ok($nall, '>', 60, "$nall spans in the four shards");

sub accepted {
    my ($sink) = @_;
    my %n;
    $n{$_->{spanId}}++ for $sink->spans;
    return \%n;
}

sub exactly_once {
    my ($sink, $what) = @_;
    my $a = accepted($sink);
    is_deeply([map { $a->{$_} // 0 } @sids], [(1) x $nall],
              "$what: every span of every shard exactly once");
    is(scalar(keys %$a), $nall, "$what: nothing else");
}

sub none_pending {
    my ($group, $what) = @_;
    is_deeply([map { pending($_, $group) } @keys], [(0) x $N],
              "$what: nothing pending on any shard");
}

# --once, batches smaller than one reply of the four shards
my $sink = start_sink();
my $url = $sink->url('/v1/traces');
$m = monitor();
$r = run_cli($redis, '--shards', $N, 'export', '--otlp', $url, '--group',
             'g1', '--consumer', 'one', '--batch', '5', '--once');
@c = monitored($m, qw(XGROUP XREADGROUP XACK XAUTOCLAIM EVAL));
is($r->{rc}, 0, 'export --once: exit 0');
like($r->{err}, qr/^edgetrace: export: $nall spans exported in \d+ batches; 0 invalid entries skipped; 0 entries trimmed before delivery; 0 entries taken over from other consumers\n\z/,
     'export --once: every span of the four shards exported');
exactly_once($sink, 'export --once');
ok(!grep({ @{ $_->{doc}{resourceSpans}[0]{scopeSpans}[0]{spans} } > 5 }
         $sink->requests), 'export --once: at most --batch spans a request');
none_pending('g1', 'export --once');
is_deeply([map { [@$_[0 .. 3]] } grep { "@$_[0, 1]" eq 'XGROUP CREATE' }
           @c],
          [map { ['XGROUP', 'CREATE', $_, 'g1'] } @keys],
          'export: the group created on every shard');
my ($rg) = grep { $_->[0] eq 'XREADGROUP' } @c;
is_deeply([@{ $rg }[5 .. 14]], ['2', 'STREAMS', @keys, ('0') x 4],
          'export: one XREADGROUP over the four shards, COUNT a share of '
          . 'the batch');
is_deeply([sort { $a cmp $b } keys %{ { map { $_->[1] => 1 }
                                        grep { $_->[0] eq 'XACK' } @c } }],
          [sort @keys], 'export: acknowledged on every shard');
my @acked;
for my $x (grep { $_->[0] eq 'XACK' } @c) {
    my ($k, $g, @ids) = @$x[1 .. $#$x];
    my ($i) = grep { $keys[$_] eq $k } 0 .. $N - 1;
    push @acked, map { "$i $_" } @ids;
}
is_deeply([sort @acked], [sort @entries],
          'export: each entry acknowledged once, on its own shard');
is_deeply([sort map { $_->[3] } grep { $_->[0] eq 'EVAL' } @c],
          [sort @keys], 'export: leaves the group on every shard');

# a rejection, then a run that resends
$sink = start_sink();
$url = $sink->url('/v1/traces');
$sink->respond(400);
$r = run_cli($redis, '--shards', $N, 'export', '--otlp', $url, '--group',
             'g3', '--consumer', 'R', '--batch', '5', '--once');
is($r->{rc}, 3, 'rejected: exit 3');
like($r->{err}, qr/rejected 5 spans: HTTP 400/, 'rejected: said so');
is_deeply([map { pending($_, 'g3') } @keys], [(2) x $N],
          'rejected: what was read pending, on every shard');
$sink->respond(200);
$r = run_cli($redis, '--shards', $N, 'export', '--otlp', $url, '--group',
             'g3', '--consumer', 'R', '--batch', '5', '--once');
is($r->{rc}, 0, 'rerun: exit 0');
exactly_once($sink, 'rerun after a rejection');
none_pending('g3', 'rerun after a rejection');

# a forwarder killed mid-batch: another takes over, shard by shard
$sink = start_sink();
$url = $sink->url('/v1/traces');
$sink->respond('hang');
my $a = start_cli($redis, '--shards', $N, 'export', '--otlp', $url,
                  '--group', 'g4', '--consumer', 'A', '--batch', '200');
$sink->wait_requests(1);
my $held = 0;
$held += pending($_, 'g4') for @keys;
is($held, $nall, 'A read every shard in one batch, the collector hangs');
$a->kill('KILL');
$sink->respond(200);
ok(wait_until(sub {
    !grep { grep { $_->[2] < 1000 } @{ $rc->xpending($_, 'g4', '-', '+',
                                                     1000) } } @keys
}, 10), 'A\'s entries idle for 1s');
$r = run_cli($redis, '--shards', $N, 'export', '--otlp', $url, '--group',
             'g4', '--consumer', 'B', '--claim-idle', '1s', '--once');
is($r->{rc}, 0, 'takeover: exit 0');
is($r->{err}, "edgetrace: export: $nall spans exported in 4 batches; 0 "
              . "invalid entries skipped; 0 entries trimmed before delivery; "
              . "$nall entries taken over from other consumers\n",
   'takeover: B took over the entries of every shard, a batch per shard');
exactly_once($sink, 'takeover');
none_pending('g4', 'takeover');

# two forwarders at once share the shards
$sink = start_sink();
$url = $sink->url('/v1/traces');
my @fw = map { start_cli($redis, '--shards', $N, 'export', '--otlp', $url,
                         '--group', 'g2', '--consumer', "f$_", '--batch',
                         '3', '--from-now') } 1 .. 2;
ok(wait_until(sub { !grep { $_->err !~ /forwarding edgetrace:spans \(4 shards\) to / } @fw }, 10),
   'two forwarders ready');
my @live;
for my $k (0 .. 39) {
    my $i = $k % $N;
    push @live, scalar span($keys[$i], trace_id => trace_in($i));
    Time::HiRes::sleep(0.02);
}
ok(wait_until(sub {
    my $a = accepted($sink);
    (grep { $a->{$_} } @live) == 40
        && !grep { pending($_, 'g2') } @keys;
}, 30), 'the two delivered the forty');
is($_->kill('TERM'), 0, 'forwarder stopped: exit 0') for @fw;
my $acc = accepted($sink);
is_deeply([map { $acc->{$_} } @live], [(1) x 40],
          'two forwarders: each span exactly once between them');
is(scalar(keys %$acc), 40, 'two forwarders: nothing else');
my @counts = map { $_->err =~ /: (\d+) spans? exported/ ? $1 : 0 } @fw;
is($counts[0] + $counts[1], 40, 'two forwarders: their counts add up');
ok($counts[0] && $counts[1], "two forwarders: both worked (@counts)");
none_pending('g2', 'two forwarders');
is_deeply([$sink->problems], [], 'every payload valid');

done_testing();
