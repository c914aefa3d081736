#!/usr/bin/perl
# proxy_next_upstream: one client span for the whole exchange, one event per
# try, http.request.resend_count = tries - 1, the same id on every try.
# Each case reads the spans of its own request's trace, so that it runs
# alone as well (EDGETRACE_CASE=regex).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b2 = start_backend();
my $b = start_backend();
my ($bp, $b2p) = ($b->port, $b2->port);
my $ngx = start_nginx(redis => $redis, ports => { BACKEND2 => $b2p,
                                                  DEAD2 => dead_port() },
                      conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;
    add_header X-Trace-Id $edgetrace_trace_id always;

    # the dead peer first on every request: max_fails=0 never skips it
    upstream dead_then_live {
        server 127.0.0.1:%%DEAD%% max_fails=0;
        server 127.0.0.1:%%BACKEND%% backup;
    }
    upstream all_dead {
        server 127.0.0.1:%%DEAD%% max_fails=0;
        server 127.0.0.1:%%DEAD2%% max_fails=0;
    }
    # the backend sleeps past the read timeout; nginx's second server answers
    upstream slow_then_fast {
        server 127.0.0.1:%%BACKEND%% max_fails=0;
        server 127.0.0.1:%%PORT2%% backup;
    }
    upstream two_503 {
        server 127.0.0.1:%%BACKEND%% max_fails=0;
        server 127.0.0.1:%%BACKEND2%% backup;
    }

    server {
        listen 127.0.0.1:%%PORT%%;

        proxy_next_upstream error timeout http_503;

        location /retry {
            proxy_pass http://dead_then_live;
        }
        location /alldead {
            proxy_pass http://all_dead;
        }
        location /status/ {
            proxy_pass http://two_503;
        }
        location /slow/ {
            proxy_read_timeout 300ms;
            proxy_pass http://slow_then_fast;
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        edgetrace off;
        return 200 "second\n";
    }
EOF

my $dead = $ngx->ports->{DEAD};
my $dead2 = $ngx->ports->{DEAD2};

sub spans_of {
    my ($trace, $n) = @_;
    my @s = trace_spans($redis->port, $trace, count => $n, timeout => 3);
    return ((grep { $_->{kind} eq 'server' } @s),
            [grep { $_->{kind} eq 'client' } @s]);
}

case 'a dead peer, then a live one' => sub {
    $b->clear;
    my $r = http_get($ngx->port, '/retry/x');
    is($r->{status}, 200, 'retried to the live peer: 200');
    my @req = $b->wait_requests(1);
    is(scalar @req, 1, 'the live peer got the request once');
    my @tp = Edgetrace::Test::Backend->header_values($req[0], 'traceparent');
    is(scalar @tp, 1, 'one traceparent');
    my (undef, $trace, $up_span) = parse_traceparent($tp[0]);

    my ($server, $clients) = spans_of($trace, 2);
    is(scalar @$clients, 1, 'one client span for both tries');
    my $c = $clients->[0];
    is($c->{span_id}, $up_span, 'the live peer saw the client span id');
    is($c->{parent_id}, $server->{span_id}, 'child of the server span');
    like($c->{'event.0'},
         qr/^upstream\.try peer=127\.0\.0\.1:$dead status=- connect_ms=- (?#
            )header_ms=- response_ms=\d+$/, 'event.0: the dead peer');
    like($c->{'event.1'},
         qr/^upstream\.try peer=127\.0\.0\.1:$bp status=200 connect_ms=\d+ (?#
            )header_ms=\d+ response_ms=\d+$/, 'event.1: the live peer');
    ok(!exists $c->{'event.2'}, 'two events only');
    is($c->{'http.request.resend_count'}, '1', 'resend_count 1');
    is($c->{'server.address'}, '127.0.0.1', 'server.address: the last peer');
    is($c->{'server.port'}, $bp, 'server.port: the last peer');
    is($c->{'http.response.status_code'}, '200',
       'status code of the last try');
    is($c->{status}, 'unset', 'the exchange succeeded');
    ok(!exists $c->{'error.type'}, 'no error.type');
    is($c->{'url.full'}, "http://127.0.0.1:$bp/retry/x",
       'url.full: last peer');
    is($server->{status}, 'unset', 'server span unset');
};

case 'every peer dead' => sub {
    my $r = http_get($ngx->port, '/alldead/x');
    is($r->{status}, 502, 'all dead: 502');
    my ($server, $clients) = spans_of(response_trace($r), 2);
    is(scalar @$clients, 1, 'all dead: one client span');
    my $c = $clients->[0];
    like($c->{'event.0'}, qr/^upstream\.try peer=127\.0\.0\.1:$dead status=- /,
         'all dead: event.0');
    like($c->{'event.1'},
         qr/^upstream\.try peer=127\.0\.0\.1:$dead2 status=- /,
         'all dead: event.1');
    is($c->{'http.request.resend_count'}, '1', 'all dead: resend_count 1');
    is($c->{status}, 'error', 'all dead: client span error');
    is($c->{'error.type'}, 'no_response', 'all dead: error.type');
    ok(!exists $c->{'http.response.status_code'}, 'all dead: no status code');
    is($server->{status}, 'error', 'all dead: server span error');
};

case 'two peers answering 503: both saw the same bytes, the same id' => sub {
    $b->clear;
    $b2->clear;
    my $r = http_get($ngx->port, '/status/503');
    is($r->{status}, 503, 'two 503s: 503');
    my @r1 = $b->wait_requests(1);
    my @r2 = $b2->wait_requests(1);
    my @tp1 = Edgetrace::Test::Backend->header_values($r1[0], 'traceparent');
    my @tp2 = Edgetrace::Test::Backend->header_values($r2[0], 'traceparent');
    is(scalar @tp1, 1, 'first peer: one traceparent');
    is(scalar @tp2, 1, 'second peer: one traceparent');
    is($tp2[0], $tp1[0], 'both tries carry the same traceparent');
    my (undef, $trace, $up_span) = parse_traceparent($tp1[0]);
    my ($server, $clients) = spans_of($trace, 2);
    is(scalar @$clients, 1, '503s: one client span');
    my $c = $clients->[0];
    is($c->{span_id}, $up_span, '503s: that id is the client span\'s');
    like($c->{'event.0'},
         qr/^upstream\.try peer=127\.0\.0\.1:$bp status=503 (?#
            )connect_ms=\d+ header_ms=\d+ response_ms=\d+$/, '503s: event.0');
    like($c->{'event.1'},
         qr/^upstream\.try peer=127\.0\.0\.1:$b2p status=503 /,
         '503s: event.1');
    is($c->{'http.request.resend_count'}, '1', '503s: resend_count 1');
    is($c->{'error.type'}, '503', '503s: error.type');
    is($c->{'server.port'}, $b2p, '503s: the last peer');
};

case 'a try that timed out after 300 ms, then a quick one' => sub {
    # each try's times, and the client span holds both
    $b->clear;
    my $r = http_get($ngx->port, '/slow/1000');
    is($r->{status}, 200, 'timed out, retried: 200');
    is($r->{body}, "second\n", 'timed out, retried: the second peer answered');
    my @req = $b->wait_requests(1);
    my (undef, $trace, $up_span) = parse_traceparent(
        (Edgetrace::Test::Backend->header_values($req[0], 'traceparent'))[0]);
    my ($server, $clients) = spans_of($trace, 2);
    my $c = $clients->[0] || {};
    is($c->{span_id}, $up_span,
       'timed out: the slow peer saw the client span');
    is($c->{'http.request.resend_count'}, '1', 'timed out: resend_count 1');
    my $port2 = $ngx->ports->{PORT2};
    my ($t0, $t1) = map { try_event($c, $_) || {} } 0, 1;
    is($t0->{peer}, "127.0.0.1:$bp", 'timed out: event.0 the slow peer');
    is($t0->{status}, undef, 'timed out: event.0 no status (no response)');
    ok(defined $t0->{connect_ms} && !defined $t0->{header_ms},
       'timed out: event.0 connected, no header: ' . ($c->{'event.0'} // ''));
    ok(($t0->{response_ms} // 0) >= 299,
       'timed out: event.0 lasted the read timeout');
    is($t1->{peer}, "127.0.0.1:$port2", 'timed out: event.1 the second peer');
    is($t1->{status}, '200', 'timed out: event.1 status 200');
    ok(defined $t1->{header_ms}
       && $t1->{header_ms} <= ($t1->{response_ms} // -1)
       && $t1->{response_ms} < 299,
       'timed out: event.1 quick: ' . ($c->{'event.1'} // ''));
    my $ms = span_ms($c);
    ok($ms >= 299, sprintf('timed out: the client span holds the timeout '
                           . '(%.1f ms)', $ms));
    # nginx's cached clock may start a try's time a little before the span
    ok(($t0->{response_ms} // 0) + ($t1->{response_ms} // 0) <= $ms + 20,
       'timed out: the tries within the client span');
    ok(span_ms($server) >= $ms, 'timed out: the server span no shorter');
};

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
