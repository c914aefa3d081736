#!/usr/bin/perl
# A try that got no response (connection refused, timed out) has no status:
# the 502 or 504 nginx then answers with is its own, not the upstream's.
# The client span says error.type=no_response and the try status=-, as
# httpd writes for the same cases; a status an upstream did send is kept.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();
my $bp = $b->port;
my $ngx = start_nginx(redis => $redis, conf => <<'EOF2');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    upstream refused_then_live {
        server 127.0.0.1:%%DEAD%% max_fails=0;
        server 127.0.0.1:%%BACKEND%% backup;
    }

    server {
        listen 127.0.0.1:%%PORT%%;

        location /refused {
            proxy_pass http://127.0.0.1:%%DEAD%%;
        }
        location /slow/ {
            proxy_read_timeout 300ms;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /status/ {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /retry {
            proxy_next_upstream error timeout;
            proxy_pass http://refused_then_live;
        }
    }
EOF2
my $dead = $ngx->ports->{DEAD};

# a request in a trace of its own: (response, server span, client span)
sub exchange {
    my ($path) = @_;
    my ($trace, $parent) = (new_trace_id(), new_span_id());
    my $r = http_get($ngx->port, $path,
                     headers => [[traceparent => "00-$trace-$parent-01"]]);
    my @s = trace_spans($redis->port, $trace, count => 2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    my ($client) = grep { $_->{kind} eq 'client' } @s;
    return ($r, $server || {}, $client || {});
}

# --- connection refused
my ($r, $server, $client) = exchange('/refused/x');
is($r->{status}, 502, 'refused: nginx answers 502');
is($client->{status}, 'error', 'refused: client span error');
is($client->{'error.type'}, 'no_response', 'refused: error.type no_response');
ok(!exists $client->{'http.response.status_code'},
   'refused: no http.response.status_code');
like($client->{'event.0'} // '',
     qr/^upstream\.try peer=127\.0\.0\.1:$dead status=- connect_ms=- (?#
        )header_ms=- response_ms=\d+$/, 'refused: the try has no status');
is($client->{'server.port'}, $dead, 'refused: the peer');
is($server->{'http.response.status_code'}, 502,
   'refused: the server span has the 502 the client got');
is($server->{'error.type'}, '502', 'refused: server error.type 502');

# --- an upstream that accepts and never answers in time
($r, $server, $client) = exchange('/slow/3000');
is($r->{status}, 504, 'timeout: nginx answers 504');
is($client->{status}, 'error', 'timeout: client span error');
is($client->{'error.type'}, 'no_response', 'timeout: error.type no_response');
ok(!exists $client->{'http.response.status_code'},
   'timeout: no http.response.status_code');
like($client->{'event.0'} // '',
     qr/^upstream\.try peer=127\.0\.0\.1:$bp status=- connect_ms=\d+ (?#
        )header_ms=- response_ms=\d+$/,
     'timeout: connected, no status, no header time');
is($server->{'http.response.status_code'}, 504, 'timeout: server span 504');

# --- a 502 the upstream did send is the upstream's
($r, $server, $client) = exchange('/status/502');
is($r->{status}, 502, 'upstream 502: passed on');
is($client->{'http.response.status_code'}, 502, 'upstream 502: its status');
is($client->{'error.type'}, '502', 'upstream 502: error.type 502');
like($client->{'event.0'} // '',
     qr/^upstream\.try peer=127\.0\.0\.1:$bp status=502 connect_ms=\d+ (?#
        )header_ms=\d+ /, 'upstream 502: the try has it');

# --- refused, then a live peer answers
($r, $server, $client) = exchange('/retry/x');
is($r->{status}, 200, 'retry: the live peer answers');
like($client->{'event.0'} // '',
     qr/^upstream\.try peer=127\.0\.0\.1:$dead status=- connect_ms=- (?#
        )header_ms=- response_ms=\d+$/, 'retry: the refused try: no status');
like($client->{'event.1'} // '',
     qr/^upstream\.try peer=127\.0\.0\.1:$bp status=200 connect_ms=\d+ (?#
        )header_ms=\d+ response_ms=\d+$/, 'retry: the second try: 200');
is($client->{'http.response.status_code'}, 200, 'retry: status code 200');
is($client->{'http.request.resend_count'}, 1, 'retry: one resend');
is($client->{status}, 'unset', 'retry: the exchange succeeded');
ok(!exists $client->{'error.type'}, 'retry: no error.type');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
