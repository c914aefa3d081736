#!/usr/bin/perl
# A server span per client request, a client span per upstream exchange,
# traceparent forwarded with the client span's id, default and configured
# span names, edgetrace off does nothing.
#
# Each case finds its spans by trace id (the traceparent the backend saw,
# or the X-Trace-Id response header), so that it runs alone as well:
# EDGETRACE_CASE='span_name' prove -v t/nginx/001-basic.t

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Trace-Id $edgetrace_trace_id always;

        location /api {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /static {
            return 200 "static\n";
        }
        location /named {
            edgetrace_span_name "custom $request_method";
            return 200 "named\n";
        }
        location /off {
            edgetrace off;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location = /barrier {
            return 204;
        }
        location /metrics {
            edgetrace off;
            edgetrace_status;
        }
    }
EOF

case 'a proxied request: one server span, one client span' => sub {
    $b->clear;
    my $r = http_get($ngx->port, '/api/users');
    is($r->{status}, 200, 'proxied request answered');

    my @req = $b->wait_requests(1);
    is(scalar @req, 1, 'the backend got one request');
    my @tp = Edgetrace::Test::Backend->header_values($req[0], 'traceparent');
    is(scalar @tp, 1, 'exactly one traceparent upstream');
    my ($ver, $trace, $span, $flags) = parse_traceparent($tp[0]);
    ok($trace, "traceparent is well formed: $tp[0]");
    is($ver, '00', 'version 00');
    ok(hex($flags) & 1, 'sampled flag set');
    is(response_trace($r), $trace, 'X-Trace-Id: the same trace');

    my @s = trace_spans($redis->port, $trace, count => 2);
    is(scalar @s, 2, 'two spans for the trace');
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    my ($client) = grep { $_->{kind} eq 'client' } @s;
    ok($server, 'a server span');
    ok($client, 'a client span');

    is($server->{name}, 'GET /api', 'server span name: method and location');
    ok(!exists $server->{parent_id}, 'server span is a root');
    is($server->{v}, '1', 'format version 1');
    is($server->{'service.name'}, 'nginx', 'default service.name');
    like($server->{span_id}, qr/^[0-9a-f]{16}$/, 'server span id');
    isnt($server->{span_id}, '0' x 16, 'server span id not zero');

    is($client->{name}, 'GET', 'client span name: the method');
    is($client->{parent_id}, $server->{span_id},
       'client span: child of server');
    is($client->{trace_id}, $server->{trace_id}, 'same trace id');
    is($client->{span_id}, $span, 'upstream saw the client span id');
    isnt($client->{span_id}, $server->{span_id}, 'distinct span ids');
};

case 'a request that never leaves nginx: a server span only' => sub {
    my $r = http_get($ngx->port, '/static/x');
    is($r->{status}, 200, 'return 200');
    my $trace = response_trace($r);
    like($trace, qr/^[0-9a-f]{32}$/, 'X-Trace-Id: a trace id');
    my @s = trace_spans($redis->port, $trace, settle => 0.2);
    is(scalar @s, 1, 'one entry');
    is($s[0]{kind}, 'server', 'it is a server span');
    is($s[0]{name}, 'GET /static', 'named after its location');
    ok(!exists $s[0]{parent_id}, 'a root');

    $r = http_get($ngx->port, '/static/y');
    isnt(response_trace($r), $trace, 'the next request: a trace of its own');
};

case 'edgetrace_span_name' => sub {
    my $r = http_get($ngx->port, '/named', method => 'POST', body => 'x');
    is($r->{status}, 200, 'POST answered');
    my @s = trace_spans($redis->port, response_trace($r));
    is($s[0]{name}, 'custom POST', 'edgetrace_span_name evaluated');
};

case 'edgetrace off: nothing exported, nothing forwarded' => sub {
    my $tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    $b->clear;
    my $r = http_get($ngx->port, '/off/x', headers => [['traceparent', $tp]]);
    is($r->{status}, 200, 'untraced request answered');
    ok(!defined response_trace($r), 'no trace id to tell');
    my @req = $b->wait_requests(1);
    is_deeply([Edgetrace::Test::Backend->header_values($req[0],
                                                       'traceparent')],
              [$tp], 'edgetrace off: the client traceparent passes untouched');

    # the barrier's span comes after anything the /off request would have
    # made
    my @all = barrier($redis->port, $ngx->port, '/barrier');
    ok(!grep({ $_->{trace_id} eq '0af7651916cd43dd8448eb211c80319c'
               || $_->{name} eq 'GET /off' } @all),
       'edgetrace off exported nothing');
};

case 'one server span per request, however many requests' => sub {
    my @traces = map { response_trace(http_get($ngx->port, '/static/n')) }
                 1 .. 5;
    my %distinct = map { $_ => 1 } grep { defined } @traces;
    is(scalar keys %distinct, 5, 'five requests, five traces');
    for my $t (@traces) {
        my @s = trace_spans($redis->port, $t, settle => 0.1);
        is_deeply([map { "$_->{kind} $_->{name}" } @s],
                  ['server GET /static'], "trace $t: one server span");
    }
};

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
