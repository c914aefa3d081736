#!/usr/bin/perl
# edgetrace show: nginx-produced traces as a tree, figures computed from
# the entries themselves; orphans; --since; unknown ids; bad input; Redis
# down; --help.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli start_stack request);

my ($redis, $b, $ngx) = start_stack();
my $bp = $b->port;

sub ms { sprintf '%d.%03dms', int($_[0] / 1e6), int($_[0] / 1e3) % 1000 }

# where a span lies in its trace, as show draws it: 20 columns, doubles
sub bar {
    my ($off, $dur, $total) = @_;
    my ($from, $to) = (0, 1);
    if ($total) {
        $from = int($off / $total * 20);
        my $x = ($off + $dur) / $total * 20;
        $to = int($x);
        $to++ if $to < $x;
    }
    $from = 19 if $from > 19;
    $to = 20 if $to > 20;
    $to = $from + 1 if $to <= $from;
    return '|' . (' ' x $from) . ('=' x ($to - $from)) . (' ' x (20 - $to))
           . '|';
}

# the line show prints for a span of a trace from $t0 lasting $total
sub line {
    my ($s, $t0, $tree, $summary, $total) = @_;
    return sprintf "%-12s %-11s %-6s %s  %s  %s%s: %s [%s]%s",
        '+' . ms($s->{start_ns} - $t0), ms($s->{end_ns} - $s->{start_ns}),
        $s->{status} eq 'error' ? 'ERROR' : 'ok', $s->{span_id},
        bar($s->{start_ns} - $t0, $s->{end_ns} - $s->{start_ns}, $total),
        $tree, $s->{'service.name'}, $s->{name}, $s->{kind}, $summary;
}

# --- a proxied request: a server span and its client span, as a tree

my $t = request($redis, $ngx, '/api/users?page=2');
my @s = trace_spans($redis->port, $t, count => 2);
my ($srv) = grep { $_->{kind} eq 'server' } @s;
my ($cli) = grep { $_->{kind} eq 'client' } @s;
my $cli1 = $cli;

my $r = run_cli($redis, 'show', $t);
is($r->{rc}, 0, 'show: exit 0');
is($r->{err}, '', 'show: nothing on stderr');

my $t0 = $srv->{start_ns};
my $t1 = $srv->{end_ns} > $cli->{end_ns} ? $srv->{end_ns} : $cli->{end_ns};
is($r->{out}, join("\n",
    "trace $t: 2 spans, 1 service, 0 errors, " . ms($t1 - $t0),
    '',
    sprintf('%-12s %-11s %-6s %-16s  %-22s  %s', 'OFFSET', 'DURATION',
            'STATUS', 'SPAN ID', 'WATERFALL',
            'SERVICE: NAME [KIND] ATTRIBUTES'),
    line($srv, $t0, '', ' GET /api/users?page=2 200', $t1 - $t0),
    line($cli, $t0, "\x{e2}\x{94}\x{94}\x{e2}\x{94}\x{80} ",
         " GET http://127.0.0.1:$bp/api/users?page=2 200"
         . " peer=127.0.0.1:$bp", $t1 - $t0),
    ''), 'show: the tree, offsets, durations and attributes');

# upper-case ids are read too
$r = run_cli($redis, 'show', uc $t);
is($r->{rc}, 0, 'show: an upper-case trace id');

# --- an error: a refused upstream

my $te = request($redis, $ngx, '/dead');
$r = run_cli($redis, 'show', $te);
is($r->{rc}, 0, 'show error trace: exit 0');
like($r->{out}, qr/^trace $te: 2 spans, 1 service, 2 errors, /,
     'show error trace: errors counted');
like($r->{out}, qr/ ERROR  [0-9a-f]{16}  \|[= ]{20}\|  \S+ edge: \S.* \[client\] GET http:\S* peer=127\.0\.0\.1:\d+ error=no_response\n/,
     'show error trace: the client span is an error, with its error type');

# --- continued context: the parent is not in the stream, an orphan

my $parent = new_span_id();
my $tc = new_trace_id();
request($redis, $ngx, '/api/orphan',
        headers => [['traceparent', "00-$tc-$parent-01"]]);
@s = trace_spans($redis->port, $tc, count => 2);
($srv) = grep { $_->{kind} eq 'server' } @s;
($cli) = grep { $_->{kind} eq 'client' } @s;

$r = run_cli($redis, 'show', $tc);
is($r->{rc}, 0, 'orphans: exit 0');
my @lines = split /\n/, $r->{out};
is($lines[4], 'orphans: spans whose parent is not in the stream',
   'orphans: listed under their own heading');
