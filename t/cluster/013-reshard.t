#!/usr/bin/perl
# A shard's slot moved to another master under traffic, step by step as
# `redis-cli --cluster reshard` moves a slot (IMPORTING, MIGRATING, MIGRATE,
# SETSLOT NODE): the exporter follows ASK while the key is on its way and
# MOVED once it is there (docs/counters.md "Redis Cluster"); nothing is
# dropped or stored twice, and every span is on the master of its shard.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use POSIX ();
use Time::HiRes ();
use Edgetrace::Test qw(:all);
use Edgetrace::Cluster qw(:all);

my $N = 8;
my $KEY = 'spans';

my $c = start_cluster();
my @m = map { $_->{port} } $c->masters;

my $ngx = start_nginx(workers => 2, ports => { SEED => $m[0] },
                      conf => <<"EOF");
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

ok(wait_until(sub { m_()->{edgetrace_redis_connected} == 6 }, 10),
   'connected');

# shard 0's slot, its master and another one
my $key = shard_key($KEY, 0, $N);
my $slot = $c->slot_of($key);
my $src = $c->master_of_slot($slot);
my ($dst) = grep { $_ != $src } @m;
my %id = map { $_->{port} => $_->{id} }
         grep { $_->{flags}{myself} } map { cluster_nodes($_) } @m;

# the key exists before the move: traffic until shard 0 has an entry
my $t0;
for (1 .. 400) {
    my $t = new_trace_id();
    next unless trace_shard($t, $N) == 0;
    http_get($ngx->port, '/', headers => [[traceparent =>
                                           new_traceparent($t)]]);
    $t0 = $t;
    last;
}
ok(wait_until(sub { redis($src)->xlen($key) >= 1 }, 5),
   "shard 0 on its master $src");

my $pid = fork // die "fork: $!";
if ($pid == 0) {
    traffic($ngx->port, 5, [['/t', 200]]);
    POSIX::_exit(0);
}


Time::HiRes::sleep(0.5);
redis($dst)->cluster('setslot', $slot, 'importing', $id{$src});
redis($src)->cluster('setslot', $slot, 'migrating', $id{$dst});
Time::HiRes::sleep(0.5);

# the key moves: the source answers ASK for it from now on
redis($src)->migrate('127.0.0.1', $dst, '', 0, 5000, 'KEYS', $key);
Time::HiRes::sleep(1);

# the slot is the destination's: MOVED
redis($_)->cluster('setslot', $slot, 'node', $id{$dst}) for $dst, $src;
redis($_)->cluster('setslot', $slot, 'node', $id{$dst})
    for grep { $_ != $src && $_ != $dst } @m;
waitpid $pid, 0;

is($c->master_of_slot($slot), $dst, "the slot moved to $dst");

ok(wait_until(sub { m_()->{edgetrace_spans_queued} == 0 }, 15),
   'everything sent') or diag explain m_();
my $x = m_();
is($x->{'edgetrace_spans_dropped_total{reason="redis_error"}'}, 0,
   'nothing dropped');
is($x->{'edgetrace_spans_dropped_total{reason="queue_full"}'}, 0,
   'nor lost to a full queue');
is($x->{edgetrace_spans_exported_total}, $x->{edgetrace_spans_total},
   'every span exported');

my @e = $c->shard_entries($KEY, $N);
my $n = @e;
my $wrong = grep { trace_shard($_->{trace_id}, $N) != $_->{shard} } @e;
my %seen;
my $twice = grep { $seen{ $_->{span_id} }++ } @e;
is($n, $x->{edgetrace_spans_exported_total},
   'the masters hold every span exported');
is($wrong, 0, 'each in the shard of its trace');
is($twice, 0, 'none twice');
is(eval { redis($src)->exists($key) } // 0, 0,
   'shard 0 left its old master');
cmp_ok(redis($dst)->xlen($key), '>', 1, 'and grew on its new one');
like($ngx->error_log, qr/\[info\].*connected to redis cluster node/,
     'connected');
unlike($ngx->error_log, qr/counters no longer add up/,
       'no span unaccounted');

is_deeply([$ngx->crashes], [], "no worker crashed (sanitizer reports included)");

done_testing();
