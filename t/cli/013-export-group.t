#!/usr/bin/perl
# edgetrace export as a group: a forwarder killed mid-batch and another
# taking over its entries (XAUTOCLAIM); several forwarders delivering
# every span exactly once between them; pending entries trimmed away by
# MAXLEN counted, whether another consumer's or the forwarder's own.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli start_cli start_stack request);
use Edgetrace::Sink qw(start_sink);

my ($redis, $b, $ngx) = start_stack();
my $sink = start_sink();
my $url = $sink->url('/v1/traces');
my $rc = $redis->client;

sub pending {
    my ($group, $key) = @_;
    return $rc->xpending($key // 'edgetrace:spans', $group)->[0];
}

# waits until every pending entry of the group has been idle for $ms
sub idle_for {
    my ($group, $key, $ms) = @_;
    return wait_until(sub {
        my $l = $rc->xpending($key, $group, '-', '+', 1000);
        @$l && !grep { $_->[2] < $ms } @$l;
    }, 10);
}

sub accepted {
    my %n;
    $n{$_->{spanId}}++ for $sink->spans;
    return \%n;
}

sub span {
    my ($key) = @_;
    my $id = new_span_id();
    $rc->xadd($key, '*', v => 1, trace_id => new_trace_id(), span_id => $id,
              name => 'hand', kind => 'server', start_ns => '1000000',
              end_ns => '2000000', status => 'unset',
              'service.name' => 'edge');
    return $id;
}

# --- crash and takeover

request($redis, $ngx, "/api/t$_") for 1 .. 3;
my @ids = sort map { $_->{span_id} }
          stream_entries($redis->port, undef, count => 6);
is(scalar(@ids), 6, 'six spans');

$sink->respond('hang');
my $a = start_cli($redis, 'export', '--otlp', $url, '--group', 'gt',
                  '--consumer', 'A');
$sink->wait_requests(1);
is(pending('gt'), 6, 'A read the six entries, the collector hangs');
$a->kill('KILL');
is($a->wait(5), 128 + 9, 'A killed with SIGKILL mid-batch');

$sink->respond(200);
ok(idle_for('gt', 'edgetrace:spans', 1000), 'A\'s entries idle for 1s');
my $r = run_cli($redis, 'export', '--otlp', $url, '--group', 'gt',
                '--consumer', 'B', '--claim-idle', '1s', '--once');
is($r->{rc}, 0, 'B: exit 0');
is($r->{err}, "edgetrace: export: 6 spans exported in 1 batch; 0 invalid "
              . "entries skipped; 0 entries trimmed before delivery; 6 "
              . "entries taken over from other consumers\n",
   'B took over the six entries');
is_deeply([sort keys %{ accepted() }], \@ids, 'every span delivered');
is_deeply([values %{ accepted() }], [(1) x 6], '... once');
is(pending('gt'), 0, 'nothing pending');
my %cons = map { my %h = @$_; ($h{name} => $h{pending}) }
           @{ $rc->xinfo('CONSUMERS', 'edgetrace:spans', 'gt') };
is_deeply(\%cons, { A => 0 }, 'A is left with nothing pending');

# --- several forwarders, one group: each span exactly once

my $before = scalar $sink->requests;
my @fw = map { start_cli($redis, 'export', '--otlp', $url, '--group', 'gm',
                         '--consumer', "m$_", '--batch', '3',
                         '--from-now') } 1 .. 3;
wait_until(sub { !grep { $_->err !~ /forwarding/ } @fw }, 10);
for my $i (1 .. 20) {
    http_get($ngx->port, "/api/m$i");
}
my @new = stream_entries($redis->port, undef, count => 46, timeout => 10);
my @mids = sort map { $_->{span_id} } @new[6 .. $#new];
is(scalar(@mids), 40, 'forty new spans');
my %want = map { $_ => 1 } @mids;
ok(wait_until(sub {
    my $n = accepted();
    (grep { $n->{$_} } @mids) == 40 && pending('gm') == 0;
}, 30), 'the forwarders delivered all of them');
is($_->kill('TERM'), 0, 'forwarder stopped: exit 0') for @fw;
my $n = accepted();
is_deeply([map { $n->{$_} } @mids], [(1) x 40],
          'each span exactly once between the three');
my $sum = 0;
for my $f (@fw) {
    $sum += $1 if $f->err =~ /: (\d+) spans? exported/;
}
is($sum, 40, 'their counts add up to forty');
is_deeply([$sink->problems], [], 'every payload valid');

# --- trimmed while pending: another consumer's (XAUTOCLAIM's deleted ids)

my @t = map { span('trim') } 1 .. 5;
$sink->respond('hang');
$a = start_cli($redis, '--stream', 'trim', 'export', '--otlp', $url,
               '--group', 'gx', '--consumer', 'A');
$before = scalar $sink->requests;
$sink->wait_requests($before + 1);
is(pending('gx', 'trim'), 5, 'A holds five entries');
$a->kill('KILL');
$rc->xtrim('trim', 'MAXLEN', 0);
my @t2 = map { span('trim') } 1 .. 2;
$sink->respond(200);
ok(idle_for('gx', 'trim', 1000), 'idle for 1s');
$r = run_cli($redis, '--stream', 'trim', 'export', '--otlp', $url,
             '--group', 'gx', '--consumer', 'B', '--claim-idle', '1s',
             '--once');
is($r->{rc}, 0, 'trimmed: exit 0');
is($r->{err}, "edgetrace: export: 5 pending entries left by another "
              . "consumer had been trimmed from the stream (MAXLEN) before "
              . "delivery: lost\n"
              . "edgetrace: export: 2 spans exported in 1 batch; 0 invalid "
              . "entries skipped; 5 entries trimmed before delivery; 0 "
              . "entries taken over from other consumers\n",
   'trimmed: five counted and reported, the two new ones delivered');
is(pending('gx', 'trim'), 0, 'trimmed: nothing pending');
is_deeply([grep { accepted()->{$_} } @t], [], 'the trimmed ones were not sent');

# --- trimmed while pending: the consumer's own ([id, nil] entries)

my @o = map { span('own') } 1 .. 3;
$sink->respond('hang');
$a = start_cli($redis, '--stream', 'own', 'export', '--otlp', $url,
               '--group', 'go', '--consumer', 'C');
$before = scalar $sink->requests;
$sink->wait_requests($before + 1);
$a->kill('KILL');
$rc->xtrim('own', 'MAXLEN', 0);
$sink->respond(200);
$r = run_cli($redis, '--stream', 'own', 'export', '--otlp', $url,
             '--group', 'go', '--consumer', 'C', '--once');
is($r->{rc}, 0, 'own trimmed: exit 0');
is($r->{err}, "edgetrace: export: 3 pending entries had been trimmed from "
              . "the stream (MAXLEN) before delivery: lost\n"
              . "edgetrace: export: 0 spans exported in 0 batches; 0 "
              . "invalid entries skipped; 3 entries trimmed before "
              . "delivery; 0 entries taken over from other consumers\n",
   'own trimmed: counted and reported');
is(pending('go', 'own'), 0, 'own trimmed: nothing pending');

is(join('', $ngx->crashes), '', 'nginx did not crash');

done_testing();
