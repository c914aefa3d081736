#!/usr/bin/perl
# The server span's entry, field by field: exactly the fields docs/stream.md's
# "The stream entry" names, with the values it fixes.  Each case finds its
# span by the trace id the response tells (X-Trace-Id), so that it runs
# alone as well (EDGETRACE_CASE=regex).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;
    add_header X-Trace-Id $edgetrace_trace_id always;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /api {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /slowapi/ {
            proxy_pass http://127.0.0.1:%%BACKEND%%/slow/;
        }
        location /ok {
            return 200 "ok\n";
        }
        location /e500 {
            return 500;
        }
        location /e503 {
            return 503;
        }
        location /e404 {
            return 404;
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        edgetrace_service_name edge-gw;

        location / {
            return 200 "gw\n";
        }
    }
EOF

my $port = $ngx->port;

# the server span of the trace a response tells
sub server_span {
    my ($r, %o) = @_;
    my @s = trace_spans($redis->port, response_trace($r), %o);
    my ($s) = grep { $_->{kind} eq 'server' } @s;
    return $s // {};
}

my @server_base = qw(v trace_id span_id name kind start_ns end_ns status
                     service.name http.request.method url.path url.scheme
                     server.address server.port client.address
                     network.protocol.version http.response.status_code
                     edgetrace.sampling);

case 'everything present' => sub {
    my $t0 = Time::HiRes::time();
    my $r = http_get($port, '/ok/a%20b?x=1&y=2',
                     host => 'example.test:8080',
                     headers => [['User-Agent', 'curl/8.0 (test)']]);
    is($r->{status}, 200, 'answered');
    my $s = server_span($r);
    is_deeply([sort grep { !/^_/ } keys %$s],
              [sort @server_base, 'url.query', 'user_agent.original'],
              'exactly the server span fields');
    is($s->{v}, '1', 'v');
    like($s->{trace_id}, qr/^[0-9a-f]{32}$/, 'trace_id: 32 lowercase hex');
    like($s->{span_id}, qr/^[0-9a-f]{16}$/, 'span_id: 16 lowercase hex');
    is($s->{kind}, 'server', 'kind');
    is($s->{name}, 'GET /ok', 'name');
    is($s->{status}, 'unset', 'status');
    is($s->{'service.name'}, 'nginx', 'service.name');
    is($s->{'http.request.method'}, 'GET', 'http.request.method');
    is($s->{'url.path'}, '/ok/a%20b', 'url.path as sent');
    is($s->{'url.query'}, 'x=1&y=2', 'url.query');
    is($s->{'url.scheme'}, 'http', 'url.scheme');
    is($s->{'server.address'}, 'example.test',
       'server.address: Host\'s host');
    is($s->{'server.port'}, $port, 'server.port: the listening port');
    is($s->{'client.address'}, '127.0.0.1', 'client.address');
    is($s->{'user_agent.original'}, 'curl/8.0 (test)', 'user_agent.original');
    is($s->{'network.protocol.version'}, '1.1', 'network.protocol.version');
    is($s->{'http.response.status_code'}, '200',
       'http.response.status_code');
    is($s->{'edgetrace.sampling'}, 'head',
       'edgetrace.sampling: head (docs/stream.md)');
    like($s->{start_ns}, qr/^[1-9]\d{18}$/, 'start_ns: decimal nanoseconds');
    like($s->{end_ns}, qr/^[1-9]\d{18}$/, 'end_ns: decimal nanoseconds');
    ok($s->{start_ns} <= $s->{end_ns}, 'start_ns <= end_ns');
    ok(abs($s->{start_ns} / 1e9 - $t0) < 5, 'start_ns is now');
    is($s->{_fields}[0], 'v', 'v comes first');
};

case 'HTTP/1.0, no User-Agent, no query' => sub {
    my $r = http_get($port, '/ok/plain', version => '1.0',
                     host => 'h.example');
    is($r->{status}, 200, 'HTTP/1.0 answered');
    my $s = server_span($r);
    is_deeply([sort grep { !/^_/ } keys %$s], [sort @server_base],
              'no url.query, no user_agent.original');
    is($s->{'network.protocol.version'}, '1.0',
       'network.protocol.version 1.0');
    is($s->{'server.address'}, 'h.example', 'server.address without a port');
};

case 'an empty query is no query' => sub {
    my $s = server_span(http_get($port, '/ok/q?'));
    ok(!exists $s->{'url.query'}, 'empty query: no url.query');
    is($s->{'url.path'}, '/ok/q', 'url.path without the ?');
};

case 'HEAD, POST' => sub {
    my $s = server_span(http_get($port, '/ok/h', method => 'HEAD'));
    is($s->{'http.request.method'}, 'HEAD', 'HEAD');
    is($s->{name}, 'HEAD /ok', 'HEAD span name');
    $s = server_span(http_get($port, '/ok/p', method => 'POST',
                              body => 'abc'));
    is($s->{'http.request.method'}, 'POST', 'POST');
};

case 'status: error from 500 on, with error.type' => sub {
    for my $case ([e500 => 500, 'error'], [e503 => 503, 'error'],
                  [e404 => 404, 'unset'])
    {
        my ($loc, $code, $status) = @$case;
        my $r = http_get($port, "/$loc");
        is($r->{status}, $code, "$code answered");
        my $s = server_span($r);
        is($s->{status}, $status, "$code: status $status");
        is($s->{'http.response.status_code'}, $code, "$code: status code");
        if ($status eq 'error') {
            is($s->{'error.type'}, "$code", "$code: error.type");
        } else {
            ok(!exists $s->{'error.type'}, "$code: no error.type");
        }
    }
};

case 'edgetrace_service_name at the server level' => sub {
    my $r = http_get($ngx->ports->{PORT2}, '/x');
    is($r->{status}, 200, 'second server answered');
    my $s = server_span($r);
    is($s->{'service.name'}, 'edge-gw', 'service.name from the server block');
    is($s->{'server.port'}, $ngx->ports->{PORT2},
       'server.port of that server');
};

case 'times: the span covers the request, with better than ms resolution'
    => sub {
    my $r = http_get($port, '/slowapi/300');
    is($r->{status}, 200, 'slow request answered');
    my $s = server_span($r, count => 2);
    ok($s->{end_ns} - $s->{start_ns} >= 300e6,
       'a 300 ms upstream: the server span lasts at least 300 ms');
    ok($s->{end_ns} - $s->{start_ns} < 5e9, '... and not seconds');

    my @starts;
    for (1 .. 5) {
        my $e = server_span(http_get($port, '/ok/t'));
        push @starts, $e->{start_ns}, $e->{end_ns};
    }
    ok(grep({ $_ % 1_000_000 } @starts),
       'times have sub-millisecond resolution');
};

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
