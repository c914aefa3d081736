#!/usr/bin/perl
# edgetrace on a Redis Cluster (docs/cli.md "Redis Cluster"): show, tail,
# top and export across 8 shards on 3 masters, each shard read on the
# master of its slot; export's group on every shard, several forwarders
# delivering each span exactly once, nothing left pending; a master killed
# during export: it goes on through the replica, every span delivered at
# least once; a slot moved under show (ASK, then MOVED); --cluster on a
# Redis that is not a cluster, and seed lists with bad entries.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(:all);
use Edgetrace::Cluster qw(:all);
use Edgetrace::Cli qw(run_cli start_cli);
use Edgetrace::Sink qw(start_sink);

my $N = 8;
my $KEY = 'spans';

my $c = start_cluster();
my @m = map { $_->{port} } $c->masters;
my $seeds = "redis://127.0.0.1:$m[0],127.0.0.1:$m[1]";
my @g = ('--redis', $seeds, '--cluster', '--stream', $KEY, '--shards', $N);

sub master_of_shard { $c->master_of_shard($KEY, $_[0], $N) }

my %on = map { master_of_shard($_) => 1 } 0 .. $N - 1;
is(scalar(keys %on), 3, '8 shards on 3 masters');

sub trace_of { shard_trace_id($_[0], $N) }

