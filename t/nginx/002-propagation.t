#!/usr/bin/perl
# Incoming W3C context: a sampled parent is continued, an unsampled one is
# forwarded unsampled and nothing is exported, edgetrace_sample decides new
# roots only.

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
        location /never {
            edgetrace_sample 0;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location = /barrier {
            return 204;
        }
        location /metrics {
            edgetrace off;
            edgetrace_status;
        }
    }
EOF

sub upstream_tp {
    my @req = $b->wait_requests(1);
    my @tp = Edgetrace::Test::Backend->header_values($req[-1], 'traceparent');
    is(scalar @tp, 1, 'one traceparent upstream');
    return parse_traceparent($tp[0]);
}

# everything exported so far is in the stream once the barrier's span is
sub barrier {
    my $before = stream_len($redis->port);
    http_get($ngx->port, '/barrier');
    my @all = stream_entries($redis->port, undef, count => $before + 1);
    is($all[-1]{name}, 'GET /barrier', 'barrier span exported last');
    return @all;
}

# --- a sampled parent is continued
my $trace = new_trace_id();
my $parent = new_span_id();
$b->clear;
my $r = http_get($ngx->port, '/api/c',
                 headers => [['traceparent', "00-$trace-$parent-01"]]);
is($r->{status}, 200, 'answered');
my (undef, $up_trace, $up_span, $up_flags) = upstream_tp();
is($up_trace, $trace, 'upstream: the same trace id');
isnt($up_span, $parent, 'upstream: a new parent span id');
is($up_flags, '01', 'upstream: the parent\'s flags');

my @s = trace_spans($redis->port, $trace, count => 2);
my ($server) = grep { $_->{kind} eq 'server' } @s;
my ($client) = grep { $_->{kind} eq 'client' } @s;
is(scalar @s, 2, 'server and client span exported');
is($server->{trace_id}, $trace, 'server span continues the trace');
is($server->{parent_id}, $parent, 'server span parent: the incoming span');
is($client->{parent_id}, $server->{span_id}, 'client span parent: server');
is($client->{span_id}, $up_span, 'upstream saw the client span id');

# --- an unsampled parent: forwarded with flags 00, nothing exported
$trace = new_trace_id();
$parent = new_span_id();
$b->clear;
$r = http_get($ngx->port, '/api/u',
              headers => [['traceparent', "00-$trace-$parent-00"]]);
is($r->{status}, 200, 'unsampled request answered');
(undef, $up_trace, $up_span, $up_flags) = upstream_tp();
is($up_trace, $trace, 'unsampled: same trace id upstream');
isnt($up_span, $parent, 'unsampled: a new parent span id upstream');
is($up_flags, '00', 'unsampled: flags 00 upstream');
my @all = barrier();
ok(!grep({ $_->{trace_id} eq $trace } @all), 'unsampled: nothing exported');

# --- edgetrace_sample 0: new roots are not sampled, but still forwarded
$b->clear;
$r = http_get($ngx->port, '/never/x');
is($r->{status}, 200, 'sample 0: answered');
(undef, $up_trace, $up_span, $up_flags) = upstream_tp();
ok($up_trace, 'sample 0: context forwarded');
is(hex($up_flags) & 1, 0, "sample 0: sampled flag clear ($up_flags)");
@all = barrier();
ok(!grep({ $_->{trace_id} eq $up_trace } @all), 'sample 0: nothing exported');

# ... but an incoming sampled parent wins
$trace = new_trace_id();
$parent = new_span_id();
$b->clear;
$r = http_get($ngx->port, '/never/p',
              headers => [['traceparent', "00-$trace-$parent-01"]]);
is($r->{status}, 200, 'sample 0 with a sampled parent: answered');
(undef, $up_trace, $up_span, $up_flags) = upstream_tp();
is($up_flags, '01', 'sampled parent wins: flags 01 upstream');
@s = trace_spans($redis->port, $trace, count => 2);
is(scalar @s, 2, 'sampled parent wins: spans exported');
($server) = grep { $_->{kind} eq 'server' } @s;
is($server->{parent_id}, $parent, 'sampled parent wins: parent kept');

# --- a future version is read by the version-00 rules (W3C)
$trace = new_trace_id();
$parent = new_span_id();
$b->clear;
$r = http_get($ngx->port, '/api/f',
              headers => [['traceparent', "01-$trace-$parent-01-what-ever"]]);
is($r->{status}, 200, 'future version answered');
(my $v, $up_trace, $up_span) = upstream_tp();
is($v, '00', 'we write version 00');
is($up_trace, $trace, 'future version: trace continued');
@s = trace_spans($redis->port, $trace, count => 2);
($server) = grep { $_->{kind} eq 'server' } @s;
is($server->{parent_id}, $parent, 'future version: parent kept');

# --- counters agree: 5 requests traced, 3 sampled (+ 2 barriers, sampled)
my $m = metrics($ngx->port);
is($m->{edgetrace_requests_total}, 7, 'requests_total');
is($m->{edgetrace_requests_sampled_total}, 5, 'requests_sampled_total');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
