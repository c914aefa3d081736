#!/usr/bin/perl
# $edgetrace_trace_id, $edgetrace_span_id, $edgetrace_parent_id,
# $edgetrace_sampled, $edgetrace_traceparent: from the rewrite phase on
# (return, add_header, log_format), matching the exported spans; empty when
# the request is not traced.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b2 = start_backend();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, ports => { BACKEND2 => $b2->port },
                      conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    log_format et '$edgetrace_trace_id $edgetrace_span_id '
                  '"$edgetrace_parent_id" $edgetrace_sampled '
                  '$edgetrace_traceparent';

    server {
        listen 127.0.0.1:%%PORT%%;

        location /ret {
            return 200 "t=$edgetrace_trace_id s=$edgetrace_span_id p=$edgetrace_parent_id x=$edgetrace_sampled tp=$edgetrace_traceparent\n";
        }
        location /proxy {
            add_header X-Trace-Id $edgetrace_trace_id;
            add_header X-Span-Id $edgetrace_span_id;
            add_header X-Parent-Id $edgetrace_parent_id;
            add_header X-Sampled $edgetrace_sampled;
            add_header X-Traceparent $edgetrace_traceparent;
            access_log %%PREFIX%%/access.log et;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /accel/ {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /second/ {
            add_header X-Traceparent $edgetrace_traceparent;
            proxy_pass http://127.0.0.1:%%BACKEND2%%;
        }
        location /off {
            edgetrace off;
            return 200 "t=$edgetrace_trace_id s=$edgetrace_span_id p=$edgetrace_parent_id x=$edgetrace_sampled tp=$edgetrace_traceparent\n";
        }
        location /off-proxy {
            edgetrace off;
            add_header X-Trace-Id $edgetrace_trace_id;
            add_header X-Traceparent $edgetrace_traceparent;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        return 200 "t=$edgetrace_trace_id s=$edgetrace_span_id\n";
    }
EOF

sub vars {
    my ($body) = @_;
    my %v = $body =~ /(\w+)=(\S*)/g;
    return \%v;
}

# --- return in the rewrite phase, a new root
my $r = http_get($ngx->port, '/ret');
is($r->{status}, 200, 'return: answered');
my $v = vars($r->{body});
like($v->{t}, qr/^[0-9a-f]{32}$/, 'trace id: 32 hex');
like($v->{s}, qr/^[0-9a-f]{16}$/, 'span id: 16 hex');
is($v->{p}, '', 'parent id: empty for a new root');
is($v->{x}, '1', 'sampled: 1');
like($v->{tp}, qr/^00-$v->{t}-[0-9a-f]{16}-[0-9a-f]{2}$/,
     'traceparent: our trace id');
my (undef, undef, $tp_span, $tp_flags) = parse_traceparent($v->{tp});
isnt($tp_span, $v->{s}, 'traceparent: the client span id, not the server\'s');
ok(hex($tp_flags) & 1, 'traceparent: sampled');
my @s = trace_spans($redis->port, $v->{t}, count => 1);
is(scalar @s, 1, 'the span of that trace is exported');
is($s[0]{span_id}, $v->{s}, 'span id matches the exported server span');

# --- return with an incoming parent
my $trace = new_trace_id();
my $parent = new_span_id();
$r = http_get($ngx->port, '/ret',
              headers => [['traceparent', "00-$trace-$parent-01"]]);
$v = vars($r->{body});
is($v->{t}, $trace, 'continued: trace id');
is($v->{p}, $parent, 'continued: parent id');
@s = trace_spans($redis->port, $trace, count => 1);
is($s[0]{span_id}, $v->{s}, 'continued: span id matches');
is($s[0]{parent_id}, $parent, 'continued: parent matches');

# --- unsampled parent
$trace = new_trace_id();
$r = http_get($ngx->port, '/ret',
              headers => [['traceparent', "00-$trace-$parent-00"]]);
$v = vars($r->{body});
is($v->{x}, '0', 'unsampled: sampled 0');
like($v->{tp}, qr/^00-$trace-[0-9a-f]{16}-00$/, 'unsampled: traceparent -00');

# --- add_header and log_format with a proxied request
$b->clear;
$trace = new_trace_id();
$r = http_get($ngx->port, '/proxy/x',
              headers => [['traceparent', "00-$trace-$parent-01"]]);
is($r->{status}, 200, 'proxy: answered');
my $h = $r->{headers};
is($h->{'x-trace-id'}, $trace, 'add_header: trace id');
is($h->{'x-parent-id'}, $parent, 'add_header: parent id');
is($h->{'x-sampled'}, '1', 'add_header: sampled');
my @req = $b->wait_requests(1);
my ($up) = Edgetrace::Test::Backend->header_values($req[0], 'traceparent');
is($h->{'x-traceparent'}, $up, 'add_header: the traceparent sent upstream');
@s = trace_spans($redis->port, $trace, count => 2);
my ($server) = grep { $_->{kind} eq 'server' } @s;
my ($client) = grep { $_->{kind} eq 'client' } @s;
is($h->{'x-span-id'}, $server->{span_id}, 'add_header: the server span id');
is((parse_traceparent($h->{'x-traceparent'}))[2], $client->{span_id},
   'traceparent variable: the client span id');

my $log = '';
wait_until(sub {
    open my $fh, '<', $ngx->prefix . '/access.log' or return;
    local $/;
    $log = <$fh>;
}, 3);
is($log, "$trace $server->{span_id} \"$parent\" 1 $up\n",
   'log_format: the same values');

# --- X-Accel-Redirect to a second upstream: the variable follows the
# exchange, as the id forwarded does
$b->clear;
$b2->clear;
$trace = new_trace_id();
$r = http_get($ngx->port, '/accel/second/y',
              headers => [['traceparent', "00-$trace-$parent-01"]]);
is($r->{status}, 200, 'redirected: answered');
my ($first) = $b->wait_requests(1);
my ($second) = $b2->wait_requests(1);
my ($up2) = Edgetrace::Test::Backend->header_values($second, 'traceparent');
is($r->{headers}{'x-traceparent'}, $up2,
   'redirected: the traceparent the second upstream received');
@s = trace_spans($redis->port, $trace, count => 3);
my ($client2) = grep { ($_->{'url.full'} // '')
                       eq 'http://127.0.0.1:' . $b2->port . '/second/y' } @s;
is((parse_traceparent($r->{headers}{'x-traceparent'} // ''))[2],
   $client2 && $client2->{span_id},
   'redirected: the second exchange\'s client span id');
isnt(upstream_parent($second), upstream_parent($first),
     'redirected: not the first exchange\'s id');

# --- not traced: empty
$r = http_get($ngx->port, '/off',
              headers => [['traceparent', "00-$trace-$parent-01"]]);
is($r->{body}, "t= s= p= x= tp=\n", 'edgetrace off: all empty');
$r = http_get($ngx->port, '/off-proxy');
ok(!exists $r->{headers}{'x-trace-id'}, 'edgetrace off: no X-Trace-Id');
ok(!exists $r->{headers}{'x-traceparent'}, 'edgetrace off: no X-Traceparent');

# --- a return at the server level (the server rewrite phase)
$r = http_get($ngx->ports->{PORT2}, '/anything');
is($r->{status}, 200, 'server-level return: answered');
# edgetrace on is inherited from http: the request is traced
$v = vars($r->{body});
like($v->{t}, qr/^[0-9a-f]{32}$/, 'server-level return: trace id');
@s = trace_spans($redis->port, $v->{t}, count => 1);
is(scalar @s, 1, 'server-level return: span exported');
is($s[0]{span_id}, $v->{s}, 'server-level return: span id matches');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
