#!/usr/bin/perl
# edgetrace_keep (docs/nginx.md): at 1% head sampling, every 5xx and every
# slow request is exported at its end with its client span, marked
# edgetrace.sampling=outcome, with the trace id and parent it carried,
# while its upstream got sampled=0; 200s at about the head ratio; rules
# with variables at the http, server and location levels, replaced by a
# level with its own; $edgetrace_sampling in the access log.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Keep qw(:all);

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;
    edgetrace_sample 0.01;
    edgetrace_keep status=5xx slower=200ms;
    edgetrace_keep $http_x_keep_http;
    add_header X-Trace-Id $edgetrace_trace_id always;

    log_format keep '$edgetrace_trace_id "$edgetrace_sampling" $status';

    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/keep.log keep;

        location /api/ {
            proxy_pass http://127.0.0.1:%%BACKEND%%/;
        }
        location /ret/ {
            return 200;
        }
        location /barrier {
            return 200;
        }
        location /status {
            edgetrace off;
            edgetrace_status;
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        edgetrace_keep $http_x_keep_srv;

        location /inherit {
            return 503;
        }
        location /own {
            edgetrace_keep $arg_keep status=404;
            return 404;
        }
        location /own-503 {
            edgetrace_keep $arg_keep;
            return 503;
        }
        location /off {
            edgetrace_keep off;
            return 503;
        }
        location /barrier {
            return 200;
        }
    }
EOF

my $port2 = $ngx->ports->{PORT2};

