#!/usr/bin/perl
# The harness's Redis Cluster: six nodes on loopback, three masters that
# serve the 16384 slots between them and a replica each; a key lives on
# its slot's master, and a killed master's replica takes over.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(redis);
use Edgetrace::Cluster qw(:all);

my $c = start_cluster();

my @nodes = $c->nodes;
is(scalar @nodes, 6, 'six nodes');
ok((grep { $_->port < 55536 } @nodes) == 6, 'node ports below 55536');
ok((grep { kill 0, $_->pid } @nodes) == 6, 'all six run');
for my $n (@nodes) {
    my $info = cluster_info($n->port);
    like($info, qr/^cluster_state:ok\r?$/m, $n->port . ': cluster_state ok');
    like($info, qr/^cluster_known_nodes:6\r?$/m, $n->port . ': knows six');
}

my @masters = $c->masters;
is(scalar @masters, 3, 'three masters');
my %owner;
for my $m (@masters) {
    for my $r (@{ $m->{slots} }) {
        $owner{$_}++ for $r->[0] .. $r->[1];
    }
}
is(scalar keys %owner, 16384, '16384 slots covered');
ok(!(grep { $_ != 1 } values %owner), 'each slot once');
is(scalar(map { $c->replicas_of($_->{port}) } @masters), 3,
   'a replica for each master');

# a key on its slot's master; another master sends the client there
my $key = 'edgetrace:cluster:a';
my $slot = $c->slot_of($key);
my $port = $c->master_of_slot($slot);
ok(redis($port)->set($key, 'one'), "SET on the master of slot $slot");
is(redis($port)->get($key), 'one', 'GET there');
my ($other) = grep { $_->{port} != $port } @masters;
eval { redis($other->{port})->get($key) };
like($@, qr/MOVED $slot 127\.0\.0\.1:$port/, 'another master answers MOVED');
is(redis($port)->wait(1, 5000), 1, 'the replica has the write');

# the master killed: its replica serves the slot and has the key
my ($replica) = $c->replicas_of($port);
my $pid = $c->node($port)->pid;
my $new = $c->kill_master($port);
ok(!kill(0, $pid), 'the old master is gone');
is($new, $replica, 'its replica is the new master');
is($c->master_of_slot($slot), $new, 'and serves the slot');
is(redis($new)->get($key), 'one', 'the key is there');
is(scalar(() = $c->masters), 3, 'three masters again');
is(scalar $c->live, 5, 'five nodes left');
like(cluster_info($new), qr/^cluster_state:ok\r?$/m, 'cluster_state ok');

done_testing();
