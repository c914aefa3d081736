#!/usr/bin/perl
# Internal redirects belong to the request that started them: try_files to
# a named location, error_page, rewrite ... last, X-Accel-Redirect give one
# server span, named after the final location, with the original url.path.
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
my $ngx = start_nginx(redis => $redis, ports => { BACKEND2 => $b2->port },
                      conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;
        root %%PREFIX%%/html;

        location /files/ {
            try_files $uri @app;
        }
        location @app {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /missing/ {
            error_page 404 = /fallback;
            return 404;
        }
        location = /fallback {
            return 200 "fallback\n";
        }
        location /upstream-error/ {
            proxy_intercept_errors on;
            error_page 503 = @sorry;
            proxy_pass http://127.0.0.1:%%BACKEND%%/status/;
        }
        location @sorry {
            return 200 "sorry\n";
        }
        location /old/ {
            rewrite ^/old/(.*)$ /new/$1 last;
        }
        location /new/ {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /accel/ {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /second/ {
            proxy_pass http://127.0.0.1:%%BACKEND2%%/slow/;
        }
        location /protected/ {
            internal;
            return 200 "protected\n";
        }
    }
EOF

# sends a request in a trace of its own (a sampled parent: a redirect that
# decided again would continue it too, and show here); waits for its
# spans, and a moment more for any extra; returns (response, server spans,
# client spans) of that trace
sub run {
    my ($path, $nspans) = @_;
    $b->clear;
    $b2->clear;
    my $t = new_trace_id();
    my $r = http_get($ngx->port, $path,
                     headers => [['traceparent', new_traceparent($t)]]);
    my @s = trace_spans($redis->port, $t, count => $nspans, settle => 0.2);
    return ($r, [grep { $_->{kind} eq 'server' } @s],
            [grep { $_->{kind} eq 'client' } @s]);
}

case 'try_files to a named location' => sub {
    my ($r, $servers, $clients) = run('/files/nofile?x=1', 2);
    is($r->{status}, 200, 'try_files: answered by @app');
    is(scalar @$servers, 1, 'try_files: one server span');
    is($servers->[0]{name}, 'GET @app', 'try_files: named after @app');
    is($servers->[0]{'url.path'}, '/files/nofile',
       'try_files: original url.path');
    is($servers->[0]{'url.query'}, 'x=1', 'try_files: original query');
    is(scalar @$clients, 1, 'try_files: one client span');
    is($clients->[0]{parent_id}, $servers->[0]{span_id},
       'try_files: client span child of the server span');
    my @req = $b->requests;
    is((parse_traceparent((Edgetrace::Test::Backend->header_values(
            $req[0], 'traceparent'))[0]))[2], $clients->[0]{span_id},
       'try_files: upstream saw the client span id');
};

case 'error_page to a location' => sub {
    my ($r, $servers, $clients) = run('/missing/thing', 1);
    is($r->{status}, 200, 'error_page: answered by /fallback');
    is($r->{body}, "fallback\n", 'error_page: the fallback body');
    is(scalar @$servers, 1, 'error_page: one server span');
    is($servers->[0]{name}, 'GET /fallback', 'error_page: final location');
    is($servers->[0]{'url.path'}, '/missing/thing',
       'error_page: original path');
    is($servers->[0]{'http.response.status_code'}, '200',
       'error_page: the status sent');
};

case 'error_page after an upstream error, to a named location' => sub {
    my ($r, $servers, $clients) = run('/upstream-error/503', 2);
    is($r->{status}, 200, 'intercepted: answered by @sorry');
    is(scalar @$servers, 1, 'intercepted: one server span');
    is($servers->[0]{name}, 'GET @sorry', 'intercepted: named after @sorry');
    is($servers->[0]{'url.path'}, '/upstream-error/503',
       'intercepted: original path');
    is($servers->[0]{status}, 'unset', 'intercepted: the client got a 200');
    is(scalar @$clients, 1, 'intercepted: one client span');
    is($clients->[0]{'http.response.status_code'}, '503',
       'intercepted: the client span has the upstream\'s 503');
    is($clients->[0]{status}, 'error', 'intercepted: client span error');
};

case 'rewrite ... last' => sub {
    my ($r, $servers, $clients) = run('/old/page', 2);
    is($r->{status}, 200, 'rewrite: answered');
    is(scalar @$servers, 1, 'rewrite: one server span');
    is($servers->[0]{name}, 'GET /new/',
       'rewrite: named after the final location');
    is($servers->[0]{'url.path'}, '/old/page', 'rewrite: url.path as sent');
    my @req = $b->requests;
    is($req[0]{uri}, '/new/page', 'rewrite: the upstream got the new URI');
    is($clients->[0]{'url.full'}, 'http://127.0.0.1:' . $b->port . '/new/page',
       'rewrite: url.full has the new URI');
};

case 'X-Accel-Redirect from the upstream' => sub {
    my ($r, $servers, $clients) = run('/accel/protected/doc', 2);
    is($r->{status}, 200, 'X-Accel-Redirect: answered');
    is($r->{body}, "protected\n", 'X-Accel-Redirect: the internal location');
    is(scalar @$servers, 1, 'X-Accel-Redirect: one server span');
    is($servers->[0]{name}, 'GET /protected/',
       'X-Accel-Redirect: final location');
    is($servers->[0]{'url.path'}, '/accel/protected/doc',
       'X-Accel-Redirect: original url.path');
    is(scalar @$clients, 1, 'X-Accel-Redirect: one client span');
    ok(!exists $clients->[0]{'http.request.resend_count'},
       'X-Accel-Redirect: one try, no resend');
};

# each request an upstream received carries the id of the client span
# that describes it, the one whose url.full is that request's; returns
# those ids
sub tie_upstreams {
    my ($what, $clients, @backends) = @_;
    my %by_url = map { $_->{'url.full'} => $_ } @$clients;
    my @ids;
    for my $be (@backends) {
        for my $q ($be->requests) {
            my $url = 'http://127.0.0.1:' . $be->port . $q->{uri};
            my $cl = $by_url{$url};
            ok($cl, "$what: a client span for $url");
            is(upstream_parent($q), $cl && $cl->{span_id},
               "$what: $url received that client span's id");
            push @ids, upstream_parent($q) // '';
        }
    }
    return @ids;
}

case 'X-Accel-Redirect to an upstream again' => sub {
    # each upstream request carries the id of its own exported client span
    my ($r, $servers, $clients) = run('/accel/new/x', 3);
    is($r->{status}, 200, 'X-Accel-Redirect to a proxy: answered');
    is(scalar @$servers, 1, 'X-Accel-Redirect to a proxy: one server span');
    my @req = $b->requests;
    is(scalar @req, 2, 'X-Accel-Redirect to a proxy: two upstream requests');
    for my $q (@req) {
        my @tp = Edgetrace::Test::Backend->header_values($q, 'traceparent');
        is(scalar @tp, 1, "$q->{uri}: one traceparent");
        my (undef, $t) = parse_traceparent($tp[0]);
        is($t, $servers->[0]{trace_id}, "$q->{uri}: the trace");
    }
    ok(!grep({ exists $_->{'http.request.resend_count'} } @$clients),
       'X-Accel-Redirect to a proxy: not a retry');
    is(scalar @$clients, 2, 'X-Accel-Redirect to a proxy: a client span each');
    isnt($clients->[0]{span_id}, $clients->[1]{span_id},
         'X-Accel-Redirect to a proxy: distinct client span ids');
    is(scalar(grep { $_->{parent_id} eq $servers->[0]{span_id} } @$clients), 2,
       'X-Accel-Redirect to a proxy: both children of the server span');
    my @ids = tie_upstreams('X-Accel-Redirect to a proxy', $clients, $b);
    isnt($ids[0], $ids[1], 'X-Accel-Redirect to a proxy: the second upstream '
         . 'did not receive the first one\'s id');
};

case 'X-Accel-Redirect to another upstream, which takes 300 ms' => sub {
    # the first exchange ends where the second starts
    my ($r, $servers, $clients) = run('/accel/second/300', 3);
    is($r->{status}, 200, 'to another upstream: answered');
    is(scalar @$servers, 1, 'to another upstream: one server span');
    is(scalar @$clients, 2, 'to another upstream: a client span each');
    is(scalar($b->requests), 1,
       'to another upstream: the first got one request');
    is(scalar($b2->requests), 1, 'to another upstream: the second got one');
    is(($b2->requests)[0]{uri}, '/slow/300',
       'to another upstream: the redirected URI');
    my @ids = tie_upstreams('to another upstream', $clients, $b, $b2);
    isnt($ids[0], $ids[1], 'to another upstream: the second upstream did not '
         . 'receive the first one\'s id');
    my ($c1, $c2) = map { my $port = $_->port;
                          (grep { $_->{'url.full'} =~ /:$port\// }
                                @$clients)[0] || {} } $b, $b2;
    ok(($c1->{end_ns} // 0) <= ($c2->{start_ns} // 0),
       'to another upstream: the first exchange ended before the second '
       . 'began');
    ok(span_ms($c2) >= 299,
       sprintf('to another upstream: the second lasts the backend\'s 300 ms '
               . '(%.1f ms)', span_ms($c2)));
    ok(span_ms($servers->[0]) >= span_ms($c1) + span_ms($c2),
       'to another upstream: the server span holds both');
};

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
