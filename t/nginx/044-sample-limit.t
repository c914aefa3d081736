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
use Time::HiRes ();
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
    # the bucket empty, then more sampled parents than it would let by
    wrk_burst($ngx->port, '/ok', 1);
    my $m0 = sampling_counters($ngx->port, '/status');
    my $n = 400;
    my $t0 = Time::HiRes::time();
    for (1 .. $n) {
        http_get($ngx->port, '/ok',
                 headers => [['traceparent',
                              new_traceparent(new_trace_id())]]);
    }
    my $secs = Time::HiRes::time() - $t0;
    my $d = sampling_counters($ngx->port, '/status', $m0);
    ok(1, sprintf('%d sampled parents in %.1f s', $n, $secs));
    is($d->{'edgetrace_requests_sampled_total{reason="head"}'}, $n,
       'every one head-sampled, above the limit');
    is($d->{edgetrace_requests_rate_limited_total}, 0, 'none rate-limited');
};

case 'a limited request: unsampled upstream, kept by its outcome' => sub {
    limited_case(port => $one->port, redis => $redis1, backend => $b,
                 api => '/api/');
};

case 'counters add up' => sub {
    for my $c ([$ngx, $redis], [$one, $redis1]) {
        my ($s, $r) = @$c;
        my $m = metrics($s->port, '/status');
        ok($m->{'edgetrace_requests_sampled_total{reason="head"}'}
           + $m->{edgetrace_requests_rate_limited_total}
           <= $m->{edgetrace_requests_total},
           'head + rate_limited <= requests');
        Edgetrace::Test::counters_match_redis($s, $r->port,
                                              path => '/status',
                                              dropped => 0, timeout => 30);
    }
};

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing();
