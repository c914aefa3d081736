#!/usr/bin/perl
# The whole Redis Cluster down, then back (docs/counters.md "Redis
# Cluster"): spans wait in the queue, counted as queued, and reach the
# cluster when it returns, without a restart; the counters add up exactly
# all along.  And a seed that answers garbage to CLUSTER SLOTS: the map is
# learnt from the next seed.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cluster qw(:all);

my $N = 8;
my $KEY = 'spans';

my $c = start_cluster();
my @m = map { $_->{port} } $c->masters;

# a "seed" answering an array header of two billion elements
my ($gport) = garbage_seed();

my $ngx = start_nginx(ports => { GARBAGE => $gport, SEED => $m[0] },
                      conf => <<"EOF");
    edgetrace_redis redis://127.0.0.1:%%GARBAGE%%,127.0.0.1:%%SEED%% cluster;
    edgetrace_stream $KEY shards=$N;
    edgetrace_flush_interval 20ms;
    edgetrace_redis_connect_timeout 300ms;
    edgetrace_redis_timeout 1s;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { return 200 "ok\\n"; }
        location = /metrics { edgetrace off; edgetrace_status; }
    }
EOF

sub m_ { metrics($ngx->port) }

sub held { scalar(() = $c->shard_entries($KEY, $N)) }

ok(wait_until(sub { m_()->{edgetrace_redis_connected} == 3 }, 10),
   'the map from the second seed, the first answering garbage')
    or diag $ngx->error_log;
is($ngx->alive, 1, 'nginx lives');

# each master on the page by its address (docs/counters.md)
sub node { m_()->{"edgetrace_redis_node_$_[0]\{node=\"127.0.0.1:$_[1]\"}"} }
is_deeply([map { node('connected', $_) } @m], [1, 1, 1],
          'each master: one connection');
is_deeply([map { node('errors_total', $_) } @m], [0, 0, 0],
          'each master: no errors');
is(m_()->{'edgetrace_redis_redirects_total{kind="moved"}'}, 0,
   'no redirection while the cluster is stable');

http_get($ngx->port, '/a') for 1 .. 20;
ok(wait_until(sub { m_()->{edgetrace_spans_exported_total} == 20 }, 5),
   '20 spans exported');

# --- every node down
$c->stop;
http_get($ngx->port, '/b') for 1 .. 30;
ok(wait_until(sub { m_()->{edgetrace_redis_connected} == 0 }, 10),
   'no master connected');
my $x = m_();
is($x->{edgetrace_spans_total}, 50, '50 spans');
is($x->{edgetrace_spans_queued}, 30, 'the 30 since wait in the queue');
is(spans_accounted($x), 50, 'the counters add up while the cluster is down');
is_deeply([map { node('connected', $_) } @m], [0, 0, 0],
          'each master: not connected');
is_deeply([map { node('errors_total', $_) > 0 ? 1 : 0 } @m], [1, 1, 1],
          'each master: its errors counted');
my $sum = 0;
$sum += node('errors_total', $_) for @m;
cmp_ok($sum, '<=', m_()->{edgetrace_redis_errors_total},
       '... their sum within redis_errors_total (the slot map\'s are not '
       . 'a master\'s)');

# --- back: the same nodes, the same ports, their data on disk
$c->restart;
ok(wait_until(sub { my $x = m_(); $x->{edgetrace_spans_queued} == 0
                    && $x->{edgetrace_redis_connected} == 3 }, 30),
   'export resumes when the cluster is back, without a restart')
    or diag explain(m_()), $ngx->error_log;
$x = m_();
is($x->{edgetrace_spans_exported_total}, 50, 'all 50 exported');
is(spans_accounted($x), 50, 'the counters add up');
is($x->{'edgetrace_spans_dropped_total{reason="redis_error"}'}, 0,
   'nothing dropped');
is_deeply([map { node('connected', $_) } @m], [1, 1, 1],
          'each master: connected again');
# the nodes run without persistence: the 20 from before the outage are gone
is(held(), 30, 'the masters hold the 30 queued while they were down');


is_deeply([$ngx->crashes], [], "no worker crashed (sanitizer reports included)");

done_testing();