is($lines[5], "parent $parent:", 'orphans: the missing parent is named');
my $tot = ($srv->{end_ns} > $cli->{end_ns} ? $srv->{end_ns} : $cli->{end_ns})
          - $srv->{start_ns};
is($lines[6], line($srv, $srv->{start_ns}, '', ' GET /api/orphan 200', $tot),
   'orphans: the server span');
like($lines[7], qr/^\+\S+ +\S+ +ok +$cli->{span_id}  \|[= ]{20}\|  \x{e2}\x{94}\x{94}\x{e2}\x{94}\x{80} edge: /,
     'orphans: its child under it');
is(scalar(@lines), 8, 'orphans: nothing else');

# --- spans written by another service into the same trace, by hand

my $redis_c = $redis->client;
my $child = new_span_id();
$redis_c->xadd('edgetrace:spans', '*', v => 1, trace_id => $t,
               span_id => $child, parent_id => $cli1->{span_id},
               name => 'GET /users', kind => 'server',
               start_ns => $cli1->{start_ns} + 1000,
               end_ns => $cli1->{start_ns} + 2000, status => 'unset',
               'service.name' => 'app', 'url.path' => "/u\x1b[31m");
# hand-written entries that are not spans: skipped and counted
$redis_c->xadd('edgetrace:spans', '*', hello => 'world');
$redis_c->xadd('edgetrace:spans', '*', v => 2, trace_id => $t);

$r = run_cli($redis, 'show', $t);
is($r->{rc}, 0, 'three services: exit 0');
like($r->{out}, qr/^trace $t: 3 spans, 2 services, 0 errors, /,
     'three services: counted');
