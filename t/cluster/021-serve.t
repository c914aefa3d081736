#!/usr/bin/perl
# edgetrace serve on a Redis Cluster (docs/cli.md "Redis Cluster"): 8
# shards on 3 masters, each read on the master of its slot through one
# consumer group; every span stored, nothing left pending on any shard.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cluster qw(:all);
use Edgetrace::Serve qw(start_serve all_acked);

my $N = 8;
my $KEY = 'spans';

my $c = start_cluster();
my @m = map { $_->{port} } $c->masters;
my $seeds = "redis://127.0.0.1:$m[0],127.0.0.1:$m[1]";

my %want;
for my $i (0 .. $N - 1) {
    my $t;
    do { $t = new_trace_id() } until trace_shard($t, $N) == $i;
    my $key = shard_key($KEY, $i, $N);
    my $r = redis($c->master_of_slot(key_slot($key)));
    $r->xadd($key, '*', v => 1, trace_id => $t, span_id => new_span_id(),
             name => "root $i", kind => 'server', start_ns => '1000000',
             end_ns => '2000000', status => 'unset',
             'service.name' => 'edge');
    $want{$t} = $key;
}

my $s = start_serve(undef, global => ['--redis', $seeds, '--cluster',
                                      '--stream', $KEY, '--shards', $N]);
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == $N }, 30),
   "a span of each of the $N shards stored");
for my $t (sort keys %want) {
    my ($st, $j) = $s->get("/api/traces/$t");
    is($j->{data}[0]{traceID}, $t, "the trace of $want{$t}");
    my $r = redis($c->master_of_slot(key_slot($want{$t})));
    ok(all_acked($r, $want{$t}),
       "$want{$t}: nothing pending");
}
is($s->stop, 0, 'exit 0');

done_testing();
