#!/usr/bin/perl
# The module's context travels in the request's header list, which
# proxy_pass forwards: the admin's own proxy_set_header of a context header
# wins (exactly one header upstream, never two; an empty value sends none),
# and proxy_pass_request_headers off forwards none of the list, the
# module's context included, unless the admin names it with
# proxy_set_header ($edgetrace_traceparent, $http_tracestate).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $FIXED = '00-11111111111111111111111111111111-2222222222222222-01';

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, conf => <<"EOF");
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /off {
            proxy_pass_request_headers off;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /off-named {
            proxy_pass_request_headers off;
            proxy_set_header traceparent \$edgetrace_traceparent;
            proxy_set_header tracestate \$http_tracestate;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /fixed {
            proxy_set_header TraceParent "$FIXED";
            proxy_set_header tracestate "admin=1";
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /none {
            proxy_set_header traceparent "";
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /ours {
            proxy_set_header traceparent \$edgetrace_traceparent;
            proxy_set_header tracestate \$http_tracestate;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
    }
EOF

my $P = new_span_id();

# one request with a valid context, its tracestate on two lines with a
# duplicate key; returns (the upstream's traceparents, its tracestates,
# its X-Client values, the server span, the client span)
sub run {
    my ($path) = @_;
    my $T = new_trace_id();
    $b->clear;
    my $r = http_get($ngx->port, $path,
                     headers => [['traceparent', "00-$T-$P-01"],
                                 ['tracestate', 'congo=1, rojo=2'],
                                 ['tracestate', 'congo=3'],
                                 ['X-Client', 'yes']]);
    is($r->{status}, 200, "$path: answered");
    my ($up) = $b->wait_requests(1);
    my @v = map { [Edgetrace::Test::Backend->header_values($up, $_)] }
            'traceparent', 'tracestate', 'x-client';
    my @s = trace_spans($redis->port, $T, count => 2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    my ($client) = grep { $_->{kind} eq 'client' } @s;
    is($server->{parent_id}, $P, "$path: the client's context is continued");
    is($server->{tracestate}, 'congo=1,rojo=2',
       "$path: the span carries the client's tracestate");
    ok($client, "$path: the upstream try is a client span");
    return (@v, $server, $client);
}

# --- proxy_pass_request_headers off: nothing of the list, ours included
my ($tp, $ts, $x, $server, $client) = run('/off');
is_deeply($x, [], '/off: the client\'s headers are not forwarded');
is_deeply($tp, [], '/off: no traceparent upstream');
is_deeply($ts, [], '/off: no tracestate upstream');

# ... unless named: ours, exactly once
($tp, $ts, $x, $server, $client) = run('/off-named');
is_deeply($x, [], '/off-named: the client\'s headers are not forwarded');
is_deeply($tp, ["00-$server->{trace_id}-$client->{span_id}-01"],
          '/off-named: one traceparent, ours: the client span');
is_deeply($ts, ['congo=1,rojo=2'],
          '/off-named: one tracestate, the one the module forwards');

# --- the admin's value wins over ours, once
($tp, $ts, $x) = run('/fixed');
is_deeply($x, ['yes'], '/fixed: the client\'s headers are forwarded');
is_deeply($tp, [$FIXED], '/fixed: one traceparent, the admin\'s');
is_deeply($ts, ['admin=1'], '/fixed: one tracestate, the admin\'s');

# whichever way the module writes the list (ours added to a list without
# context, the client's replaced in place, the list rebuilt without two
# lines), the admin's value is the only one
for my $case (['no context', []],
              ['one of each', [['traceparent', "00-${\new_trace_id()}-$P-01"],
                               ['tracestate', 'congo=1']]],
              ['two tracestate lines', [['tracestate', 'congo=1'],
                                        ['tracestate', 'rojo=1']]]) {
    my ($what, $headers) = @$case;
    $b->clear;
    http_get($ngx->port, '/fixed', headers => $headers);
    my ($up) = $b->wait_requests(1);
    is_deeply([map { [Edgetrace::Test::Backend->header_values($up, $_)] }
               'traceparent', 'tracestate'], [[$FIXED], ['admin=1']],
              "/fixed, $what: only the admin's values");
}

# an empty value sends none, and ours does not come back
($tp, $ts) = run('/none');
is_deeply($tp, [], '/none: no traceparent upstream');
is_deeply($ts, ['congo=1,rojo=2'], '/none: the tracestate is still ours');

# the admin's variables give ours, once
($tp, $ts, $x, $server, $client) = run('/ours');
is_deeply($tp, ["00-$server->{trace_id}-$client->{span_id}-01"],
          '/ours: one traceparent, ours');
is_deeply($ts, ['congo=1,rojo=2'], '/ours: one tracestate, ours');

# without a valid client context the named tracestate is empty: none sent
$b->clear;
http_get($ngx->port, '/off-named', headers => [['tracestate', 'congo=1']]);
my ($up) = $b->wait_requests(1);
my @tp = Edgetrace::Test::Backend->header_values($up, 'traceparent');
my (undef, $t, $s) = parse_traceparent($tp[0]);
ok($t, '/off-named, new root: our traceparent upstream');
my @spans = trace_spans($redis->port, $t, count => 2);
my ($root) = grep { $_->{kind} eq 'server' } @spans;
ok($root && !exists $root->{parent_id}, '/off-named, new root: a root span');
is_deeply([Edgetrace::Test::Backend->header_values($up, 'tracestate')], [],
          '/off-named, new root: no tracestate upstream');

is_deeply([$ngx->crashes], [], 'no worker crashed');

done_testing;
