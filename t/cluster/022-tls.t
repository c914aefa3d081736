#!/usr/bin/perl
# edgetrace on a Redis Cluster over TLS (docs/cli.md "TLS", "Redis
# Cluster"): nodes that listen with TLS only (--port 0), rediss:// seeds;
# the slot map and every master's connection over TLS, their
# certificates checked; show, tail, top and export across 8 shards on 3
# masters; a master killed under tail: its replica, reached over TLS,
# goes on; a wrong CA refused with the reason, plaintext seeds get
# nothing.  Certificates are made now (t/lib/Edgetrace/Tls.pm).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cluster qw(:all);
use Edgetrace::Cli qw(run_cli start_cli);
use Edgetrace::Sink qw(start_sink);
use Edgetrace::Tls qw(make_pki);

my $N = 8;
my $KEY = 'spans';

my $pki = make_pki();
my $c = start_cluster(tls => $pki);
my @m = map { $_->{port} } $c->masters;
my $seeds = "rediss://127.0.0.1:$m[0],127.0.0.1:$m[1]";
my @g = ('--redis', $seeds, '--cluster', '--cacert', $pki->{ca},
         '--stream', $KEY, '--shards', $N);

sub master_of_shard { $c->master_of_shard($KEY, $_[0], $N) }

my %on = map { master_of_shard($_) => 1 } 0 .. $N - 1;
is(scalar(keys %on), 3, '8 shards on 3 masters');

sub trace_of { shard_trace_id($_[0], $N) }

# a span as the modules write it, on its shard's master (redis-cli --tls);
# "replicate": on its replica too before it returns
sub span {
    my ($t, %o) = @_;
    my $id = new_span_id();
    my $key = shard_key($KEY, trace_shard($t, $N), $N);
    my $port = $c->master_of_slot(key_slot($key));
    node_cli($port, 'XADD', $key, '*', v => 1, trace_id => $t,
             span_id => $id, name => $o{name} // 'hand', kind => 'server',
             start_ns => '1000000', end_ns => '2000000', status => 'unset',
             'service.name' => 'edge');
    node_cli($port, 'WAIT', 1, 2000) if $o{replicate};
    return $id;
}

# --- show and top: each shard on its master, over TLS

my %traces;
for my $i (0 .. $N - 1) {
    my $t = trace_of($i);
    $traces{$t} = span($t, name => "root$i");
}

for my $t (sort keys %traces) {
    my $i = trace_shard($t, $N);
    my $r = run_cli(undef, @g, 'show', $t, '--since', '0');
    is($r->{rc}, 0, "show a trace of shard $i over TLS: exit 0")
        or diag $r->{err};
    like($r->{out}, qr/^trace $t: 1 span, 1 service, 0 errors/,
         "show: shard ${i}'s trace, from master " . master_of_shard($i));
}

my $r = run_cli(undef, @g, 'top', '--since', '0');
is($r->{rc}, 0, 'top over TLS: exit 0') or diag $r->{err};
like($r->{out}, qr/^spans \(8 shards\): 8 spans\n/, 'top: every shard');

# --- tail: every shard polled on its master

my $tail = start_cli(undef, @g, 'tail');
ok(wait_until(sub { $tail->err =~ /following/ }, 10), 'tail: started')
    or diag $tail->err;
like($tail->err, qr/following spans \(8 shards\) at \Q$seeds\E \(cluster\)/,
     'tail: names the rediss:// seeds');
my @tailed = map { span(trace_of($_), name => "tail$_", replicate => 1) }
             0 .. $N - 1;
ok(wait_until(sub { my $o = $tail->out; !grep { $o !~ /$_/ } @tailed }, 10),
   'tail: the spans of every shard')
    or diag $tail->out, $tail->err;

# --- a master killed under tail: its replica takes over, over TLS

my $victim = master_of_shard(0);
my $new = $c->kill_master($victim);
ok($new, "master $victim killed, replica $new took over");
my @after = map { span(trace_of($_), name => "after$_") } 0 .. $N - 1;
ok(wait_until(sub { my $o = $tail->out; !grep { $o !~ /$_/ } @after }, 30),
   'tail: went on, the spans of every shard, the new master\'s too')
    or diag $tail->err;
like($tail->err, qr/lost Redis at \Q$seeds\E \(cluster\): .*; reconnecting/,
     'tail: the master lost, said');
is($tail->kill('TERM'), 128 + 15, 'tail stopped');

# --- export --once: every span, each shard acknowledged on its master

my $sink = start_sink();
$r = run_cli(undef, @g, 'export', '--otlp', $sink->url('/v1/traces'),
             '--once');
is($r->{rc}, 0, 'export --once over TLS: exit 0') or diag $r->{err};
my $all = keys(%traces) + @tailed + @after;
like($r->{err}, qr/: $all spans exported/, 'export: every span');
is(scalar($sink->spans), $all, 'the collector has them');

# --- refused: a wrong CA, and plaintext to TLS-only nodes

$r = run_cli(undef, '--redis', $seeds, '--cluster', '--cacert',
             $pki->{other_ca}, '--stream', $KEY, '--shards', $N, 'top');
is($r->{rc}, 1, 'a wrong CA: exit 1');
like($r->{err}, qr/^edgetrace: no node of the cluster gave its slot map: cannot connect to Redis at 127\.0\.0\.1:\d+: TLS: certificate verify failed: \S/,
     'a wrong CA: the reason');

(my $plain = $seeds) =~ s/^rediss:/redis:/;
$r = run_cli(undef, '--redis', $plain, '--cluster', '--stream', $KEY,
             '--shards', $N, 'top');
is($r->{rc}, 1, 'redis:// seeds on TLS-only nodes: exit 1');
like($r->{err}, qr/^edgetrace: no node of the cluster gave its slot map/,
     'redis:// seeds on TLS-only nodes: no map');

done_testing();
