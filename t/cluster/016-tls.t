#!/usr/bin/perl
# nginx and httpd on a Redis Cluster over TLS (docs/nginx.md
# "edgetrace_redis", docs/httpd.md "EdgeTraceRedis": rediss:// seeds with
# cluster): nodes that listen with TLS only, the slot map and every
# master's connection over TLS, each node's certificate checked against
# its address.  With shards=8 every span is on the master of its shard's
# slot (counted per shard with redis-cli --tls), the counters add up; a
# master killed under traffic: its replica, reached over TLS, takes the
# spans without a restart; a wrong CA refused with the reason in the log
# and counted for each node asked.  Certificates are made now
# (t/lib/Edgetrace/Tls.pm).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);
use Edgetrace::Cluster qw(:all);
use Edgetrace::Tls qw(make_pki);

my $N = 8;
my $KEY = 'spans';

my $pki = make_pki();
my $c = start_cluster(tls => $pki);
my @m = map { $_->{port} } $c->masters;

# nginx on the TLS cluster, its certificates checked against "ca"
sub edge {
    my ($ca, $workers) = @_;
    return start_nginx(workers => $workers, ports => { SEED1 => $m[0],
                                                       SEED2 => $m[1] },
                       conf => <<"EOF");
    edgetrace_redis rediss://127.0.0.1:%%SEED1%%,127.0.0.1:%%SEED2%% cluster;
    edgetrace_redis_ssl_trusted_certificate $ca;
    edgetrace_stream $KEY shards=$N;
    edgetrace_flush_interval 50ms;
    edgetrace_redis_timeout 2s;
    edgetrace_service_name edge;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;
        location / { return 200 "ok\\n"; }
        location = /metrics { edgetrace off; edgetrace_status; }
    }
EOF
}

my $ngx = edge($pki->{ca}, 2);

my $app = start_httpd(ports => { SEED => $m[2] }, conf => <<"EOF");
EdgeTraceRedis rediss://127.0.0.1:%%SEED%% cluster
EdgeTraceRedisSSLCACertificateFile $pki->{ca}
EdgeTraceStream $KEY shards=$N
EdgeTraceFlushInterval 20ms
EdgeTraceServiceName app
EdgeTrace On
<Location /metrics>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>
EOF

my %server = (nginx => $ngx, httpd => $app);
sub m_ { metrics($server{ $_[0] }->port) }

for my $s (sort keys %server) {
    ok(wait_until(sub { my $x = m_($s); $x->{edgetrace_redis_nodes}
                        && $x->{edgetrace_redis_connected}
                           == $x->{edgetrace_redis_nodes} }, 15),
       "$s: connected over TLS to every master")
        or diag explain m_($s), $server{$s}->error_log;
}
is(m_('nginx')->{edgetrace_redis_nodes}, 6, 'nginx: 2 workers x 3 masters');

# each shard's entries, on the master of its slot, through redis-cli --tls:
# { span_id => [shard, port, trace_id] }
sub holdings {
    my %held;
    my $n = 0;
    for my $i (0 .. $N - 1) {
        my $key = shard_key($KEY, $i, $N);
        my $port = $c->master_of_slot($c->slot_of($key));
        my @l = split /\n/, node_cli($port, 'XRANGE', $key, '-', '+');
        my %e;
        for my $j (0 .. $#l - 1) {
            if ($l[$j] eq 'span_id') {
                $e{span} = $l[$j + 1];
            } elsif ($l[$j] eq 'trace_id') {
                $e{trace} = $l[$j + 1];
            }
            if (defined $e{span} && defined $e{trace}) {
                $held{ $e{span} } = [$i, $port, $e{trace}];
                $n++;
                %e = ();
            }
        }
    }
    return (\%held, $n);
}

sub requests {
    my ($s, $count, $path) = @_;
    my %sent;
    for (1 .. $count) {
        my $t = new_trace_id();
        my $r = http_get($server{$s}->port, $path // '/x',
                         headers => [[traceparent => new_traceparent($t)]]);
        $sent{$t} = 1 if $r->{status};
    }
    return \%sent;
}

