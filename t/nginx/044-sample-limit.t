#!/usr/bin/perl
# edgetrace_sample_limit (docs/nginx.md): a burst of new roots at 100/s
# over 2 s exports at most 100 + 100 a second, over two workers sharing the
# bucket; parents that arrive sampled pass; a limited request is unsampled
# (the upstream gets sampled=0, $edgetrace_sampling is "limited") and
# edgetrace_keep still keeps it by its outcome; the counters add up.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Keep qw(:all);

my $redis = start_redis();
my $b = start_backend();

my $conf = <<'EOF';
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace_queue_size 16m;
    edgetrace on;
    edgetrace_sample_limit %%LIMIT%%/s;
    edgetrace_keep status=5xx;
    add_header X-Trace-Id $edgetrace_trace_id always;
    add_header X-Sampling $edgetrace_sampling always;
    access_log off;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /ok {
            return 200;
        }
        location /api/ {
            proxy_pass http://127.0.0.1:%%BACKEND%%/;
        }
        location /barrier {
            return 200;
        }
        location /status {
            edgetrace off;
            edgetrace_status;
        }
    }
EOF

(my $c100 = $conf) =~ s/%%LIMIT%%/100/;
(my $c1 = $conf) =~ s/%%LIMIT%%/1/;
my $ngx = start_nginx(redis => $redis, workers => 2, conf => $c100);
my $redis1 = start_redis();
my $one = start_nginx(redis => $redis1, conf => $c1);

case 'a burst of new roots at 100/s: at most 100 + 100 a second' => sub {
    limit_burst_case(port => $ngx->port, redis => $redis,
                     metrics => '/status');
};

case 'parents that arrive sampled pass the limit' => sub {
    sampled_parents_case(port => $ngx->port, metrics => '/status');
};

case 'a limited request: unsampled upstream, kept by its outcome' => sub {
    limited_case(port => $one->port, redis => $redis1, backend => $b,
                 api => '/api/');
};

case 'counters add up' => sub {
    limit_counters_case(servers => [[$ngx, $redis], [$one, $redis1]],
                        metrics => '/status');
};

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing();
