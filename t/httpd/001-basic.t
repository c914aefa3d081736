#!/usr/bin/perl
# mod_edgetrace under each MPM: a server span per client request with the
# fields docs/stream.md lists, a client span around the mod_proxy exchange
# whose id is the one the backend receives (replaced, never duplicated),
# default and configured span names, EdgeTrace Off does nothing, the
# environment variables (also when one is preset, and after an internal
# redirect), and the counters and their page's headers.

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
    $redis->client->del('edgetrace:spans');
    $b->clear;

    my $h = start_httpd(mpm => $mpm, redis => $redis,
                        files => { 'static.txt' => "static\n",
                                   'preset.txt' => "preset\n",
                                   'dir/index.html' => "index\n" },
                        conf => <<'EOF');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 50ms
EdgeTrace On

<Location /api>
    ProxyPass http://127.0.0.1:%%BACKEND%%/api
</Location>
<Location /named>
    EdgeTraceSpanName "expr=custom %{REQUEST_METHOD}"
    ProxyPass http://127.0.0.1:%%BACKEND%%/named
</Location>
<Location /unnamed>
    EdgeTraceSpanName "expr=%{HTTP:X-Name}"
    ProxyPass http://127.0.0.1:%%BACKEND%%/unnamed
</Location>
<Location /off>
    EdgeTrace Off
    ProxyPass http://127.0.0.1:%%BACKEND%%/off
</Location>
<Location /metrics>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>
Header always set X-Trace-Id "%{EDGETRACE_TRACE_ID}e" env=EDGETRACE_TRACE_ID
# set before the module's header parser runs: the module's value wins
SetEnvIf Request_URI ^/preset EDGETRACE_TRACE_ID=preset
<Location /dir>
    DirectoryIndex index.html
