#!/usr/bin/perl
# The demo chain: an nginx edge proxies to an httpd app tier
# that proxies to a backend.  One trace of four linked spans: edge server,
# edge client, app server, app client; the backend's parent id is the httpd
# client span.  Under each MPM, with W3C and with B3 between the tiers.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);

my $redis = start_redis();
my $b = start_backend();

for my $mpm (mpms()) {
    for my $format (qw(w3c b3multi)) {
        $redis->client->del('edgetrace:spans');
        $b->clear;

        my $app = start_httpd(mpm => $mpm, redis => $redis,
                              conf => <<"EOF");
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTraceServiceName app
EdgeTracePropagation $format
EdgeTrace On
ProxyPass /orders http://127.0.0.1:%%BACKEND%%/orders
EOF

        my $edge = start_nginx(redis => $redis,
                               ports => { APP => $app->port },
                               conf => <<"EOF");
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 20ms;
    edgetrace_service_name edge;
    edgetrace_propagation $format;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /orders {
            proxy_pass http://127.0.0.1:%%APP%%;
        }
    }
EOF

        my $r = http_get($edge->port, '/orders/42');
        is($r->{status}, 200, "$mpm $format: answered through the chain");

        my @e = stream_entries($redis->port, undef, count => 4,
                               timeout => 3);
        is(scalar @e, 4, "$mpm $format: four spans");
        my %by = map { ($_->{'service.name'} . ' ' . $_->{kind}) => $_ } @e;
        my ($es, $ec, $as, $ac) = @by{'edge server', 'edge client',
                                      'app server', 'app client'};
        ok($es && $ec && $as && $ac, "$mpm $format: edge and app, server "
                                     . "and client");
        next unless $es && $ec && $as && $ac;

        my %traces = map { $_->{trace_id} => 1 } @e;
        is(scalar keys %traces, 1, "$mpm $format: one trace");
        ok(!exists $es->{parent_id}, "$mpm $format: the edge is the root");
        is($ec->{parent_id}, $es->{span_id}, "$mpm $format: edge client");
        is($as->{parent_id}, $ec->{span_id},
           "$mpm $format: the app continues the edge client");
        is($ac->{parent_id}, $as->{span_id}, "$mpm $format: app client");

        my ($up) = $b->wait_requests(1);
        my $parent;
        if ($format eq 'w3c') {
            my ($tp) = Edgetrace::Test::Backend->header_values($up,
                                                            'traceparent');
            (undef, undef, $parent) = parse_traceparent($tp // '');
        } else {
            ($parent) = Edgetrace::Test::Backend->header_values($up,
                                                            'x-b3-spanid');
        }
        is($parent, $ac->{span_id},
           "$mpm $format: the backend's parent is the httpd client span");

        # httpd ends its span in log_transaction, after the response is
        # sent: it may end after the edge's; it cannot start before the
        # edge sent the request
        ok($ec->{start_ns} <= $as->{start_ns}
           && $as->{start_ns} <= $ec->{end_ns},
           "$mpm $format: the app span starts within the edge client span");

        $edge->stop;
        $app->stop;
        is_deeply([$app->crashes, $edge->crashes], [], "$mpm $format: "
                  . "no crash");
    }
}

done_testing();