like($r->{out}, qr/\n\S+ +\S+ +ok +$child  \|[= ]{20}\|     \x{e2}\x{94}\x{94}\x{e2}\x{94}\x{80} app: GET \/users \[server\] \/u\\x1b\[31m\n/,
     'three services: the app span under the client span; control bytes '
     . 'escaped');
is($r->{err}, "edgetrace: skipped 2 entries that are not edgetrace spans\n",
   'invalid entries: counted on stderr');

# --- the waterfall of a hand-written trace, exactly

my $tw = new_trace_id();
my ($wr, $wc, $wg, $wz) = map { new_span_id() } 1 .. 4;
my $base = 1_700_000_000_000_000_000;
for my $s ([$wr, undef, 'root', 0, 100], [$wc, $wr, 'child', 25, 50],
           [$wg, $wc, 'grandchild', 90, 100], [$wz, $wr, 'zero', 100, 100])
{
    $redis_c->xadd('edgetrace:spans', '*', v => 1, trace_id => $tw,
                   span_id => $s->[0],
                   defined $s->[1] ? (parent_id => $s->[1]) : (),
                   name => $s->[2], kind => 'server',
                   start_ns => $base + $s->[3] * 1_000_000,
                   end_ns => $base + $s->[4] * 1_000_000, status => 'unset',
                   'service.name' => 'w');
}
$r = run_cli($redis, 'show', $tw);
my $L = "\x{e2}\x{94}\x{94}\x{e2}\x{94}\x{80} ";
my $T = "\x{e2}\x{94}\x{9c}\x{e2}\x{94}\x{80} ";
my $V = "\x{e2}\x{94}\x{82}  ";
is($r->{out}, <<"EOF", 'waterfall: bars, tree branches, zero duration');
trace $tw: 4 spans, 1 service, 0 errors, 100.000ms

OFFSET       DURATION    STATUS SPAN ID           WATERFALL               SERVICE: NAME [KIND] ATTRIBUTES
+0.000ms     100.000ms   ok     $wr  |====================|  w: root [server]
+25.000ms    25.000ms    ok     $wc  |     =====          |  ${T}w: child [server]
+90.000ms    10.000ms    ok     $wg  |                  ==|  ${V}${L}w: grandchild [server]
+100.000ms   0.000ms     ok     $wz  |                   =|  ${L}w: zero [server]
EOF

# --- siblings that start together: by name, then span id, whatever order
# the stream holds them in (qsort() keeps no order of equal elements)

my $ts = new_trace_id();
my ($sr, $sb, $sf, @sa) = map { new_span_id() } 1 .. 5;
@sa = sort @sa;
for my $s ([$sr, undef, 'root', 'server', 0], [$sb, $sr, 'fetch b', 10],
           [$sa[1], $sr, 'fetch a', 10], [$sa[0], $sr, 'fetch a', 10],
           [$sf, $sr, 'fetch', 10])
{
    $redis_c->xadd('edgetrace:spans', '*', v => 1, trace_id => $ts,
                   span_id => $s->[0],
                   defined $s->[1] ? (parent_id => $s->[1]) : (),
                   name => $s->[2], kind => $s->[1] ? 'client' : 'server',
                   start_ns => $base + $s->[-1] * 1_000_000,
                   end_ns => $base + 20_000_000, status => 'unset',
                   'service.name' => 's');
}
$r = run_cli($redis, 'show', $ts);
is(join(' ', $r->{out} =~ /^\S+ +\S+ +ok +([0-9a-f]{16}) /mg),
   "$sr $sf $sa[0] $sa[1] $sb",
   'siblings that start together: by name, then span id');

# --- --since: entry ids are milliseconds

my $old = new_trace_id();
my $ms = int(Time::HiRes::time() * 1000) - 3_600_000;
$redis_c->xadd('edgetrace:old', "$ms-0", v => 1, trace_id => $old,
               span_id => new_span_id(), name => 'old', kind => 'server',
               start_ns => "${ms}000000", end_ns => "${ms}000000",
               status => 'unset', 'service.name' => 'edge');
$r = run_cli($redis, '--stream', 'edgetrace:old', 'show', $old);
is($r->{rc}, 1, '--since: an hour-old trace is not in the default 15m');
like($r->{err}, qr/^edgetrace: trace $old not found in edgetrace:old: no span of it in the last 15m/m,
     '--since: the message says where it looked');
$r = run_cli($redis, '--stream=edgetrace:old', 'show', $old, '--since', '2h');
is($r->{rc}, 0, '--since 2h finds it');
like($r->{out}, qr/^trace $old: 1 span, 1 service, 0 errors, 0\.000ms$/m,
     '--since 2h: the span');
$r = run_cli($redis, '--stream', 'edgetrace:old', 'show', '--since=0', $old);
is($r->{rc}, 0, '--since=0: the whole stream');

# --- unknown, invalid, usage

my $unknown = new_trace_id();
$r = run_cli($redis, 'show', $unknown);
is($r->{rc}, 1, 'unknown trace: exit 1');
is($r->{out}, '', 'unknown trace: nothing on stdout');
like($r->{err}, qr/trace $unknown not found in edgetrace:spans/,
     'unknown trace: a clear message');

$r = run_cli($redis, 'show', 'xyz');
is($r->{rc}, 2, 'not a trace id: usage error');
like($r->{err}, qr/"xyz" is not a trace id \(32 hex digits\)/,
     'not a trace id: said so');

$r = run_cli($redis, 'show');
is($r->{rc}, 2, 'no trace id: usage error');

$r = run_cli($redis, 'show', $t, '--since', 'soon');
is($r->{rc}, 2, 'bad duration: usage error');
like($r->{err}, qr/invalid --since "soon"/, 'bad duration: said so');

$r = run_cli($redis, 'show', '--help');
is($r->{rc}, 0, 'show --help: exit 0');
like($r->{out}, qr/^Usage: edgetrace \[GLOBAL OPTIONS\] show TRACE_ID/,
     'show --help: usage');

$r = run_cli($redis, '--stream', 'other', 'show', $t);
is($r->{rc}, 1, '--stream: another key, not found there');
like($r->{err}, qr/not found in other/, '--stream: named');

# --- Redis down

my $dead = dead_port();
$r = run_cli($dead, 'show', $t);
is($r->{rc}, 1, 'Redis down: exit 1');
is($r->{err}, "edgetrace: cannot connect to Redis at "
              . "redis://127.0.0.1:$dead: Connection refused\n",
   'Redis down: a clear error');

$r = run_cli(undef, '--redis', "redis://al:s3cret\@127.0.0.1:$dead/2",
             'show', $t);
is($r->{err}, "edgetrace: cannot connect to Redis at "
              . "redis://al:***\@127.0.0.1:$dead/2: Connection refused\n",
   'Redis down: the password is not shown');

# TLS: t/cli/014-tls.t; a rediss:// Redis down is one down
$r = run_cli(undef, '--redis', "rediss://127.0.0.1:$dead", 'show', $t);
is($r->{rc}, 1, 'rediss: Redis down: exit 1');
is($r->{err}, "edgetrace: cannot connect to Redis at "
              . "rediss://127.0.0.1:$dead: Connection refused\n",
   'rediss: Redis down: a clear error');

is(join('', $ngx->crashes), '', 'nginx did not crash');

done_testing();
