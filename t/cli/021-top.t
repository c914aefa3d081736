#!/usr/bin/perl
# edgetrace top: figures checked against known spans (hand-written with
# exact durations, and nginx-produced ones), the table exactly; rates over
# the window, or over the part of it a young stream holds.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Time::HiRes ();
use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli start_stack request);

my ($redis, $be, $ngx) = start_stack();
my $rc = $redis->client;

sub ms { sprintf '%d.%03dms', int($_[0] / 1e6), int($_[0] / 1e3) % 1000 }

sub now_ms { int(Time::HiRes::time() * 1000) }

# an entry older than the windows below: the stream covers all of them
sub old_entry {
    my ($key) = @_;
    $rc->xadd($key, (now_ms() - 20 * 60 * 1000) . '-0', before => 'window');
}

sub hand {
    my ($name, $kind, $ms, $error) = @_;
    my $t = new_trace_id();
    $rc->xadd('top', '*', v => 1, trace_id => $t, span_id => new_span_id(),
              name => $name, kind => $kind, start_ns => '5000000000',
              end_ns => 5_000_000_000 + $ms * 1_000_000,
              status => $error ? 'error' : 'unset',
              'service.name' => 'svc');
    return $t;
}

# GET /a: 1..10 ms, the 10 ms one an error; proxy: 5 and 7 ms
old_entry('top');
my %t;
$t{$_} = hand('GET /a', 'server', $_, $_ == 10) for 1 .. 10;
my $p5 = hand('proxy', 'client', 5);
my $p7 = hand('proxy', 'client', 7);
$rc->xadd('top', '*', not => 'a span');

my $head = sprintf("%-7s %-6s %-6s %7s %8s %7s %11s %11s %11s",
                   'SERVICE', 'KIND', 'NAME', 'COUNT', 'RATE/s', 'ERRORS',
                   'P50', 'P95', 'P99');

my $r = run_cli($redis, '--stream', 'top', 'top', '--since', '10m');
is($r->{rc}, 0, 'top: exit 0');
is($r->{err}, '', 'top: nothing on stderr');
is($r->{out}, join("\n",
    'top: 12 spans in the last 10m (and 1 entry that is not a span)',
    '',
    $head,
    # 10 / 600 s; 1 of 10; nearest rank: 5th, 10th, 10th
    'svc     server GET /a      10     0.02   10.0%     5.000ms    10.000ms    10.000ms',
    'svc     client proxy        2     0.00    0.0%     5.000ms     7.000ms     7.000ms',
    '',
    'slowest traces:',
    'svc: GET /a [server]',
    "     10.000ms  $t{10}",
    "      9.000ms  $t{9}",
    "      8.000ms  $t{8}",
    'svc: proxy [client]',
    "      7.000ms  $p7",
    "      5.000ms  $p5",
    ''), 'top: the table and the slowest traces, exactly');

$r = run_cli($redis, '--stream', 'top', 'top', '--since', '1m',
             '--slowest', '0');
like($r->{out}, qr/^svc     server GET \/a      10     0\.17   10\.0%/m,
     'top --since 1m: the rate over a minute');
unlike($r->{out}, qr/slowest/, 'top --slowest 0: no slowest traces');

# --- a stream younger than the window: 600 spans over the last 100
# minutes, one every 10 s, the window a day.  The rate is over the 6000 s
# the stream holds (600 / 6000), not over the day (600 / 86400 = 0.007).

my $t0 = now_ms() - 6000 * 1000;
for my $i (0 .. 599) {
    $rc->xadd('burst', ($t0 + $i * 10_000) . '-0', v => 1,
              trace_id => new_trace_id(), span_id => new_span_id(),
              name => 'GET /b', kind => 'server', start_ns => '5000000000',
              end_ns => '5001000000', status => 'unset',
              'service.name' => 'svc');
}
my $row = sprintf("%-7s %-6s %-6s %7d %8.2f %6.1f%% %11s %11s %11s",
                  'svc', 'server', 'GET /b', 600, 0.1, 0, '1.000ms',
                  '1.000ms', '1.000ms');
$r = run_cli($redis, '--stream', 'burst', 'top', '--since', '1d',
             '--slowest', '0');
is($r->{out}, join("\n",
    'burst: 600 spans in the last 1d (the stream starts 1h40m ago: rates '
    . 'over that)',
    '', $head, $row, ''),
   'a young stream: the rate over the time it holds, and said so');
