#!/usr/bin/perl
# edgetrace tail: new spans live, one line each, exactly; the filters;
# entries that are not spans; Redis going away and coming back.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use POSIX ();
use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli start_cli start_stack request);

$ENV{TZ} = 'UTC';

my ($redis, $be, $ngx) = start_stack();
my $bp = $be->port;
my $rc = $redis->client;

sub ms { sprintf '%d.%03dms', int($_[0] / 1e6), int($_[0] / 1e3) % 1000 }

sub line {
    my ($e, $summary) = @_;
    my $sec = substr($e->{start_ns}, 0, -9);
    return POSIX::strftime('%H:%M:%S', gmtime $sec) . '.'
        . substr($e->{start_ns}, -9, 3)
        . " $e->{trace_id} $e->{span_id} "
        . sprintf('%-5s %11s  ', $e->{status} eq 'error' ? 'ERROR' : 'ok',
                  ms($e->{end_ns} - $e->{start_ns}))
        . "$e->{'service.name'}: $e->{name} [$e->{kind}]$summary";
}

sub hand {
    my (%o) = @_;
    my $start = int(Time::HiRes::time() * 1e6) . '000';
    my %e = (v => 1, trace_id => new_trace_id(), span_id => new_span_id(),
             name => 'work', kind => 'server', start_ns => $start,
             end_ns => $start + $o{ms} * 1_000_000,
             status => $o{error} ? 'error' : 'unset',
             'service.name' => $o{service} // 'app');
    $rc->xadd('edgetrace:spans', '*', %e);
    return \%e;
}

sub ready {
    my ($p) = @_;
    return wait_until(sub { $p->err =~ /following edgetrace:spans/ }, 10);
}

# something before tail starts: not shown
request($redis, $ngx, '/local');

my $all = start_cli($redis, 'tail');
my $err = start_cli($redis, 'tail', '--errors');
my $app = start_cli($redis, 'tail', '--service', 'app');
my $slow = start_cli($redis, 'tail', '--slower-than', '500ms');
my $both = start_cli($redis, 'tail', '--service=app', '--service', 'other',
                     '--errors', '--slower-than=500ms');
ok(ready($_), 'tail ready') for $all, $err, $app, $slow, $both;
like($all->err, qr/^edgetrace: tail: following edgetrace:spans at redis:\/\/127\.0\.0\.1:\d+ \(interrupt to stop\)$/m,
     'tail says what it follows');

my $t1 = request($redis, $ngx, '/api/x?q=1');
my $t2 = request($redis, $ngx, '/fail');
my $h1 = hand(ms => 10);
my $h2 = hand(ms => 1000);
my $h3 = hand(ms => 2000, error => 1, service => 'other');
$rc->xadd('edgetrace:spans', '*', junk => 'yes');
my $mark = hand(ms => 3000, error => 1);

ok(wait_until(sub { $_->out =~ /$mark->{trace_id}/ }, 10),
   'the marker reached every tail') for $all, $err, $app, $slow, $both;

my @e = stream_entries($redis->port, undef, count => 9);
my %by = map { $_->{span_id} => $_ } grep { $_->{span_id} } @e;
my @t1 = sort { $a->{_id} cmp $b->{_id} } grep { $_->{span_id} }
         grep { ($_->{trace_id} // "") eq $t1 } @e;
my ($t2s) = grep { ($_->{trace_id} // "") eq $t2 } @e;
my ($srv1) = grep { $_->{kind} eq 'server' } @t1;
my ($cli1) = grep { $_->{kind} eq 'client' } @t1;
my @first = $t1[0]{kind} eq 'client' ? ($cli1, $srv1) : ($srv1, $cli1);

my %sum = (
    $srv1->{span_id} => ' GET /api/x?q=1 200',
    $cli1->{span_id} => " GET http://127.0.0.1:$bp/api/x?q=1 200"
                        . " peer=127.0.0.1:$bp",
    $t2s->{span_id}  => ' GET /fail 503 error=503',
);
sub expect {
    return join '', map { line($_, $sum{$_->{span_id}} // '') . "\n" } @_;
}

is($all->out, expect(@first, $t2s, $by{$h1->{span_id}},
                     $by{$h2->{span_id}}, $by{$h3->{span_id}},
                     $by{$mark->{span_id}}),
   'tail: every new span, one exact line each, in stream order');
is($err->out, expect($t2s, $by{$h3->{span_id}}, $by{$mark->{span_id}}),
   'tail --errors');
is($app->out, expect($by{$h1->{span_id}}, $by{$h2->{span_id}},
                     $by{$mark->{span_id}}),
   'tail --service app');
is($slow->out, expect($by{$h2->{span_id}}, $by{$h3->{span_id}},
                      $by{$mark->{span_id}}),
   'tail --slower-than 500ms');
is($both->out, expect($by{$h3->{span_id}}, $by{$mark->{span_id}}),
   'tail: the filters together');
like($all->err, qr/^edgetrace: tail: skipped entry \d+-\d+: a required field is missing$/m,
     'an entry that is not a span: skipped, said on stderr');
ok($all->alive, 'tail keeps running');
is($_->kill('TERM'), 128 + 15, 'stopped by SIGTERM')
    for $all, $err, $app, $slow, $both;

# --- Redis goes away and comes back

my $r2 = start_redis();
my $port2 = $r2->port;
my $p = start_cli($r2, 'tail');
ok(ready($p), 'tail on a second Redis');
$r2->stop;
ok(wait_until(sub { $p->err =~ /lost Redis/ }, 10), 'Redis gone: noticed');
$r2 = start_redis(port => $port2);
$rc = $r2->client;
my $back = hand(ms => 1);
ok(wait_until(sub { $p->out =~ /$back->{trace_id}/ }, 20),
   'Redis back: new spans shown');
like($p->err, qr/^edgetrace: tail: lost Redis at redis:\/\/127\.0\.0\.1:$port2: .*; reconnecting\nedgetrace: tail: Redis at redis:\/\/127\.0\.0\.1:$port2 is back; following on from 0-0$/m,
     'reported once each way');
$p->kill('TERM');

# --- usage, Redis down at the start

my $r = run_cli($redis, 'tail', '--slower-than', 'x');
is($r->{rc}, 2, 'bad duration: usage error');
$r = run_cli($redis, 'tail', 'extra');
is($r->{rc}, 2, 'extra argument: usage error');
$r = run_cli($redis, 'tail', '--help');
is($r->{rc}, 0, 'tail --help: exit 0');
like($r->{out}, qr/^Usage: edgetrace \[GLOBAL OPTIONS\] tail /, 'tail --help');
my $dead = dead_port();
$r = run_cli($dead, 'tail');
is($r->{rc}, 1, 'Redis down at the start: exit 1');
is($r->{err}, "edgetrace: cannot connect to Redis at "
              . "redis://127.0.0.1:$dead: Connection refused\n",
   'Redis down at the start: a clear error');

is(join('', $ngx->crashes), '', 'nginx did not crash');

done_testing();
