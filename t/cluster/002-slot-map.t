#!/usr/bin/perl
# et_cluster's slot map from a live cluster's CLUSTER SLOTS and CLUSTER
# SHARDS replies (read by hiredis in build/unit/test_cluster --print)
# against what the nodes say in CLUSTER NODES, and against where keys are
# accepted: before and after a master is killed and its replica promoted.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use File::Temp ();
use Test::More;
use Edgetrace::Test qw(build_dir redis);
use Edgetrace::Cluster qw(:all);

my $bin = build_dir() . '/unit/test_cluster';
die "edgetrace: $bin is missing: run make\n" unless -x $bin;

# the map test_cluster prints for a reply
sub parsed {
    my ($kind, $reply) = @_;
    my $tmp = File::Temp->new;
    print $tmp $reply;
    close $tmp;
    my $out = `$bin --print $kind < $tmp`;
    return $out;
}

# the map as CLUSTER NODES of $port says, in test_cluster's format
sub expected {
    my ($port) = @_;
    my @ranges;
    for my $m (grep { $_->{flags}{master} } cluster_nodes($port)) {
        push @ranges, map { [@$_, $m->{port}] } @{ $m->{slots} };
    }
    @ranges = sort { $a->[0] <=> $b->[0] } @ranges;
    # adjacent ranges of one master are one run of slots in the map
    my @runs;
    for my $r (@ranges) {
        if (@runs && $runs[-1][2] == $r->[2] && $runs[-1][1] + 1 == $r->[0]) {
            $runs[-1][1] = $r->[1];
        } else {
            push @runs, [@$r];
        }
    }
    my $covered = 0;
    $covered += $_->[1] - $_->[0] + 1 for @runs;
    return join('', map { "$_->[0]-$_->[1] 127.0.0.1:$_->[2]\n" } @runs)
           . "covered $covered\n";
}

# every key goes where the map says: SET there is never MOVED
sub keys_follow {
    my ($c, $map) = @_;
    my @runs = map { [/^(\d+)-(\d+) 127\.0\.0\.1:(\d+)$/] }
               grep { /^\d/ } split /\n/, $map;
    my %seen;
    for my $i (1 .. 60) {
        my $key = "edgetrace:map:$i";
        my $slot = $c->slot_of($key);
        my ($run) = grep { $slot >= $_->[0] && $slot <= $_->[1] } @runs;
        return "no master for slot $slot" unless $run;
        eval { redis($run->[2])->set($key, $i); 1 }
            or return "SET $key on $run->[2]: $@";
        $seen{ $run->[2] }++;
    }
    return keys(%seen) == 3 ? '' : 'the keys did not reach three masters';
}

sub check_maps {
    my ($c, $what) = @_;
    for my $n ($c->live) {
        my $want = expected($n->port);
        is(parsed('slots', raw_command($n->port, 'CLUSTER', 'SLOTS')), $want,
           "$what: CLUSTER SLOTS of " . $n->port);
        is(parsed('shards', raw_command($n->port, 'CLUSTER', 'SHARDS')),
           $want, "$what: CLUSTER SHARDS of " . $n->port);
    }
    my ($any) = $c->live;
    my $map = parsed('slots', raw_command($any->port, 'CLUSTER', 'SLOTS'));
    like($map, qr/^covered 16384$/m, "$what: every slot has a master");
    is(() = $map =~ /^\d+-\d+ /mg, 3, "$what: three ranges");
    is(keys_follow($c, $map), '', "$what: keys go where the map says");
    return $map;
}

my $c = start_cluster();

my $before = check_maps($c, 'a new cluster');

my ($m) = $c->masters;
my $new = $c->kill_master($m->{port});
my $after = check_maps($c, 'after a failover');

like($before, qr/ 127\.0\.0\.1:$m->{port}$/m, 'the old master was in the map');
unlike($after, qr/ 127\.0\.0\.1:$m->{port}$/m, 'and is not any more');
my ($range) = $before =~ /^(\d+-\d+) 127\.0\.0\.1:$m->{port}$/m;
like($after, qr/^$range 127\.0\.0\.1:$new$/m, 'its replica serves its slots');

like(parsed('slots', "-ERR This instance has cluster support disabled\r\n"),
     qr/^error: an error reply$/, 'an error reply is refused');

done_testing();
