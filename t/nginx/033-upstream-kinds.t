#!/usr/bin/perl
# The other upstream modules: fastcgi_pass, uwsgi_pass, scgi_pass and
# grpc_pass get the client span's context as their protocol carries request
# headers (FastCGI, uwsgi and SCGI: HTTP_TRACEPARENT / HTTP_TRACESTATE
# params; gRPC: HTTP/2 traceparent / tracestate headers), the client's own
# values replaced; the client span names the upstream by its scheme and peer
# (and gRPC's by the :path it sent: the method) and tells its status.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Backend qw(:all);

my $redis = start_redis();
my $fcgi = start_fastcgi();
my $uwsgi = start_uwsgi();
my $scgi = start_scgi();
my $grpc = start_echo_nginx(listen => 'http2');

my $ngx = start_nginx(redis => $redis, files => { allowed => "allowed\n" },
                      ports => { FCGI => $fcgi->port, UWSGI => $uwsgi->port,
                                 SCGI => $scgi->port, GRPC => $grpc->port },
                      conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /fcgi/ {
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_pass 127.0.0.1:%%FCGI%%;
        }
        location /uwsgi/ {
            uwsgi_param REQUEST_METHOD $request_method;
            uwsgi_param REQUEST_URI $request_uri;
            uwsgi_pass 127.0.0.1:%%UWSGI%%;
        }
        location /scgi/ {
            scgi_param REQUEST_METHOD $request_method;
            scgi_param REQUEST_URI $request_uri;
            scgi_pass 127.0.0.1:%%SCGI%%;
        }
        location /fcgi-b3/ {
            edgetrace_propagation w3c b3 b3multi;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_pass 127.0.0.1:%%FCGI%%;
        }
        location /fcgi-own/ {
            fastcgi_pass_request_headers off;
            fastcgi_param HTTP_TRACEPARENT $edgetrace_traceparent;
            fastcgi_pass 127.0.0.1:%%FCGI%%;
        }
        location /grpc/ {
            grpc_pass grpc://127.0.0.1:%%GRPC%%;
        }
        location /grpc-rw/ {
            rewrite ^/grpc-rw/(.*)$ /svc/$1 break;
            grpc_pass grpc://127.0.0.1:%%GRPC%%;
        }
        location /grpc-auth/ {
            auth_request /grpc-check;
            alias %%PREFIX%%/html/;
        }
        location = /grpc-check {
            internal;
            grpc_pass grpc://127.0.0.1:%%GRPC%%;
        }
        location /grpc-retry/ {
            grpc_intercept_errors on;
            error_page 404 = /grpc/fallback;
            grpc_pass grpc://127.0.0.1:%%GRPC%%;
        }
    }
EOF

# how each backend shows the context it received
my %kinds = (
    fcgi  => { backend => $fcgi, scheme => 'fastcgi',
               get => sub { param_values($_[0], 'HTTP_' . uc $_[1]) } },
    uwsgi => { backend => $uwsgi, scheme => 'uwsgi',
               get => sub { param_values($_[0], 'HTTP_' . uc $_[1]) } },
    scgi  => { backend => $scgi, scheme => 'scgi',
               get => sub { param_values($_[0], 'HTTP_' . uc $_[1]) } },
    grpc  => { backend => $grpc, scheme => 'grpc',
               get => sub { Edgetrace::Test::Backend->header_values(@_) } },
);

