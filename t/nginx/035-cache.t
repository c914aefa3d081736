#!/usr/bin/perl
# proxy_cache: a miss is an upstream exchange (a client span, the upstream
# sees the request with its context); a hit is answered from the cache with
# no exchange: a server span alone, and nothing reaches the upstream.  The
# server span tells nothing of the cache unless edgetrace_attribute adds
# $upstream_cache_status.

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

    proxy_cache_path %%PREFIX%%/cache keys_zone=c:1m;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /c/ {
            proxy_cache c;
            proxy_cache_valid 200 10m;
            add_header X-Cache $upstream_cache_status;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /a/ {
            proxy_cache c;
            proxy_cache_valid 200 10m;
            edgetrace_attribute cache.status $upstream_cache_status;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
    }
EOF

# one request continuing a new trace; returns (response, the requests the
# backend saw, the spans of the trace)
sub cached {
    my ($path) = @_;
    my $trace = new_trace_id();
    my $parent = new_span_id();
    $b->clear;
    my $r = http_get($ngx->port, $path,
                     headers => [['traceparent', "00-$trace-$parent-01"]]);
    # a moment more for a client span there should not be
    my @s = trace_spans($redis->port, $trace, count => 1);
    @s = trace_spans($redis->port, $trace, count => 3, timeout => 0.5);
    return ($r, [$b->requests], $trace, $parent, @s);
}

# --- a miss: the upstream is asked
my ($r, $req, $trace, $parent, @s) = cached('/c/page');
is($r->{status}, 200, 'miss: answered');
is($r->{headers}{'x-cache'}, 'MISS', 'miss: from the upstream');
is(scalar @$req, 1, 'miss: the upstream saw the request');
my ($server) = grep { $_->{kind} eq 'server' } @s;
my @client = grep { $_->{kind} eq 'client' } @s;
is(scalar @s, 2, 'miss: two spans');
is(scalar @client, 1, 'miss: one client span');
is($client[0]{parent_id}, $server->{span_id}, 'miss: client span is child');
my ($tp) = Edgetrace::Test::Backend->header_values($req->[0], 'traceparent');
my (undef, $tid, $sid) = parse_traceparent($tp);
is($tid, $trace, 'miss: upstream got the trace');
is($sid, $client[0]{span_id}, 'miss: upstream got the client span id');
is($client[0]{'url.full'}, "http://127.0.0.1:$bp/c/page", 'miss: url.full');
is($client[0]{'http.response.status_code'}, '200', 'miss: upstream status');
my %miss_server = %$server;

# --- a hit: no exchange, no client span
($r, $req, $trace, $parent, @s) = cached('/c/page');
is($r->{status}, 200, 'hit: answered');
is($r->{headers}{'x-cache'}, 'HIT', 'hit: from the cache');
# the cached body is the first answer: it lists the first request's headers
like($r->{body}, qr/^traceparent: 00-[0-9a-f]{32}-$sid-01$/m,
     'hit: the body is the cached one');
is(scalar @$req, 0, 'hit: the upstream saw nothing');
is(scalar @s, 1, 'hit: one span');
($server) = @s;
is($server->{kind}, 'server', 'hit: it is the server span');
is($server->{parent_id}, $parent, 'hit: server span continues the trace');
is($server->{'http.response.status_code'}, '200', 'hit: status 200');
is($server->{status}, 'unset', 'hit: status unset');
# the server span says nothing of the cache: a hit has the fields a miss has
is_deeply([sort grep { !/^_/ && !/^(start_ns|end_ns|span_id|trace_id|(?#
                                   )parent_id|client\.address)$/ } keys %$server],
          [sort grep { !/^_/ && !/^(start_ns|end_ns|span_id|trace_id|(?#
                                   )parent_id|client\.address)$/ }
                keys %miss_server],
          'hit: the server span has the fields of a miss');
ok(!grep({ /cache/i } keys %$server), 'hit: no cache field');

# --- another key misses again
($r, $req, $trace, $parent, @s) = cached('/c/other');
is($r->{headers}{'x-cache'}, 'MISS', 'another key: a miss');
is(scalar @$req, 1, 'another key: the upstream saw it');
is(scalar(grep { $_->{kind} eq 'client' } @s), 1,
   'another key: a client span');

# --- the cache status as an attribute
($r, $req, $trace, $parent, @s) = cached('/a/page');
($server) = grep { $_->{kind} eq 'server' } @s;
is($server->{'cache.status'}, 'MISS', 'attribute: MISS on the server span');
($r, $req, $trace, $parent, @s) = cached('/a/page');
is(scalar @$req, 0, 'attribute: the upstream saw no second request');
is(scalar @s, 1, 'attribute: a hit has no client span');
is($s[0]{'cache.status'}, 'HIT', 'attribute: HIT on the server span');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
