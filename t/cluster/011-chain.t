#!/usr/bin/perl
# nginx -> httpd -> backend on a Redis Cluster, both with shards=8 in
# cluster mode (docs/stream.md "Sharded streams"): all four spans of every
# trace in one shard, on the master of that shard's slot, whichever server
# wrote them; httpd's counters add up against what the masters hold.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);
use Edgetrace::Cluster qw(:all);

my $N = 8;
my $KEY = 'chain';

my $c = start_cluster();
my @m = map { $_->{port} } $c->masters;
my $b = start_backend();

my $app = start_httpd(ports => { SEED => $m[1] }, conf => <<"EOF");
EdgeTraceRedis redis://127.0.0.1:%%SEED%% cluster
EdgeTraceStream $KEY shards=$N
EdgeTraceFlushInterval 20ms
EdgeTraceServiceName app
EdgeTrace On
ProxyPass /orders http://127.0.0.1:%%BACKEND%%/orders
<Location /metrics>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>
EOF

my $edge = start_nginx(ports => { APP => $app->port, SEED1 => $m[0],
                                  SEED2 => $m[2] }, conf => <<"EOF");
    edgetrace_redis redis://127.0.0.1:%%SEED1%%,127.0.0.1:%%SEED2%% cluster;
    edgetrace_stream $KEY shards=$N;
    edgetrace_flush_interval 20ms;
    edgetrace_service_name edge;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /orders { proxy_pass http://127.0.0.1:%%APP%%; }
        location = /metrics { edgetrace off; edgetrace_status; }
    }
EOF

my $T = 40;
my %sent;
for (1 .. $T) {
    my $t = new_trace_id();
    my $r = http_get($edge->port, '/orders/' . $_,
                     headers => [[traceparent => new_traceparent($t)]]);
    $sent{$t} = 1 if $r->{status} == 200;
}
is(scalar keys %sent, $T, "$T requests through the chain");

my %spans;    # trace_id => [[shard, service, kind], ...]
my $held = 0;
wait_until(sub {
    %spans = ();
    my @e = $c->shard_entries($KEY, $N);
    push @{ $spans{ $_->{trace_id} } },
        [$_->{shard}, $_->{'service.name'}, $_->{kind}] for @e;
    $held = @e;
    return $held >= 4 * $T;
}, 10);

is($held, 4 * $T, 'four spans a trace on the masters');
my ($whole, $one, $right) = (0, 0, 0);
for my $t (keys %sent) {
    my $s = $spans{$t} or next;
    my %who = map { ("$_->[1] $_->[2]" => 1) } @$s;
    $whole++ if keys %who == 4;
    my %shards = map { $_->[0] => 1 } @$s;
    $one++ if keys %shards == 1;
    $right++ if (keys %shards)[0] == trace_shard($t, $N);
}
is($whole, $T, 'each trace: edge server and client, app server and client');
is($one, $T, 'each trace in one shard, whichever server wrote its spans');
is($right, $T, 'the shard of its trace id');

for my $srv (['nginx', sub { metrics($edge->port) }],
             ['httpd', sub { metrics($app->port) }])
{
    my ($name, $get) = @$srv;
    wait_until(sub { $get->()->{edgetrace_spans_queued} == 0 }, 5);
    my $x = $get->();
    is($x->{edgetrace_spans_total}, 2 * $T, "$name: two spans a request");
    is($x->{edgetrace_spans_exported_total}, 2 * $T, "$name: all exported");
    cmp_ok($x->{edgetrace_redis_connected}, '>=', 3,
           "$name: connected to the masters");
    is($x->{edgetrace_redis_connected}, $x->{edgetrace_redis_nodes},
       "$name: to all of them");

    # each master by its address (docs/counters.md "Redis Cluster")
    my @per = map {
        $x->{"edgetrace_redis_node_connected{node=\"127.0.0.1:$_\"}"} // 0
    } @m;
    ok(!grep({ $_ < 1 } @per), "$name: each master on the page, connected")
        or diag "@per";
    my $sum = 0;
    $sum += $_ for @per;
    is($sum, $x->{edgetrace_redis_connected},
       "$name: the masters' connections add up to redis_connected");
}

is_deeply([$edge->crashes, $app->crashes], [],
          "no worker or child crashed (sanitizer reports included)");

done_testing();
