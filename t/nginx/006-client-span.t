#!/usr/bin/perl
# The client span of an upstream exchange, field by field: name, parent,
# url.full, peer, status, the try as an event; errors from the upstream.
# Each case reads the spans of its own request's trace, so that it runs
# alone as well (EDGETRACE_CASE=regex).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();
my $bp = $b->port;
my $ngx = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;
    add_header X-Trace-Id $edgetrace_trace_id always;

    upstream pool {
        server 127.0.0.1:%%BACKEND%%;
        keepalive 4;
    }

    server {
        listen 127.0.0.1:%%PORT%%;

        location /api {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /inner/ {
            proxy_pass http://127.0.0.1:%%BACKEND%%/status/;
        }
        location /pool/ {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://pool/;
        }
        location /dead {
            proxy_pass http://127.0.0.1:%%DEAD%%;
        }
        location /slow/ {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /timeout/ {
            proxy_read_timeout 200ms;
            proxy_pass http://127.0.0.1:%%BACKEND%%/slow/;
        }
    }
EOF

# sends a request; returns (response, server span, client span, upstream
# traceparents of the request)
sub exchange {
    my ($path, %o) = @_;
    $b->clear;
    my $r = http_get($ngx->port, $path, %o);
    my @req = $b->requests;
    my @tp = map { Edgetrace::Test::Backend->header_values($_, 'traceparent') }
             @req;
    # the trace the upstream saw; when nothing reached it, the response's
    my ($trace) = @tp ? (parse_traceparent($tp[0]))[1] : response_trace($r);
    my @s = trace_spans($redis->port, $trace, count => 2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    my ($client) = grep { $_->{kind} eq 'client' } @s;
    return ($r, $server, $client, \@tp);
}

my @client_base = qw(v trace_id span_id parent_id name kind start_ns end_ns
                     status service.name http.request.method url.full
                     server.address server.port http.response.status_code
                     edgetrace.sampling event.0);

case 'a plain exchange' => sub {
    my ($r, $server, $client, $tp) = exchange('/api/x?q=1');
    is($r->{status}, 200, 'answered');
    is(scalar @$tp, 1, 'one traceparent upstream');
    is_deeply([sort grep { !/^_/ } keys %$client], [sort @client_base],
              'exactly the client span fields');
    is($client->{kind}, 'client', 'kind client');
    is($client->{name}, 'GET', 'name: the method');
    is($client->{parent_id}, $server->{span_id}, 'parent: the server span');
    is($client->{status}, 'unset', 'status unset');
    is($client->{'service.name'}, 'nginx', 'service.name');
    is($client->{'http.request.method'}, 'GET', 'http.request.method');
    is($client->{'url.full'}, "http://127.0.0.1:$bp/api/x?q=1", 'url.full');
    is($client->{'server.address'}, '127.0.0.1', 'server.address: the peer');
    is($client->{'server.port'}, $bp, 'server.port: the peer\'s port');
    is($client->{'http.response.status_code'}, '200', 'status code');
    like($client->{'event.0'},
         qr/^upstream\.try peer=127\.0\.0\.1:$bp status=200 connect_ms=\d+ (?#
            )header_ms=\d+ response_ms=\d+$/,
         'event.0: the try');
    ok(!exists $client->{'http.request.resend_count'}, 'no resend_count');
    ok($client->{start_ns} >= $server->{start_ns},
       'starts within the server span');
    ok($client->{end_ns} <= $server->{end_ns}, 'ends within the server span');
    ok($client->{start_ns} <= $client->{end_ns}, 'start_ns <= end_ns');
    my (undef, undef, $up_span) = parse_traceparent($tp->[0]);
    is($up_span, $client->{span_id}, 'upstream saw the client span id');
};

case 'a backend that sleeps 300 ms before its header' => sub {
    # the client span lasts that long at least, within the server span,
    # and the try tells when the header came
    my ($r, $server, $client) = exchange('/slow/300');
    is($r->{status}, 200, 'slow: answered');
    my $ms = span_ms($client);
    ok($ms >= 299, sprintf('slow: the client span lasts the backend\'s 300 ms '
                           . '(%.1f ms)', $ms));
    ok(span_ms($server) >= $ms, sprintf('slow: the server span (%.1f ms) no '
                                        . 'shorter', span_ms($server)));
    my $try = try_event($client, 0);
    ok($try, 'slow: the try: ' . ($client->{'event.0'} // 'none'));
    $try ||= {};
    is($try->{peer}, "127.0.0.1:$bp", 'slow: the try\'s peer');
    is($try->{status}, '200', 'slow: the try\'s status');
    ok(defined $try->{connect_ms} && $try->{connect_ms} < 295,
       'slow: connected before the backend slept');
    ok(defined $try->{header_ms} && $try->{header_ms} >= 299,
       'slow: the header came after the sleep');
    ok(defined $try->{response_ms} && $try->{response_ms} >= $try->{header_ms}
       && $try->{header_ms} >= $try->{connect_ms},
       'slow: connect <= header <= response');
    # nginx times the try with its cached clock, from the turn of its event
    # loop: up to a few milliseconds earlier than the span's start
    ok(defined $try->{response_ms} && $try->{response_ms} <= $ms + 20,
       sprintf('slow: the try within the client span (%.1f ms)', $ms));
};

case 'the URI sent upstream, and the method' => sub {
    my ($r, $server, $client) = exchange('/inner/200', method => 'POST',
                                      body => 'hello');
    is($r->{status}, 200, 'POST answered');
    is($client->{name}, 'POST', 'client span name: POST');
    is($client->{'url.full'}, "http://127.0.0.1:$bp/status/200",
       'url.full: the URI sent upstream');
};

case 'upstream errors' => sub {
    my ($r, $server, $client) = exchange('/inner/404');
    is($r->{status}, 404, '404 from upstream');
    is($client->{status}, 'error', 'client span: 404 is an error');
    is($client->{'error.type'}, '404', 'client span: error.type 404');
    is($client->{'http.response.status_code'}, '404', 'client span: code 404');
    is($server->{status}, 'unset', 'server span: 404 is not an error');
    ok(!exists $server->{'error.type'}, 'server span: no error.type');

    ($r, $server, $client) = exchange('/inner/503');
    is($r->{status}, 503, '503 from upstream');
    is($client->{status}, 'error', 'client span: 503 is an error');
    is($client->{'error.type'}, '503', 'client span: error.type 503');
    is($server->{status}, 'error', 'server span: 503 is an error');
    is($server->{'error.type'}, '503', 'server span: error.type 503');
};

case 'no upstream at all' => sub {
    my ($r, $server, $client) = exchange('/dead/x');
    is($r->{status}, 502, 'dead upstream: 502');
    ok($client, 'dead upstream: a client span all the same');
    is($client->{status}, 'error', 'dead upstream: client span error');
    # the 502 is nginx's own answer: the upstream sent no status
    is($client->{'error.type'}, 'no_response', 'dead upstream: no_response');
    ok(!exists $client->{'http.response.status_code'},
       'dead upstream: no status code');
    like($client->{'event.0'},
         qr/^upstream\.try peer=127\.0\.0\.1:\d+ status=- connect_ms=- (?#
            )header_ms=- response_ms=\d+$/,
         'dead upstream: the try, not connected');
    is($server->{status}, 'error', 'dead upstream: server span error');
    is($server->{'error.type'}, '502', 'dead upstream: server error.type 502');
};

case 'an upstream timeout' => sub {
    my ($r, $server, $client) = exchange('/timeout/1000');
    is($r->{status}, 504, 'timeout: 504');
    is($client->{status}, 'error', 'timeout: client span error');
    like($client->{'event.0'}, qr/ status=- connect_ms=\d+ header_ms=- /,
         'timeout: the try has no status, no header time');
};

case 'a keepalive upstream connection: one client span per request' => sub {
    my %ids;
    my %pids;
    for (1 .. 3) {
        my ($r, $server, $client, $tp) = exchange('/pool/k');
        is($r->{status}, 200, 'keepalive: answered');
        my (undef, undef, $id) = parse_traceparent($tp->[0]);
        is($id, $client->{span_id},
           'keepalive: upstream saw this client span');
        $ids{$id}++;
        $pids{ ($b->requests)[0]{pid} }++;
    }
    is(scalar keys %ids, 3, 'keepalive: three distinct client span ids');
    is(scalar keys %pids, 1, 'keepalive: one upstream connection reused');
};

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
