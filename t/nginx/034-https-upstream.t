#!/usr/bin/perl
# proxy_pass https://: the TLS upstream gets the client span's context, and
# the client span's url.full says https.  The upstream is a second nginx
# with a certificate made for the test.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Backend qw(start_echo_nginx);

my $redis = start_redis();
my $tls = start_echo_nginx(listen => 'ssl');
my $tp = $tls->port;

my $ngx = start_nginx(redis => $redis, ports => { TLS => $tp },
                      conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    upstream secure {
        server 127.0.0.1:%%TLS%%;
        keepalive 2;
    }

    server {
        listen 127.0.0.1:%%PORT%%;

        location /tls/ {
            proxy_pass https://127.0.0.1:%%TLS%%/in/;
        }
        location /pool/ {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass https://secure/;
        }
    }
EOF

sub exchange {
    my ($path, %o) = @_;
    $tls->clear;
    my $r = http_get($ngx->port, $path, %o);
    my @req = $tls->wait_requests(1);
    my ($tph) = Edgetrace::Test::Backend->header_values($req[0],
                                                        'traceparent');
    my (undef, $trace) = parse_traceparent($tph);
    my @s = trace_spans($redis->port, $trace, count => 2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    my ($client) = grep { $_->{kind} eq 'client' } @s;
    return ($r, \@req, $server, $client);
}

my $trace = new_trace_id();
my $parent = new_span_id();
my ($r, $req, $server, $client) = exchange('/tls/x?a=b',
    headers => [['traceparent', "00-$trace-$parent-01"],
                ['tracestate', 'k=v']]);
is($r->{status}, 200, 'answered over TLS');
is(scalar @$req, 1, 'one request upstream');
is($req->[0]{scheme}, 'https', 'the upstream was reached over TLS');
is($req->[0]{uri}, '/in/x?a=b', 'the URI sent upstream');
my ($tph) = Edgetrace::Test::Backend->header_values($req->[0], 'traceparent');
my (undef, $tid, $sid) = parse_traceparent($tph);
is($tid, $trace, 'the TLS upstream got the trace id');
ok($client, 'a client span');
is($sid, $client->{span_id}, 'the TLS upstream got the client span id');
is($client->{parent_id}, $server->{span_id}, 'client span: server\'s child');
is_deeply([Edgetrace::Test::Backend->header_values($req->[0], 'tracestate')],
          ['k=v'], 'tracestate upstream');
is($client->{'url.full'}, "https://127.0.0.1:$tp/in/x?a=b",
   'url.full: https, the peer and the URI sent');
is($client->{'server.port'}, $tp, 'server.port: the TLS peer');
is($client->{'http.response.status_code'}, '200', 'status code 200');
is($server->{'url.scheme'}, 'http', 'server span: the client spoke http');

# an error status through TLS
($r, $req, $server, $client) = exchange('/tls/status/503');
is($r->{status}, 503, '503 over TLS');
is($client->{status}, 'error', 'client span: error');
is($client->{'error.type'}, '503', 'client span: error.type 503');

# an upstream block with keepalive TLS connections: each request its own id
my %ids;
for (1 .. 3) {
    ($r, $req, $server, $client) = exchange('/pool/k');
    is($r->{status}, 200, 'pooled TLS: answered');
    is($client->{'url.full'}, 'https://127.0.0.1:' . $tp . '/k',
       'pooled TLS: url.full names the peer, not the upstream block');
    my @tp = Edgetrace::Test::Backend->header_values($req->[0],
                                                     'traceparent');
    is(scalar @tp, 1, 'pooled TLS: a traceparent upstream');
    ok($client, 'pooled TLS: a client span');
    (undef, undef, $sid) = parse_traceparent($tp[0]);
    is($sid, $client->{span_id}, 'pooled TLS: upstream saw this client span');
    $ids{$sid}++;
}
is(scalar keys %ids, 3, 'pooled TLS: three client span ids');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