$r = run_cli($redis, '--stream', 'burst', 'top', '--since', '0',
             '--slowest', '0');
is((split /\n/, $r->{out})[3], $row, '--since 0: the same rate');

# --- nginx-produced spans

old_entry('edgetrace:spans');
request($redis, $ngx, '/local') for 1 .. 3;
my $tf = request($redis, $ngx, '/fail');
my @e = stream_entries($redis->port, undef, count => 5);
my @d = sort { $a <=> $b } map { $_->{end_ns} - $_->{start_ns} }
        grep { ($_->{'url.path'} // '') eq '/local' } @e;
my ($fail) = grep { ($_->{'url.path'} // '') eq '/fail' } @e;
my $fd = $fail->{end_ns} - $fail->{start_ns};

$r = run_cli($redis, 'top');
is($r->{rc}, 0, 'top on nginx spans: exit 0');
my $h2 = sprintf("%-7s %-6s %-10s %7s %8s %7s %11s %11s %11s",
                 'SERVICE', 'KIND', 'NAME', 'COUNT', 'RATE/s', 'ERRORS',
                 'P50', 'P95', 'P99');
my @lines = split /\n/, $r->{out};
is($lines[0], 'edgetrace:spans: 4 spans in the last 15m', 'the total');
is($lines[2], $h2, 'the header');
is($lines[3], sprintf('%-7s %-6s %-10s %7d %8.2f %6.1f%% %11s %11s %11s',
                      'edge', 'server', 'GET /local', 3, 3 / 900, 0,
                      ms($d[1]), ms($d[2]), ms($d[2])),
   'GET /local: 3, no errors, the percentiles of its durations');
is($lines[4], sprintf('%-7s %-6s %-10s %7d %8.2f %6.1f%% %11s %11s %11s',
                      'edge', 'server', 'GET /fail', 1, 1 / 900, 100,
                      ms($fd), ms($fd), ms($fd)),
   'GET /fail: 1, all errors');
like($r->{out}, qr/\nedge: GET \/fail \[server\]\n +\S+ms  $tf\n/,
     'the slowest /fail trace is the one sent');

# --since 0: the whole stream
$r = run_cli($redis, 'top', '--since', '0');
like($r->{out}, qr/^edgetrace:spans: 4 spans \(and 1 entry that is not a span\)\n/,
     '--since 0: all of it');

# empty window, usage, Redis down
$r = run_cli($redis, '--stream', 'nothing', 'top');
is($r->{out}, "nothing: 0 spans in the last 15m\n", 'an empty stream');
$r = run_cli($redis, 'top', '--slowest', '99');
is($r->{rc}, 2, '--slowest 99: usage error');
$r = run_cli($redis, 'top', '--help');
like($r->{out}, qr/^Usage: edgetrace \[GLOBAL OPTIONS\] top /, 'top --help');
my $dead = dead_port();
$r = run_cli($dead, 'top');
is($r->{rc}, 1, 'Redis down: exit 1');
like($r->{err}, qr/cannot connect to Redis at redis:\/\/127\.0\.0\.1:$dead: Connection refused/,
     'Redis down: a clear error');

# the tool's own help
$r = run_cli(undef, '--help');
is($r->{rc}, 0, 'edgetrace --help: exit 0');
like($r->{out}, qr/^Usage: edgetrace \[--redis URL\] \[--cluster\] \[--stream KEY\]/,
     'edgetrace --help: usage');
like($r->{out}, qr/^  show TRACE_ID .*\n  tail .*\n  top .*\n  export /m,
     'edgetrace --help: the commands');
$r = run_cli(undef);
is($r->{rc}, 2, 'no command: usage on stderr, exit 2');
like($r->{err}, qr/^Usage: edgetrace/, 'no command: usage');
$r = run_cli(undef, 'frobnicate');
is($r->{rc}, 2, 'unknown command: exit 2');
is($r->{err}, "edgetrace: unknown command \"frobnicate\" (see edgetrace "
              . "--help)\n", 'unknown command: said so');
$r = run_cli(undef, 'help', 'top');
like($r->{out}, qr/^Usage: edgetrace \[GLOBAL OPTIONS\] top /,
     'edgetrace help top');
$r = run_cli(undef, '--version');
like($r->{out}, qr/^edgetrace \d+\.\d+\.\d+$/, '--version');

done_testing();