# one request through a kind of upstream, continuing a trace; returns (the
# response, what the backend received, the server and the client span)
sub exchange {
    my ($kind, $path, %o) = @_;
    my $k = $kinds{$kind};
    $k->{backend}->clear;
    my $r = http_get($ngx->port, "/$kind$path", headers => $o{headers} || []);
    my @req = $k->{backend}->wait_requests(1);
    my ($tp) = $k->{get}->($req[0], 'traceparent');
    my (undef, $trace) = parse_traceparent($tp);
    my @s = trace_spans($redis->port, $trace, count => 2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    my ($client) = grep { $_->{kind} eq 'client' } @s;
    return ($r, \@req, $server, $client);
}

for my $kind (sort keys %kinds) {
    my $k = $kinds{$kind};
    my $port = $k->{backend}->port;
    my $trace = new_trace_id();
    my $parent = new_span_id();

    # --- a continued trace: the client's context is replaced by ours
    my ($r, $req, $server, $client) = exchange($kind, '/x?q=1',
        headers => [['traceparent', "00-$trace-$parent-01"],
                    ['tracestate', 'vendor=abc']]);
    is($r->{status}, 200, "$kind: answered");
    is(scalar @$req, 1, "$kind: one request upstream");
    my @tp = $k->{get}->($req->[0], 'traceparent');
    is(scalar @tp, 1, "$kind: one traceparent upstream");
    my ($v, $tid, $sid, $flags) = parse_traceparent($tp[0]);
    is($tid, $trace, "$kind: upstream traceparent continues the trace");
    isnt($sid, $parent, "$kind: not the client's span id");
    is($flags, '01', "$kind: sampled");
    is_deeply([$k->{get}->($req->[0], 'tracestate')], ['vendor=abc'],
              "$kind: tracestate upstream, once");
    ok($server && $client, "$kind: a server and a client span");
    is($server->{parent_id}, $parent, "$kind: server span continues");
    is($client->{parent_id}, $server->{span_id},
       "$kind: client span is the server span's child");
    is($sid, $client->{span_id}, "$kind: upstream's parent is the client span");
    # gRPC sends the URI as its :path; the others send none
    is($client->{'url.full'}, "$k->{scheme}://127.0.0.1:$port"
                              . ($kind eq 'grpc' ? '/grpc/x?q=1' : ''),
       "$kind: url.full");
    is($client->{'server.address'}, '127.0.0.1', "$kind: server.address");
    is($client->{'server.port'}, $port, "$kind: server.port");
    is($client->{'http.response.status_code'}, '200', "$kind: status 200");
    is($client->{status}, 'unset', "$kind: client span status unset");
    like($client->{'event.0'}, qr/^upstream\.try peer=127\.0\.0\.1:$port (?#
                                   )status=200 /, "$kind: the try");

    # --- a new root: context upstream all the same
    ($r, $req, $server, $client) = exchange($kind, '/root');
    @tp = $k->{get}->($req->[0], 'traceparent');
    is(scalar @tp, 1, "$kind: root: one traceparent upstream");
    ok($server && !exists $server->{parent_id}, "$kind: root server span");
    ok($client, "$kind: root: a client span");
    (undef, $tid, $sid) = parse_traceparent($tp[0]);
    is($tid, $server->{trace_id}, "$kind: root: upstream got the trace id");
    is($sid, $client->{span_id}, "$kind: root: upstream saw the client span");
    is_deeply([$k->{get}->($req->[0], 'tracestate')], [],
              "$kind: root: no tracestate");

    # --- an error from the upstream
    ($r, $req, $server, $client) = exchange($kind, '/status/404');
    is($r->{status}, 404, "$kind: 404 passed on");
    is($client->{status}, 'error', "$kind: client span: 404 is an error");
    is($client->{'error.type'}, '404', "$kind: error.type 404");
    is($client->{'http.response.status_code'}, '404', "$kind: status 404");
}

# --- FastCGI with every format: each header its own HTTP_ param, the
# client's stale ones gone
my $trace = new_trace_id();
$fcgi->clear;
my $r = http_get($ngx->port, '/fcgi-b3/x',
                 headers => [['X-B3-TraceId', $trace],
                             ['X-B3-SpanId', new_span_id()],
                             ['X-B3-ParentSpanId', new_span_id()],
                             ['X-B3-Sampled', '1']]);
is($r->{status}, 200, 'fcgi b3: answered');
my ($fr) = $fcgi->wait_requests(1);
my @s = trace_spans($redis->port, $trace, count => 2);
my ($client) = grep { $_->{kind} eq 'client' } @s;
ok($client, 'fcgi b3: the B3 trace continued, with a client span');
my %p = map { $_ => [param_values($fr, $_)] }
        qw(HTTP_TRACEPARENT HTTP_B3 HTTP_X_B3_TRACEID HTTP_X_B3_SPANID
           HTTP_X_B3_SAMPLED HTTP_X_B3_PARENTSPANID);
is_deeply($p{HTTP_TRACEPARENT}, ["00-$trace-$client->{span_id}-01"],
          'fcgi b3: HTTP_TRACEPARENT');
is_deeply($p{HTTP_B3}, ["$trace-$client->{span_id}-1"], 'fcgi b3: HTTP_B3');
is_deeply($p{HTTP_X_B3_TRACEID}, [$trace], 'fcgi b3: HTTP_X_B3_TRACEID');
is_deeply($p{HTTP_X_B3_SPANID}, [$client->{span_id}],
          'fcgi b3: HTTP_X_B3_SPANID, ours');
is_deeply($p{HTTP_X_B3_SAMPLED}, ['1'], 'fcgi b3: HTTP_X_B3_SAMPLED');
is_deeply($p{HTTP_X_B3_PARENTSPANID}, [], 'fcgi b3: the client\'s parent gone');

# --- no request headers passed: $edgetrace_traceparent as a param
$fcgi->clear;
$r = http_get($ngx->port, '/fcgi-own/x',
              headers => [['traceparent', "00-$trace-" . new_span_id() . '-01']]);
is($r->{status}, 200, 'fcgi own param: answered');
($fr) = $fcgi->wait_requests(1);
is(scalar(grep { $_->[0] =~ /^HTTP_/ } @{ $fr->{params} }), 1,
   'fcgi own param: the only HTTP_ param');
my ($tp) = param_values($fr, 'HTTP_TRACEPARENT');
my (undef, $tid, $sid) = parse_traceparent($tp);
is($tid, $trace, 'fcgi own param: the trace continued');
@s = trace_spans($redis->port, $trace, count => 4);
ok(scalar(grep { $_->{kind} eq 'client' && $_->{span_id} eq ($sid // '') }
           @s), 'fcgi own param: it names the client span');

# --- gRPC url.full is the :path the upstream got, also when nginx made it
# (a rewritten URI is escaped and keeps the arguments)
for my $case (['/grpc-rw/a%20b?k=v', '/svc/a%20b?k=v'],
              ['/grpc/p%41th', '/grpc/p%41th'])
{
    my ($path, $want) = @$case;
    $grpc->clear;
    $r = http_get($ngx->port, $path);
    my ($gr) = $grpc->wait_requests(1);
    is($gr->{uri}, $want, "grpc $path: the :path sent");
    (undef, $tid) = parse_traceparent(
        (Edgetrace::Test::Backend->header_values($gr, 'traceparent'))[0]);
    ($client) = grep { $_->{kind} eq 'client' }
                trace_spans($redis->port, $tid, count => 2);
    is($client->{'url.full'}, 'grpc://127.0.0.1:' . $grpc->port . $want,
       "grpc $path: url.full has that :path");
}

# two exchanges of one request (error_page after a 404): each its own path
$grpc->clear;
$r = http_get($ngx->port, '/grpc-retry/status/404');
is($r->{status}, 200, 'grpc error_page: the fallback answered');
my @gr = $grpc->wait_requests(2);
is_deeply([map { $_->{uri} } @gr], ['/grpc-retry/status/404',
                                    '/grpc/fallback'],
          'grpc error_page: two requests upstream');
(undef, $tid) = parse_traceparent(
    (Edgetrace::Test::Backend->header_values($gr[0], 'traceparent'))[0]);
my %url = map { $_->{span_id} => $_->{'url.full'} }
          grep { $_->{kind} eq 'client' }
          trace_spans($redis->port, $tid, count => 3);
my @sids = map { (parse_traceparent((Edgetrace::Test::Backend
                  ->header_values($_, 'traceparent'))[0]))[2] } @gr;
is_deeply([map { $url{$_ // ''} } @sids],
          ['grpc://127.0.0.1:' . $grpc->port . '/grpc-retry/status/404',
           'grpc://127.0.0.1:' . $grpc->port . '/grpc/fallback'],
          'grpc error_page: each client span has its own path');

# a subrequest's exchange: the subrequest's URI
$grpc->clear;
$r = http_get($ngx->port, '/grpc-auth/allowed?q=1');
is($r->{body}, "allowed\n", 'grpc auth_request: allowed');
my ($ar) = $grpc->wait_requests(1);
is($ar->{uri}, '/grpc-check', 'grpc auth_request: the :path sent');
my (undef, $atid, $asid) = parse_traceparent(
    (Edgetrace::Test::Backend->header_values($ar, 'traceparent'))[0]);
($client) = grep { $_->{span_id} eq ($asid // '') }
            trace_spans($redis->port, $atid, count => 2);
is($client->{'url.full'}, 'grpc://127.0.0.1:' . $grpc->port . $ar->{uri},
   'grpc auth_request: url.full has the subrequest\'s :path');

# the gRPC upstream really spoke HTTP/2
my ($h2) = @gr;
is($h2->{version}, 'HTTP/2.0', 'grpc: the upstream request was HTTP/2');
is($h2->{method}, 'GET', 'grpc: the method passed on');

# FastCGI and uwsgi: the configured params are there beside the context
($fr) = grep { (param_values($_, 'REQUEST_URI'))[0] } $uwsgi->requests;
is_deeply([param_values($fr, 'REQUEST_URI')], ['/uwsgi/status/404'],
          'uwsgi: REQUEST_URI as configured');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
