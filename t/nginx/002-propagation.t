#!/usr/bin/perl
# Incoming W3C context: a sampled parent is continued, an unsampled one is
# forwarded unsampled and nothing is exported, edgetrace_sample decides new
# roots only.  Each case finds its spans by trace id and counts the
# requests it sent itself, so that it runs alone as well
# (EDGETRACE_CASE=regex).

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

# [requests traced, requests sampled]; with a former reading: since then
sub counts {
    my ($since) = @_;
    my $m = metrics($ngx->port);
    my @n = ($m->{edgetrace_requests_total},
             $m->{'edgetrace_requests_sampled_total{reason="head"}'});
    return $since ? [$n[0] - $since->[0], $n[1] - $since->[1]] : \@n;
}

# sends $path with a parent in a new trace ("$version-trace-parent-$flags");
# returns (the response, the trace id, the parent's span id)
sub with_parent {
    my ($path, $flags, $version) = @_;
    my ($trace, $parent) = (new_trace_id(), new_span_id());
    $b->clear;
    my $r = http_get($ngx->port, $path, headers => [[
                         'traceparent',
                         ($version // '00') . "-$trace-$parent-$flags"]]);
    return ($r, $trace, $parent);
}

case 'a sampled parent is continued' => sub {
    my $before = counts();
    my ($r, $trace, $parent) = with_parent('/api/c', '01');
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
    is($server->{parent_id}, $parent,
       'server span parent: the incoming span');
    is($client->{parent_id}, $server->{span_id}, 'client span parent: server');
    is($client->{span_id}, $up_span, 'upstream saw the client span id');
    is_deeply(counts($before), [1, 1], 'counters: traced and sampled');
};

case 'an unsampled parent: forwarded with flags 00, nothing exported' => sub {
    my $before = counts();
    my ($r, $trace, $parent) = with_parent('/api/u', '00');
    is($r->{status}, 200, 'unsampled request answered');
    my (undef, $up_trace, $up_span, $up_flags) = upstream_tp();
    is($up_trace, $trace, 'unsampled: same trace id upstream');
    isnt($up_span, $parent, 'unsampled: a new parent span id upstream');
    is($up_flags, '00', 'unsampled: flags 00 upstream');
    my @all = barrier($redis->port, $ngx->port, '/barrier');
    ok(!grep({ $_->{trace_id} eq $trace } @all),
       'unsampled: nothing exported');
    is_deeply(counts($before), [2, 1],
              'counters: traced, not sampled (+ the barrier, sampled)');
};

case 'edgetrace_sample 0: new roots are not sampled, but still forwarded'
    => sub {
    my $before = counts();
    $b->clear;
    my $r = http_get($ngx->port, '/never/x');
    is($r->{status}, 200, 'sample 0: answered');
    my (undef, $up_trace, $up_span, $up_flags) = upstream_tp();
    ok($up_trace, 'sample 0: context forwarded');
    is(hex($up_flags) & 1, 0, "sample 0: sampled flag clear ($up_flags)");
    my @all = barrier($redis->port, $ngx->port, '/barrier');
    ok(!grep({ $_->{trace_id} eq $up_trace } @all),
       'sample 0: nothing exported');
    is_deeply(counts($before), [2, 1],
              'counters: traced, not sampled (+ the barrier, sampled)');
};

case 'edgetrace_sample 0: an incoming sampled parent wins' => sub {
    my $before = counts();
    my ($r, $trace, $parent) = with_parent('/never/p', '01');
    is($r->{status}, 200, 'sample 0 with a sampled parent: answered');
    my (undef, $up_trace, $up_span, $up_flags) = upstream_tp();
    is($up_flags, '01', 'sampled parent wins: flags 01 upstream');
    my @s = trace_spans($redis->port, $trace, count => 2);
    is(scalar @s, 2, 'sampled parent wins: spans exported');
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    is($server->{parent_id}, $parent, 'sampled parent wins: parent kept');
    is_deeply(counts($before), [1, 1], 'counters: traced and sampled');
};

case 'a future version is read by the version-00 rules (W3C)' => sub {
    my $before = counts();
    my ($r, $trace, $parent) = with_parent('/api/f', '01-what-ever', '01');
    is($r->{status}, 200, 'future version answered');
    my ($v, $up_trace, $up_span) = upstream_tp();
    is($v, '00', 'we write version 00');
    is($up_trace, $trace, 'future version: trace continued');
    my @s = trace_spans($redis->port, $trace, count => 2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    is($server->{parent_id}, $parent, 'future version: parent kept');
    is_deeply(counts($before), [1, 1], 'counters: traced and sampled');
};

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
