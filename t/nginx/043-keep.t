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

case 'a 5xx of an unsampled parent: kept, with its ids and its client span'
    => sub {
    kept_5xx_case(port => $ngx->port, redis => $redis, backend => $b,
                  api => '/api/');
};

case 'a slow request: kept; a quick one and a 404 are not' => sub {
    slow_case(port => $ngx->port, redis => $redis, backend => $b,
              api => '/api/');
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
        kept_or_not($redis, $port, $trace, $parent, $kept, $what);
    }
};

case '$edgetrace_sampling in the access log' => sub {
    sampling_log_case(port => $ngx->port, api => '/api/',
                      log => $ngx->prefix . '/keep.log');
};

case 'counters add up' => sub {
    keep_counters_case(server => $ngx, redis => $redis, metrics => '/status');
};

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing();
