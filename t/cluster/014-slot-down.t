#!/usr/bin/perl
# A shard's slot served by no master for a while (CLUSTER DELSLOTS, then
# ADDSLOTS): the nodes answer CLUSTERDOWN, or nothing serves the slot in
# the map; the exporter backs off and sends again (docs/counters.md "Redis
# Cluster"), so nothing is dropped and every span ends on the cluster.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(:all);
use Edgetrace::Cluster qw(:all);

my $N = 8;
my $KEY = 'spans';

my $c = start_cluster();
my @m = map { $_->{port} } $c->masters;

my $ngx = start_nginx(ports => { SEED => $m[0] }, conf => <<"EOF");
    edgetrace_redis redis://127.0.0.1:%%SEED%% cluster;
    edgetrace_stream $KEY shards=$N;
    edgetrace_flush_interval 20ms;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { return 200 "ok\\n"; }
        location = /metrics { edgetrace off; edgetrace_status; }
    }
EOF

sub m_ { metrics($ngx->port) }

ok(wait_until(sub { m_()->{edgetrace_redis_connected} == 3 }, 10),
   'connected');

my $key = shard_key($KEY, 0, $N);
my $slot = $c->slot_of($key);
my $owner = $c->master_of_slot($slot);

# the slot unassigned everywhere: the cluster is down for it
redis($_->port)->cluster('delslots', $slot) for $c->live;
ok(wait_until(sub { cluster_info($owner) =~ /^cluster_state:fail/m }, 10),
   'the cluster says it is down');

my (%sent, $t);
for (1 .. 60) {
    $t = new_trace_id();
    my $r = http_get($ngx->port, '/', headers => [[traceparent =>
                                                   new_traceparent($t)]]);
    $sent{$t} = trace_shard($t, $N) if $r->{status} == 200;
}
my $in0 = grep { $_ == 0 } values %sent;
cmp_ok($in0, '>', 0, "some of the 60 spans are in shard 0 ($in0)");

Time::HiRes::sleep(1);
my $x = m_();
is($x->{edgetrace_spans_total}, 60, '60 spans');
cmp_ok($x->{edgetrace_spans_queued}, '>=', $in0,
       'shard 0\'s spans wait in the queue');
is($x->{'edgetrace_spans_dropped_total{reason="redis_error"}'}, 0,
   'none dropped');
is(spans_accounted($x), 60, 'the counters add up while the slot is down');

# the slot served again by the master it had
redis($owner)->cluster('addslots', $slot);
$c->wait_ok(30) or BAIL_OUT('the cluster is not ok again');

ok(wait_until(sub { m_()->{edgetrace_spans_queued} == 0 }, 15),
   'everything sent once the slot is served again')
    or diag explain(m_()), $ngx->error_log;
$x = m_();
is($x->{edgetrace_spans_exported_total}, 60, 'all 60 exported');
is($x->{'edgetrace_spans_dropped_total{reason="redis_error"}'}, 0,
   'none dropped');
my @e = $c->shard_entries($KEY, $N);
is(scalar @e, 60, 'the masters hold the 60');
is(scalar(grep { !exists $sent{ $_->{trace_id} } } @e), 0,
   'the spans sent');
like($ngx->error_log, qr/"CLUSTERDOWN [^"]*": sent again later/,
     "CLUSTERDOWN logged with the node's address");
like($ngx->error_log, qr/slot map: 1 of 16384 slots served by no master/,
     "the slot served by no master logged");
is_deeply([$ngx->crashes], [], 'no worker crashed (sanitizer reports included)');

done_testing();