# a span as the modules write it, on its shard's master; returns its id
sub span {
    my ($t, %o) = @_;
    my $id = new_span_id();
    my $key = shard_key($KEY, trace_shard($t, $N), $N);
    my $r = redis($c->master_of_slot(key_slot($key)));
    $r->xadd($key, '*', v => 1, trace_id => $t, span_id => $id,
             ($o{parent} ? (parent_id => $o{parent}) : ()),
             name => $o{name} // 'hand', kind => 'server',
             start_ns => $o{start} // '1000000',
             end_ns => $o{end} // '2000000', status => 'unset',
             'service.name' => $o{service} // 'edge');
    # on the replica too, as a master killed later must not lose it
    $r->wait(1, 2000) if $o{replicate};
    return $id;
}

# --- show: each trace read on the master of its shard

my %traces;
for my $i (0 .. $N - 1) {
    my $t = trace_of($i);
    my $root = span($t, name => "root$i", start => 1000000, end => 9000000);
    my $kid = span($t, parent => $root, name => "kid$i", start => 2000000,
                   end => 3000000, service => 'app');
    $traces{$t} = [$root, $kid];
}

for my $t (sort keys %traces) {
    my $i = trace_shard($t, $N);
    my $r = run_cli(undef, @g, 'show', $t, '--since', '0');
    is($r->{rc}, 0, "show a trace of shard $i: exit 0") or diag $r->{err};
    like($r->{out}, qr/^trace $t: 2 spans, 2 services, 0 errors/,
         "show: shard ${i}'s trace, from master " . master_of_shard($i));
    like($r->{out}, qr/edge: root$i .*\n.*app: kid$i/, 'show: the tree');
}

my $missing = trace_of(3);
my $r = run_cli(undef, @g, 'show', $missing, '--since', '0');
is($r->{rc}, 1, 'show: a trace not there, exit 1');
like($r->{err}, qr/not found in \Q${\ shard_key($KEY, 3, $N)}\E/,
     'show: names the shard read');

# --- top: summed over the shards of the three masters

$r = run_cli(undef, @g, 'top', '--since', '0');
is($r->{rc}, 0, 'top: exit 0') or diag $r->{err};
for my $i (0 .. $N - 1) {
    like($r->{out}, qr/^edge\s+server\s+root$i\s+1\s/m,
         "top: root$i of shard $i counted once");
}
my $total = 0;
$total += $1 while $r->{out} =~ /^\S+\s+(?:server|client)\s+\S+\s+(\d+)\s/mg;
is($total, 2 * $N, 'top: every span of every shard');

# --- tail: the shards polled on their masters, every new span once

my $tail = start_cli(undef, @g, 'tail');
ok(wait_until(sub { $tail->err =~ /following/ }, 10), 'tail: started')
    or diag $tail->err;
like($tail->err, qr/following spans \(8 shards\) at \Q$seeds\E \(cluster\)/,
     'tail: says the seeds and the cluster');
my @tailed;
for my $i (0 .. $N - 1) {
    push @tailed, span(trace_of($i), name => "tail$i");
}
ok(wait_until(sub { my $o = $tail->out; !grep { $o !~ /$_/ } @tailed }, 10),
   'tail: the spans of every shard')
    or diag $tail->out, $tail->err;
is(scalar(() = $tail->out =~ /\n/g), $N, 'tail: each once, nothing else');
$tail->kill('TERM');

# --- export: one group on every shard, three forwarders share it

my $sink = start_sink();
my $url = $sink->url('/v1/traces');

sub accepted {
    my %n;
    $n{$_->{spanId}}++ for $sink->spans;
    return \%n;
}

sub pending {
    my ($group) = @_;
    my $n = 0;
    for my $i (0 .. $N - 1) {
        my $key = shard_key($KEY, $i, $N);
        my $p = eval { redis(master_of_shard($i))->xpending($key, $group) };
        return -1 unless $p;
        $n += $p->[0];
    }
    return $n;
}

my @all = ((map { @$_ } values %traces), @tailed);
my @fw = map { start_cli(undef, @g, 'export', '--otlp', $url, '--group',
                         'ge', '--consumer', "f$_", '--batch', '4') } 1 .. 3;
my @more;
for my $k (1 .. 24) {
    push @more, span(trace_of($k % $N), name => "more$k");
}
ok(wait_until(sub {
    my $n = accepted();
    !grep({ !$n->{$_} } @all, @more) && pending('ge') == 0;
}, 30), 'export: every span delivered, nothing pending on any shard')
    or diag map { $_->err } @fw;
is($_->kill('TERM'), 0, 'export: forwarder stopped, exit 0') for @fw;
my $n = accepted();
is_deeply([grep { $n->{$_} != 1 } @all, @more], [],
          'export: each span exactly once between the three');
my $sum = 0;
for my $f (@fw) {
    $sum += $1 if $f->err =~ /: (\d+) spans? exported/;
}
is($sum, scalar(@all) + scalar(@more), 'export: the counts add up');
is_deeply([$sink->problems], [], 'export: every payload valid');

# --- export --once, and a master killed while a forwarder runs

$r = run_cli(undef, @g, 'export', '--otlp', $url, '--group', 'go',
             '--once');
is($r->{rc}, 0, 'export --once: exit 0') or diag $r->{err};
like($r->{err}, qr/: ${\ (@all + @more)} spans exported/,
     'export --once: every span of the stream');
is(pending('go'), 0, 'export --once: nothing pending');

my $before = accepted();
my $fk = start_cli(undef, @g, 'export', '--otlp', $url, '--group', 'gk',
                   '--consumer', 'k', '--batch', '4', '--from-now');
ok(wait_until(sub { $fk->err =~ /forwarding/ }, 10), 'failover: forwarding');
my (@k1, @k2);
push @k1, span(trace_of($_ % $N), name => "k$_", replicate => 1)
    for 1 .. 16;
ok(wait_until(sub { my $n = accepted(); !grep { !$n->{$_} } @k1 }, 15),
   'failover: the first spans delivered');
my $victim = master_of_shard(0);
my $new = $c->kill_master($victim);
ok($new, "failover: master $victim killed, replica $new took over");
push @k2, span(trace_of($_ % $N), name => "k$_") for 17 .. 40;
ok(wait_until(sub {
    my $n = accepted();
    !grep({ !$n->{$_} } @k1, @k2) && pending('gk') == 0;
}, 30), 'failover: every span delivered, nothing pending')
    or diag $fk->err;
ok($fk->alive, 'failover: the forwarder ran on');
like($fk->err, qr/is back/, 'failover: it said Redis was back');
$n = accepted();
is_deeply([grep { !$n->{$_} } @k1, @k2], [], 'failover: at least once');
is($fk->kill('TERM'), 0, 'failover: exit 0');

# --- a slot moving, then moved: ASK, then MOVED (show, and a tail that
# learnt the map before)

my $t0 = trace_of(0);
span($t0, name => 'moving');
$tail = start_cli(undef, @g, 'tail');
ok(wait_until(sub { $tail->err =~ /following/ }, 10), 'moving: tail started');
my $key = shard_key($KEY, 0, $N);
my $slot = key_slot($key);
my $src = $c->master_of_slot($slot);
my ($dst) = grep { $_ != $src } map { $_->{port} } $c->masters;
my %id = map { $_->{port} => $_->{id} }
         grep { $_->{flags}{myself} }
         map { cluster_nodes($_->{port}) } $c->masters;
redis($dst)->cluster('setslot', $slot, 'importing', $id{$src});
redis($src)->cluster('setslot', $slot, 'migrating', $id{$dst});
redis($src)->migrate('127.0.0.1', $dst, '', 0, 5000, 'KEYS', $key);
$r = run_cli(undef, @g, 'show', $t0, '--since', '0');
is($r->{rc}, 0, 'ASK: show follows the slot to its new node')
    or diag $r->{err};
like($r->{out}, qr/edge: moving/, 'ASK: the trace');
for my $p (map { $_->{port} } $c->masters) {
    redis($p)->cluster('setslot', $slot, 'node', $id{$dst});
}
$r = run_cli(undef, @g, 'show', $t0, '--since', '0');
is($r->{rc}, 0, 'moved: show') or diag $r->{err};
like($r->{out}, qr/edge: moving/, 'moved: the trace');
my $moved = span(trace_of(0), name => 'moved');
ok(wait_until(sub { $tail->out =~ /$moved/ }, 10),
   'MOVED: tail reads shard 0 on its new master')
    or diag $tail->err;
ok($tail->alive, 'MOVED: tail runs on');
unlike($tail->err, qr/lost|XREAD/, 'MOVED: followed, nothing reported');
$tail->kill('TERM');

# --- the cluster down (a slot no master serves: CLUSTERDOWN on every
# node), then whole again: tail waits and goes on

$tail = start_cli(undef, @g, 'tail');
ok(wait_until(sub { $tail->err =~ /following/ }, 10), 'down: tail started');
my @used = map { key_slot(shard_key($KEY, $_, $N)) } 0 .. $N - 1;
my ($free) = grep { my $s = $_; !grep { $_ == $s } @used } 100 .. 200;
my $owner = $c->master_of_slot($free);
eval { redis($_->port)->cluster('delslots', $free) } for $c->live;
ok(wait_until(sub { cluster_info($owner) =~ /^cluster_state:fail/m }, 10),
   "down: slot $free unassigned, the cluster is down");
Time::HiRes::sleep(1);
ok($tail->alive, 'down: tail waits');
like($tail->err, qr/lost Redis at .*CLUSTERDOWN.*; reconnecting/,
     'down: says so');
redis($owner)->cluster('addslots', $free);
ok($c->wait_ok(20), 'down: the cluster whole again');
my $back = span(trace_of(5), name => 'back');
ok(wait_until(sub { $tail->out =~ /$back/ }, 10), 'down: tail goes on')
    or diag $tail->err;
like($tail->err, qr/is back/, 'down: says Redis is back');
$tail->kill('TERM');

# --- hostile input

my $plain = start_redis();
$r = run_cli(undef, '--redis', 'redis://127.0.0.1:' . $plain->port,
             '--cluster', 'top');
is($r->{rc}, 1, 'not a cluster: exit 1');
like($r->{err}, qr/is not a Redis Cluster node/, 'not a cluster: says so');
$r = run_cli(undef, '--redis', 'redis://127.0.0.1:' . $plain->port,
             '--cluster', 'export', '--otlp', $url, { timeout => 15 });
is($r->{rc}, 1, 'not a cluster: export does not retry forever');

my $dead = dead_port();
$r = run_cli(undef, '--redis', "redis://127.0.0.1:$dead,127.0.0.1:$m[2]",
             '--cluster', '--stream', $KEY, '--shards', $N, 'show',
             (keys %traces)[0], '--since', '0');
is($r->{rc}, 0, 'a seed down: the next one gives the map')
    or diag $r->{err};

# a "seed" answering an array header of two billion elements
my ($gport) = garbage_seed();
$r = run_cli(undef, '--redis', "redis://127.0.0.1:$gport,127.0.0.1:$m[2]",
             '--cluster', '--stream', $KEY, '--shards', $N, 'top');
is($r->{rc}, 0, 'a seed answering garbage is passed over')
    or diag $r->{err};
$r = run_cli(undef, '--redis', "redis://127.0.0.1:$gport", '--cluster',
             'top');
is($r->{rc}, 1, 'garbage only: exit 1');
like($r->{err}, qr/no node of the cluster gave its slot map: Redis at 127\.0\.0\.1:$gport/,
     'garbage only: says which seed failed');

$r = run_cli(undef, '--redis', "redis://127.0.0.1:$m[0],127.0.0.1:99999",
             '--cluster', 'top');
is($r->{rc}, 2, 'a seed with a bad port: usage error');
like($r->{err}, qr/invalid --redis .*\(--cluster\)/, '... named');
$r = run_cli(undef, '--redis', $seeds, 'top');
is($r->{rc}, 2, 'several seeds without --cluster: usage error');
like($r->{err}, qr/cluster/, '... says cluster');

{
    local $ENV{EDGETRACE_CLUSTER} = '1';
    $r = run_cli(undef, '--redis', $seeds, '--stream', $KEY, '--shards', $N,
                 'show', $t0, '--since', '0');
    is($r->{rc}, 0, '$EDGETRACE_CLUSTER=1: cluster mode') or diag $r->{err};
    local $ENV{EDGETRACE_CLUSTER} = 'yes';
    $r = run_cli(undef, '--redis', $seeds, 'top');
    is($r->{rc}, 2, '$EDGETRACE_CLUSTER=yes: usage error');
}

done_testing();
