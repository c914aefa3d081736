#!/usr/bin/perl
# A server span per client request, a client span per upstream exchange,
# traceparent forwarded with the client span's id, default and configured
# span names, edgetrace off does nothing.

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

# --- a proxied request: one server span, one client span
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
is($client->{parent_id}, $server->{span_id}, 'client span: child of server');
is($client->{trace_id}, $server->{trace_id}, 'same trace id');
is($client->{span_id}, $span, 'upstream saw the client span id');
isnt($client->{span_id}, $server->{span_id}, 'distinct span ids');

# --- a request that never leaves nginx: a server span only
$r = http_get($ngx->port, '/static/x');
is($r->{status}, 200, 'return 200');
my @all = stream_entries($redis->port, undef, count => 3);
is(scalar @all, 3, 'one more entry');
is($all[2]{kind}, 'server', 'it is a server span');
is($all[2]{name}, 'GET /static', 'named after its location');
isnt($all[2]{trace_id}, $trace, 'a trace of its own');

# --- edgetrace_span_name
$r = http_get($ngx->port, '/named', method => 'POST', body => 'x');
is($r->{status}, 200, 'POST answered');
@all = stream_entries($redis->port, undef, count => 4);
is($all[3]{name}, 'custom POST', 'edgetrace_span_name evaluated');

# --- edgetrace off: nothing exported, nothing forwarded
$b->clear;
$r = http_get($ngx->port, '/off/x',
              headers => [['traceparent',
                           '00-0af7651916cd43dd8448eb211c80319c-'
                           . 'b7ad6b7169203331-01']]);
is($r->{status}, 200, 'untraced request answered');
@req = $b->wait_requests(1);
is_deeply([Edgetrace::Test::Backend->header_values($req[0], 'traceparent')],
          ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
          'edgetrace off: the client traceparent passes untouched');

# the barrier's span comes after anything the /off request would have made
http_get($ngx->port, '/barrier');
@all = stream_entries($redis->port, undef, count => 5);
is(scalar @all, 5, 'only the barrier span was added');
is($all[4]{name}, 'GET /barrier', 'the last entry is the barrier');
ok(!grep({ $_->{trace_id} eq '0af7651916cd43dd8448eb211c80319c' } @all),
   'edgetrace off exported nothing');

# --- one server span per request, however many requests
http_get($ngx->port, '/static/n') for 1 .. 5;
@all = stream_entries($redis->port, undef, count => 10, settle => 0.2);
is(scalar(grep { $_->{name} eq 'GET /static' } @all), 6,
   'one server span per request');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
