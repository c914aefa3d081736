#!/usr/bin/perl
# edgetrace_status: the counters in the Prometheus text format; at rest
# spans_total = exported + dropped (all reasons) + queued, exactly, and the
# stream holds every span exported.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /api {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /static {
            return 200 "ok\n";
        }
        location /off {
            edgetrace off;
            return 200 "off\n";
        }
        location = /metrics {
            edgetrace off;
            edgetrace_status;
        }
        location = /metrics-traced {
            edgetrace_status;
        }
    }
EOF

my @names = qw(edgetrace_requests_total
               edgetrace_requests_sampled_total{reason="head"}
               edgetrace_requests_sampled_total{reason="outcome"}
               edgetrace_requests_rate_limited_total
               edgetrace_spans_total edgetrace_spans_exported_total
               edgetrace_spans_dropped_total{reason="queue_full"}
               edgetrace_spans_dropped_total{reason="redis_error"}
               edgetrace_spans_queued edgetrace_redis_errors_total
               edgetrace_redis_reconnects_total edgetrace_redis_connected);

# --- the exposition
my $r = http_get($ngx->port, '/metrics');
is($r->{status}, 200, 'status handler answers');

# the page's headers (docs/nginx.md "edgetrace_status"), on HEAD as well
for my $case (['GET', $r],
              ['HEAD', http_get($ngx->port, '/metrics', method => 'HEAD')])
{
    my ($method, $h) = @$case;
    is($h->{headers}{'content-type'},
       'text/plain; version=0.0.4; charset=utf-8',
       "$method: the Prometheus text content type, with its charset");
    is_deeply([map { $_->[1] } grep { lc $_->[0] eq 'cache-control' }
                                    @{ $h->{header_list} }],
              ['no-store'], "$method: Cache-Control: no-store, once");
}

my %types = $r->{body} =~ /^# TYPE (\S+) (\S+)$/mg;
is($types{edgetrace_requests_total}, 'counter', 'requests_total: counter');
is($types{edgetrace_spans_queued}, 'gauge', 'spans_queued: gauge');
is($types{edgetrace_redis_connected}, 'gauge', 'redis_connected: gauge');
is($types{edgetrace_spans_dropped_total}, 'counter', 'dropped: counter');

my $m = metrics($ngx->port);
is_deeply([sort keys %$m], [sort @names], 'exactly the documented samples');
is($m->{$_}, 0, "$_ starts at 0")
    for grep { !/connected/ } @names;
wait_until(sub { metrics($ngx->port)->{edgetrace_redis_connected} == 1 }, 3);
is(metrics($ngx->port)->{edgetrace_redis_connected}, 1,
   'one worker connected');

# --- traffic: 5 proxied (2 spans each), 3 static (1 span), 2 unsampled
# proxied, 4 untraced
http_get($ngx->port, '/api/x') for 1 .. 5;
http_get($ngx->port, '/static') for 1 .. 3;
http_get($ngx->port, '/api/u',
         headers => [['traceparent', '00-' . new_trace_id() . '-'
                                     . new_span_id() . '-00']]) for 1 .. 2;
http_get($ngx->port, '/off') for 1 .. 4;

my $spans = 5 * 2 + 3;
ok(wait_until(sub {
       metrics($ngx->port)->{edgetrace_spans_exported_total} == $spans }, 3),
   'every span exported');
$m = metrics($ngx->port);
is($m->{edgetrace_requests_total}, 10, 'requests_total: traced requests');
is($m->{'edgetrace_requests_sampled_total{reason="head"}'}, 8,
   'requests_sampled_total{reason="head"}');
is($m->{'edgetrace_requests_sampled_total{reason="outcome"}'}, 0,
   'requests_sampled_total{reason="outcome"}: no edgetrace_keep');
is($m->{edgetrace_requests_rate_limited_total}, 0,
   'requests_rate_limited_total: no edgetrace_sample_limit');
is($m->{edgetrace_spans_total}, $spans, 'spans_total: client spans included');
is($m->{edgetrace_spans_exported_total}, $spans, 'spans_exported_total');
is($m->{'edgetrace_spans_dropped_total{reason="queue_full"}'}, 0,
   'nothing dropped (queue_full)');
is($m->{'edgetrace_spans_dropped_total{reason="redis_error"}'}, 0,
   'nothing dropped (redis_error)');
is($m->{edgetrace_spans_queued}, 0, 'nothing queued');
is($m->{edgetrace_redis_errors_total}, 0, 'no Redis errors');
is($m->{edgetrace_redis_reconnects_total}, 0, 'no reconnects');
is($m->{edgetrace_redis_connected}, 1, 'connected');
is(stream_len($redis->port), $spans, 'the stream has every exported span');
Edgetrace::Test::counters_match_redis($ngx, $redis, what => 'at rest',
                                      dropped => 0);

# --- the status handler in a traced location counts its own request
$r = http_get($ngx->port, '/metrics-traced');
is($r->{status}, 200, 'traced status location answers');
wait_until(sub { metrics($ngx->port)->{edgetrace_spans_exported_total}
                 == $spans + 1 }, 3);
$m = metrics($ngx->port);
is($m->{edgetrace_requests_total}, 11, 'traced status request counted');
is($m->{edgetrace_spans_total}, $spans + 1, 'a server span, no client span');

# --- only GET and HEAD
is(http_get($ngx->port, '/metrics', method => 'POST', body => 'x')->{status},
   405, 'POST: 405');
$r = http_get($ngx->port, '/metrics', method => 'HEAD');
is($r->{status}, 200, 'HEAD: 200');
is($r->{body}, '', 'HEAD: no body');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