sub settled {
    my ($s, $want) = @_;
    wait_until(sub { my $x = m_($s); $x->{edgetrace_spans_queued} == 0
                     && $x->{edgetrace_spans_total} >= $want }, 15);
    return m_($s);
}

# --- every span on its shard's master, over TLS

my %sent;
for my $s (sort keys %server) {
    my $sent = requests($s, 100);
    is(scalar keys %$sent, 100, "$s: 100 traced requests answered");
    %sent = (%sent, %$sent);
    my $x = settled($s, 100);
    is($x->{edgetrace_spans_total}, 100, "$s: 100 spans");
    is($x->{edgetrace_spans_exported_total}, 100, "$s: all exported");
    is($x->{edgetrace_spans_total}, spans_accounted($x),
       "$s: the counters add up");
}

my ($held, $n) = holdings();
is($n, 200, 'the masters hold 200 entries, counted shard by shard');
is(scalar(grep { $_->[0] != trace_shard($_->[2], $N) } values %$held), 0,
   'each span in the shard of its trace');
is(scalar(grep { !$sent{ $_->[2] } } values %$held), 0,
   'and each is a trace sent');
my %on = map { $_->[1] => 1 } values %$held;
is(scalar keys %on, 3, 'the shards spread over the three masters');

# --- a master killed under traffic: its replica, over TLS

my $victim = $m[2];
my $new = $c->kill_under_traffic($ngx->port, $victim);
my %after = (%{ requests('nginx', 50, '/z') }, %{ requests('httpd', 50) });

for my $s (sort keys %server) {
    ok(wait_until(sub { my $x = m_($s); $x->{edgetrace_spans_queued} == 0
                        && $x->{edgetrace_redis_connected}
                           == $x->{edgetrace_redis_nodes} }, 30),
       "$s: export resumes on the promoted replica, without a restart")
        or diag explain m_($s), $server{$s}->error_log;
    my $x = m_($s);
    is($x->{edgetrace_spans_total}, spans_accounted($x),
       "$s: the counters add up exactly")
        or diag explain $x;
    is($x->{'edgetrace_spans_dropped_total{reason="redis_error"}'}, 0,
       "$s: nothing dropped: what the dead master did not answer was "
       . 'sent again');
    ok($x->{"edgetrace_redis_node_connected{node=\"127.0.0.1:$new\"}"},
       "$s: connected to the promoted replica ($new)");
}

($held, $n) = holdings();
my %traces = map { $_->[2] => 1 } values %$held;
is(scalar(grep { !$traces{$_} } keys %after), 0,
   'every request after the failover is on the cluster');
like($ngx->error_log, qr/redis cluster node 127\.0\.0\.1:$victim: /,
     'the trouble is logged with the node\'s address');

# --- a wrong CA: refused, with the reason, counted for each node asked

my $bad = edge($pki->{other_ca}, 1);

my $before = (holdings())[1];
my $r = http_get($bad->port, '/w');
is($r->{status}, 200, 'a wrong CA: the request is served');
ok(wait_until(sub { $bad->error_log =~ /certificate verify failed/ }, 10),
   'a wrong CA: logged');
like($bad->error_log,
     qr/redis cluster, slot map: no node gave the slot map: 127\.0\.0\.1:\d+: TLS: certificate verify failed: (?:self[- ]signed|unable to get local issuer)/,
     'a wrong CA: the node and the reason');
ok(wait_until(sub {
       my $x = metrics($bad->port);
       !grep { !$x->{"edgetrace_redis_node_errors_total{node=\"127.0.0.1:$_\"}"} }
             @m[0, 1] }, 10),
   'a wrong CA: counted for each seed on the status page')
    or diag explain metrics($bad->port);
my $x = metrics($bad->port);
is($x->{edgetrace_redis_connected}, 0, 'a wrong CA: nothing connected');
is($x->{edgetrace_spans_exported_total}, 0, 'a wrong CA: nothing exported');
cmp_ok($x->{edgetrace_redis_errors_total}, '>=', 2,
       'a wrong CA: within redis_errors_total');
is((holdings())[1], $before, 'a wrong CA: nothing written');
$bad->stop;

is_deeply([$ngx->crashes, $app->crashes, $bad->crashes], [],
          'no worker or child crashed (sanitizer reports included)');

done_testing();