# none of the trace's spans, once a later trace's are in the stream
sub none_exported {
    my ($trace, $port) = @_;
    barrier($redis->port, $port // $ngx->port);
    my @s = trace_spans($redis->port, $trace, count => 1, timeout => 0);
    return !@s;
}

my $base = metrics($ngx->port, '/status');

case 'a 5xx of an unsampled parent: kept, with its ids and its client span'
    => sub {
    for my $code (503, 500, 599) {
        my $path = "/api/status/$code";
        my ($trace, $parent, $h) = unsampled();
        $b->clear;
        my $r = http_get($ngx->port, $path, headers => $h);
        is($r->{status}, $code, "$path: answered");
        my @s = trace_spans($redis->port, $trace, count => 2, settle => 0.2);
        is(scalar @s, 2, "$path: its server and client spans");
        my ($server) = grep { $_->{kind} eq 'server' } @s;
        my ($client) = grep { $_->{kind} eq 'client' } @s;
        is($server->{'edgetrace.sampling'}, 'outcome',
           "$path: server span edgetrace.sampling=outcome");
        is($client->{'edgetrace.sampling'}, 'outcome',
           "$path: client span edgetrace.sampling=outcome");
        is($server->{parent_id}, $parent, "$path: the parent it carried");
        is($client->{parent_id}, $server->{span_id},
           "$path: the client span's parent is the server span");
        is($server->{'http.response.status_code'}, $code, "$path: status");
        is($client->{'http.response.status_code'}, $code,
           "$path: the upstream's status");
        my @req = $b->wait_requests(1);
        my @tp = upstream_flags($req[0]);
        is($tp[1], $trace, "$path: upstream got the trace id");
        is($tp[2], $client->{span_id},
           "$path: upstream's parent is the client span");
        is($tp[3], '00', "$path: upstream got sampled=0");
    }
};

case 'a slow request: kept; a quick one and a 404 are not' => sub {
    my ($trace, $parent, $h) = unsampled();
    $b->clear;
    my $r = http_get($ngx->port, '/api/slow/300', headers => $h);
    is($r->{status}, 200, 'slow: answered');
    my @s = trace_spans($redis->port, $trace, count => 2, settle => 0.2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    my ($client) = grep { $_->{kind} eq 'client' } @s;
    ok($server && $client, 'slow: server and client spans');
    is($server->{'edgetrace.sampling'}, 'outcome', 'slow: outcome');
    is($client->{'edgetrace.sampling'}, 'outcome', 'slow: client outcome');
    ok(span_ms($server) >= 290, sprintf('slow: it lasted %.0f ms',
                                        span_ms($server)));
    is($server->{parent_id}, $parent, 'slow: the parent it carried');
    my @req = $b->wait_requests(1);
    is((upstream_flags($req[0]))[3], '00', 'slow: upstream got sampled=0');

    ($trace, $parent, $h) = unsampled();
    $r = http_get($ngx->port, '/api/slow/20', headers => $h);
    is($r->{status}, 200, 'quick: answered');
    ok(none_exported($trace), 'quick: nothing exported');

    ($trace, $parent, $h) = unsampled();
    $r = http_get($ngx->port, '/api/status/404', headers => $h);
    is($r->{status}, 404, 'a 404: answered');
    ok(none_exported($trace), 'a 404 (no rule): nothing exported');
};

case '1% head sampling: every 5xx and slow request kept, 200s at the ratio'
    => sub {
    head_ratio_case(port => $ngx->port, redis => $redis, backend => $b,
                    metrics => '/status', api => '/api/');
};

case 'rules with variables: http, server, location; replaced, not added'
    => sub {
    my @cases = (
        # [port, path, headers, kept, what]
        [$ngx->port, '/ret/x', [['X-Keep-Http', '1']], 1,
         'http: $http_x_keep_http=1 keeps'],
        [$ngx->port, '/ret/x', [['X-Keep-Http', '0']], 0,
         'http: "0" does not keep'],
        [$ngx->port, '/ret/x', [['X-Keep-Http', '']], 0,
         'http: empty does not keep'],
        [$ngx->port, '/ret/x', [], 0, 'http: no header, a 200: not kept'],
        [$port2, '/inherit', [['X-Keep-Srv', 'yes']], 1,
         'server: its own variable keeps'],
        [$port2, '/inherit', [['X-Keep-Http', '1']], 0,
         'server: the http level\'s variable replaced'],
        [$port2, '/inherit', [], 0,
         'server: the http level\'s status=5xx replaced: a 503 not kept'],
        [$port2, '/own?keep=1', [], 1, 'location: its own variable keeps'],
        [$port2, '/own', [], 1, 'location: its own status=404 keeps'],
        [$port2, '/own-503', [['X-Keep-Srv', 'yes']], 0,
         'location: the server\'s rules replaced'],
        [$port2, '/own-503?keep=0', [], 0, 'location: $arg_keep=0'],
        [$port2, '/own-503?keep=yes', [], 1, 'location: $arg_keep=yes'],
        [$port2, '/off', [['X-Keep-Srv', 'yes'], ['X-Keep-Http', '1']], 0,
         'location: off, no rules'],
    );
    for my $c (@cases) {
        my ($port, $path, $hdrs, $kept, $what) = @$c;
        my ($trace, $parent, $h) = unsampled();
        http_get($port, $path, headers => [@$h, @$hdrs]);
        if ($kept) {
            my @s = trace_spans($redis->port, $trace, count => 1);
            is(scalar @s, 1, "$what: exported");
            is($s[0]{'edgetrace.sampling'}, 'outcome', "$what: outcome");
            is($s[0]{parent_id}, $parent, "$what: the parent it carried");
        } else {
            ok(none_exported($trace, $port), "$what: nothing exported");
        }
    }
};

case '$edgetrace_sampling in the access log' => sub {
    my ($t1, undef, $h1) = unsampled();
    http_get($ngx->port, '/api/status/502', headers => $h1);
    my ($t2, undef, $h2) = unsampled();
    http_get($ngx->port, '/api/ok', headers => $h2);
    my $t3 = new_trace_id();
    http_get($ngx->port, '/api/ok',
             headers => [['traceparent', new_traceparent($t3)]]);
    my %log;
    wait_until(sub {
        %log = map { /^(\S+) "(\S*)" (\d+)/ ? ($1 => $2) : () }
               split /\n/, Edgetrace::Test::_slurp($ngx->prefix
                                                   . '/keep.log');
        exists $log{$t3};
    }, 3);
    is($log{$t1}, 'outcome', 'a kept 502: outcome');
    is($log{$t2}, '', 'an unsampled 200: empty');
    is($log{$t3}, 'head', 'a sampled parent: head');
};

case 'counters add up' => sub {
    my $m = metrics($ngx->port, '/status');
    ok($m->{'edgetrace_requests_sampled_total{reason="outcome"}'}
       > $base->{'edgetrace_requests_sampled_total{reason="outcome"}'},
       'requests_sampled_total{reason="outcome"} counted');
    is($m->{edgetrace_requests_rate_limited_total}, 0,
       'no limit: nothing rate-limited');
    ok($m->{'edgetrace_requests_sampled_total{reason="head"}'}
       + $m->{'edgetrace_requests_sampled_total{reason="outcome"}'}
       <= $m->{edgetrace_requests_total}, 'head + outcome <= requests');
    Edgetrace::Test::counters_match_redis($ngx, $redis, path => '/status',
                                          dropped => 0);
};

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing();