</Location>
EOF

    # --- a proxied request: one server span, one client span
    my $r = http_get($h->port, '/api/users?id=7',
                     headers => [['User-Agent', 'edgetrace-test/1'],
                                 ['traceparent', '00-' . ('ab' x 16) . '-'
                                  . ('cd' x 8) . '-01'],
                                 ['TraceParent', 'garbage']]);
    is($r->{status}, 200, "$mpm: proxied request answered");

    my @req = $b->wait_requests(1);
    is(scalar @req, 1, "$mpm: the backend got one request");
    my @tp = Edgetrace::Test::Backend->header_values($req[0], 'traceparent');
    is(scalar @tp, 1, "$mpm: exactly one traceparent upstream");
    my ($ver, $trace, $span, $flags) = parse_traceparent($tp[0] // '');
    ok($trace, "$mpm: traceparent well formed: " . ($tp[0] // 'none'));
    ok(hex($flags // 0) & 1, "$mpm: sampled");
    is($r->{headers}{'x-trace-id'}, $trace,
       "$mpm: EDGETRACE_TRACE_ID reaches mod_headers");

    my @s = trace_spans($redis->port, $trace, count => 2);
    is(scalar @s, 2, "$mpm: two spans");
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    my ($client) = grep { $_->{kind} eq 'client' } @s;

    # two traceparent lines: the trace restarts
    ok(!exists $server->{parent_id}, "$mpm: two traceparents: a new root");
    is($server->{name}, 'GET /api', "$mpm: span name: method and location");
    is($server->{'service.name'}, 'httpd', "$mpm: default service.name");
    is($server->{v}, '1', "$mpm: version");
    is($server->{'http.request.method'}, 'GET', "$mpm: method");
    is($server->{'url.path'}, '/api/users', "$mpm: url.path");
    is($server->{'url.query'}, 'id=7', "$mpm: url.query");
    is($server->{'url.scheme'}, 'http', "$mpm: url.scheme");
    is($server->{'server.address'}, '127.0.0.1', "$mpm: server.address");
    is($server->{'server.port'}, $h->port, "$mpm: server.port");
    is($server->{'client.address'}, '127.0.0.1', "$mpm: client.address");
    is($server->{'user_agent.original'}, 'edgetrace-test/1',
       "$mpm: user agent");
    is($server->{'network.protocol.version'}, '1.1', "$mpm: protocol");
    is($server->{'http.response.status_code'}, '200', "$mpm: status code");
    is($server->{status}, 'unset', "$mpm: status unset");
    ok($server->{end_ns} >= $server->{start_ns}, "$mpm: end >= start");
    ok($server->{start_ns} <= $client->{start_ns},
       "$mpm: the server span starts first");

    is($client->{name}, 'GET', "$mpm: client span name");
    is($client->{parent_id}, $server->{span_id}, "$mpm: client is a child");
    is($client->{span_id}, $span, "$mpm: the backend saw the client span");
    is($client->{'url.full'},
       "http://127.0.0.1:" . $b->port . "/api/users?id=7",
       "$mpm: url.full");
    is($client->{'server.address'}, '127.0.0.1', "$mpm: peer address");
    is($client->{'server.port'}, $b->port, "$mpm: peer port");
    is($client->{'http.response.status_code'}, '200',
       "$mpm: upstream status");
    ok(!exists $client->{'http.request.resend_count'}, "$mpm: no resend");
    like($client->{'event.0'},
         qr/^upstream\.try peer=127\.0\.0\.1:\d+ status=200 /,
         "$mpm: the try as an event");

    like($h->access_log, qr/trace=$trace span=$server->{span_id} tp=00-$trace-$span-$flags/,
         "$mpm: mod_log_config sees the environment");

    # --- a configured span name, an expression
    $r = http_get($h->port, '/named', method => 'POST', body => 'x');
    my @e = trace_spans($redis->port, response_trace($r), count => 2);
    my ($named) = grep { $_->{kind} eq 'server'
                         && $_->{'url.path'} eq '/named' } @e;
    is($named && $named->{name}, 'custom POST', "$mpm: EdgeTraceSpanName expr");

    # --- a static file: a server span only, named by the directory
    $r = http_get($h->port, '/static.txt');
    is($r->{body}, "static\n", "$mpm: static file served");
    @e = trace_spans($redis->port, response_trace($r));
    my ($static) = grep { ($_->{'url.path'} // '') eq '/static.txt' } @e;
    ok($static, "$mpm: static file traced");
    like($static->{name} // '', qr{^GET /.*htdocs/?$},
         "$mpm: static file span named by its directory");

    # --- EdgeTrace Off: nothing, and the client's header untouched
    $b->clear;
    my $tp_in = '00-' . ('12' x 16) . '-' . ('34' x 8) . '-01';
    $r = http_get($h->port, '/off', headers => [['traceparent', $tp_in]]);
    @req = $b->wait_requests(1);
    @tp = Edgetrace::Test::Backend->header_values($req[0], 'traceparent');
    is_deeply(\@tp, [$tp_in], "$mpm: EdgeTrace Off: header untouched");
    ok(!$r->{headers}{'x-trace-id'}, "$mpm: EdgeTrace Off: no environment");

    # --- counters
    my $m;
    wait_until(sub {
        $m = metrics($h->port, '/metrics');
        ($m->{edgetrace_spans_exported_total} // 0) == 5;
    }, 5);
    is($m->{edgetrace_requests_total}, 3, "$mpm: 3 requests traced");
    is($m->{'edgetrace_requests_sampled_total{reason="head"}'}, 3, "$mpm: 3 sampled");
    is($m->{edgetrace_spans_total}, 5, "$mpm: 5 spans");
    is($m->{edgetrace_spans_exported_total}, 5, "$mpm: 5 exported");
    is($m->{edgetrace_spans_queued}, 0, "$mpm: none queued");
    ok($m->{edgetrace_redis_connected} >= 1, "$mpm: connected");

    is(stream_len($redis->port), 5, "$mpm: 5 entries in the stream");

    # the counters page's headers, as nginx's (docs/httpd.md)
    $r = http_get($h->port, '/metrics');
    is($r->{headers}{'content-type'},
       'text/plain; version=0.0.4; charset=utf-8',
       "$mpm: counters page: Prometheus text, UTF-8");
    is($r->{headers}{'cache-control'}, 'no-store',
       "$mpm: counters page: never cached");

    # --- the environment when a variable of the same name is there
    # already, and after an internal redirect
    $r = http_get($h->port, '/preset.txt');
    like($r->{headers}{'x-trace-id'} // '', qr/^[0-9a-f]{32}$/,
         "$mpm: a preset EDGETRACE_TRACE_ID is replaced");
    my $preset = $r->{headers}{'x-trace-id'} // 'none';
    wait_until(sub { $h->access_log =~ m{"GET /preset.txt[^\n]*trace=} }, 3);
    like($h->access_log, qr{"GET /preset\.txt [^\n]* trace=$preset span=},
         "$mpm: preset: mod_log_config sees the module's value only");

    $r = http_get($h->port, '/dir/');
    is($r->{body}, "index\n", "$mpm: DirectoryIndex served");
    my $redirected = $r->{headers}{'x-trace-id'} // 'none';
    # every span of that path, in whatever trace, once the trace's is in
    trace_spans($redis->port, $redirected, settle => 0.2);
    @e = stream_entries($redis->port);
    my @dir = grep { ($_->{'url.path'} // '') eq '/dir/' } @e;
    is(scalar @dir, 1, "$mpm: internal redirect: one span");
    is($dir[0] && $dir[0]{trace_id}, $redirected,
       "$mpm: internal redirect: the environment has the span's trace id");

    # --- a name whose expression is empty: the default name
    $r = http_get($h->port, '/unnamed');
    @e = trace_spans($redis->port, response_trace($r), count => 2);
    my ($unnamed) = grep { $_->{kind} eq 'server'
                           && $_->{'url.path'} eq '/unnamed' } @e;
    is($unnamed && $unnamed->{name}, 'GET /unnamed',
       "$mpm: an empty EdgeTraceSpanName falls back to the default");

    $h->stop;
    is_deeply([$h->crashes], [], "$mpm: no crash");
}

done_testing();
