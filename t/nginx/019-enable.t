#!/usr/bin/perl
# edgetrace $var: traced when the value is non-empty and not "0"; the
# decision is taken once, in the first location; with tracing enabled
# nowhere, no worker opens a Redis connection.
# Each case finds its spans by their trace ids, so that it runs alone as
# well (EDGETRACE_CASE=regex).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;

    map $arg_trace $do_trace {
        default  $arg_trace;
    }

    server {
        listen 127.0.0.1:%%PORT%%;

        location /var {
            edgetrace $do_trace;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /off-first {
            edgetrace off;
            rewrite ^ /on-second last;
        }
        location /on-second {
            edgetrace on;
            return 200 "second\n";
        }
        location /on-first {
            edgetrace on;
            rewrite ^ /off-second last;
        }
        location /off-second {
            edgetrace off;
            return 200 "second\n";
        }
        location = /barrier {
            edgetrace on;
            return 204;
        }
        location = /metrics {
            edgetrace_status;
        }
    }
EOF

my $T = new_trace_id();
my $S = new_span_id();
my $client_tp = "00-$T-$S-01";

sub traced {
    my ($query) = @_;
    $b->clear;
    my $r = http_get($ngx->port, "/var$query",
                     headers => [['traceparent', $client_tp]]);
    is($r->{status}, 200, "$query: answered");
    my @req = $b->wait_requests(1);
    my @tp = Edgetrace::Test::Backend->header_values($req[0], 'traceparent');
    # traced: ours (propagate) replaced the client's; not traced: untouched
    return $tp[0] ne $client_tp;
}

case 'edgetrace $var: traced when non-empty and not "0"' => sub {
    my $before = metrics($ngx->port)->{edgetrace_requests_total};
    ok(traced('?trace=1'), 'trace=1: traced');
    ok(traced('?trace=yes'), 'trace=yes: traced');
    ok(traced('?trace=00'), 'trace=00: traced (not exactly "0")');
    ok(!traced('?trace=0'), 'trace=0: not traced');
    ok(!traced(''), 'empty: not traced');
    ok(!traced('?trace='), 'trace=: not traced');

    my $m = metrics($ngx->port);
    is($m->{edgetrace_requests_total} - $before, 3, 'three requests traced');
};

case 'decided once, in the first location' => sub {
    # each request in a trace of its own, found by its trace id
    my $t = new_trace_id();
    my $r = http_get($ngx->port, '/off-first',
                     headers => [['traceparent', new_traceparent($t)]]);
    is($r->{body}, "second\n", 'off then on: answered by the second location');
    my @all = barrier($redis->port, $ngx->port, '/barrier');
    ok(!grep({ $_->{trace_id} eq $t || $_->{name} eq 'GET /on-second' }
             @all), 'off then on: not traced');

    $t = new_trace_id();
    $r = http_get($ngx->port, '/on-first',
                  headers => [['traceparent', new_traceparent($t)]]);
    is($r->{body}, "second\n", 'on then off: answered by the second location');
    my @s = trace_spans($redis->port, $t, settle => 0.2);
    is(scalar @s, 1, 'on then off: traced, one span');
    is($s[0]{name}, 'GET /off-second', 'on then off: the final location name');
};

my $quiet = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;

    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location = /metrics {
            edgetrace_status;
        }
    }
EOF

case 'tracing enabled nowhere: no Redis connection at all' => sub {
    my $rc = redis($redis->port);
    my $clients_before = () = $rc->client_list =~ /^id=/mg;
    $b->clear;
    my $r = http_get($quiet->port, '/x',
                     headers => [['traceparent', $client_tp]]);
    is($r->{status}, 200, 'enabled nowhere: answered');
    my @req = $b->wait_requests(1);
    is_deeply([Edgetrace::Test::Backend->header_values($req[0],
                                                       'traceparent')],
              [$client_tp], 'enabled nowhere: headers untouched');
    Time::HiRes::sleep(0.5);
    my $clients = () = $rc->client_list =~ /^id=/mg;
    is($clients, $clients_before, 'enabled nowhere: no new Redis connection');
    my $m = metrics($quiet->port);
    is($m->{edgetrace_redis_connected}, 0, 'enabled nowhere: not connected');
    is($m->{edgetrace_requests_total}, 0, 'enabled nowhere: nothing traced');
};

is(scalar $ngx->crashes, 0, 'no worker crashed');
is(scalar $quiet->crashes, 0, 'no worker crashed (second nginx)');

done_testing;
