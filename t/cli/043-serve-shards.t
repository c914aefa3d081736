#!/usr/bin/perl
# edgetrace serve on a sharded stream (docs/stream.md, "Sharded
# streams"): --shards N reads every shard through one consumer group,
# stores the spans of each, and acknowledges each entry on its own shard.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Serve qw(start_serve all_acked);

my $N = 4;
my $redis = start_redis();
my $rc = $redis->client;

# a trace id of shard $i
sub trace_of {
    my ($i) = @_;
    for (;;) {
        my $t = new_trace_id();
        return $t if trace_shard($t, $N) == $i;
    }
}

# a root span and a child of another service, on the trace's shard
my %want;
for my $i (0 .. $N - 1) {
    my $t = trace_of($i);
    my $key = shard_key('edgetrace:spans', $i, $N);
    my ($root, $child) = (new_span_id(), new_span_id());
    $rc->xadd($key, '*', v => 1, trace_id => $t, span_id => $root,
              name => "root $i", kind => 'server', start_ns => '1000000',
              end_ns => '9000000', status => 'unset', 'service.name' => 'edge');
    $rc->xadd($key, '*', v => 1, trace_id => $t, span_id => $child,
              parent_id => $root, name => "child $i", kind => 'server',
              start_ns => '2000000', end_ns => '3000000', status => 'error',
              'service.name' => 'app');
    $want{$t} = $key;
}

my $s = start_serve($redis, global => ['--shards', $N]);
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == 2 * $N }),
   "the spans of the $N shards stored");
is($s->wait_status(sub { 1 })->{stream}, "edgetrace:spans ($N shards)",
   'status names the shards');
for my $t (sort keys %want) {
    my ($st, $j) = $s->get("/api/traces/$t");
    is(scalar @{ $j->{data}[0]{spans} }, 2, "trace of $want{$t}: two spans");
    ok(all_acked($rc, $want{$t}),
       "$want{$t}: nothing pending");
}
my ($st, $j) = $s->get('/api/dependencies?endTs=3600000&lookback=3600000');
is_deeply($j->{data}, [{ parent => 'edge', child => 'app',
                         callCount => $N, errorCount => $N }],
          'edge -> app, once per shard\'s trace, each failed');
($st, $j) = $s->get('/api/traces?service=app&tags=%7B%22error%22%3A%22true%22%7D'
                    . '&start=0&end=3600000000');
is(scalar @{ $j->{data} }, $N, 'the failed spans found by error=true');
is($s->stop, 0, 'exit 0');

done_testing();
