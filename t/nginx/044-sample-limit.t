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

my @names = ('edgetrace_requests_total',
             'edgetrace_requests_sampled_total{reason="head"}',
             'edgetrace_requests_sampled_total{reason="outcome"}',
             'edgetrace_requests_rate_limited_total',
             'edgetrace_spans_total');

sub since {
    my ($port, $m0) = @_;
    my $m = metrics($port, '/status');
    return { map { $_ => $m->{$_} - ($m0 ? $m0->{$_} : 0) } @names };
}

# the counters once the requests wrk left in flight are done
sub settled {
    my ($port) = @_;
    my ($m, $last) = (since($port), -1);
    for (1 .. 50) {
        last if $m->{edgetrace_requests_total} == $last;
        $last = $m->{edgetrace_requests_total};
        Time::HiRes::sleep(0.1);
        $m = since($port);
    }
    return $m;
}

sub server_spans {
    my ($port) = @_;
    my @e = barrier($redis->port, $port);
    return grep { $_->{kind} eq 'server' } @e;
}

sub wrk {
    my ($port, $path, $secs, @headers) = @_;
    my $h = join ' ', map { "-H '$_'" } @headers;
    my $t0 = Time::HiRes::time();
    my $out = `wrk -t2 -c8 -d${secs}s $h http://127.0.0.1:$port$path 2>&1`;
    my $elapsed = Time::HiRes::time() - $t0;
    my ($n) = $out =~ /(\d+) requests in/;
    return ($n // 0, $elapsed, $out);
}

case 'a burst of new roots at 100/s: at most 100 + 100 a second' => sub {
    my $m0 = settled($ngx->port);
    my ($n, $secs, $out) = wrk($ngx->port, '/ok', 2);
    ok($n >= 1000, "wrk sent $n new roots in ${secs}s") or diag($out);
    settled($ngx->port);
    my $d = since($ngx->port, $m0);
    my $head = $d->{'edgetrace_requests_sampled_total{reason="head"}'};
    my $limited = $d->{edgetrace_requests_rate_limited_total};
    my $bound = int(100 * ($secs + 1)) + 1;
    ok($head <= $bound, "head-sampled $head <= $bound (100 + 100/s over "
                        . sprintf('%.1f s)', $secs));
    ok($head >= 100, "head-sampled $head >= 100 (the bucket's burst)");
    my $total = $d->{edgetrace_requests_total};
    # wrk does not count the requests in flight as it stops
    ok($total >= $n && $total <= $n + 8,
       "every request traced: $total (wrk: $n completed)");
    is($head + $limited, $total, "head $head + rate-limited $limited = "
                                 . "requests $total (all new roots)");
    is($d->{'edgetrace_requests_sampled_total{reason="outcome"}'}, 0,
       'nothing kept by outcome (200s)');
    my @s = grep { ($_->{'url.path'} // '') eq '/ok' }
            server_spans($ngx->port);
    is(scalar @s, $head, 'the stream holds the head-sampled ones only');
    is(scalar(grep { $_->{'edgetrace.sampling'} ne 'head' } @s), 0,
       'each with edgetrace.sampling=head');
};

case 'parents that arrive sampled pass the limit' => sub {
    # the bucket empty, then more sampled parents than it would let by
    wrk($ngx->port, '/ok', 1);
    my $m0 = settled($ngx->port);
    my $n = 400;
    my $t0 = Time::HiRes::time();
    my %how;
    for (1 .. $n) {
        my $r = http_get($ngx->port, '/ok',
                         headers => [['traceparent',
                                      new_traceparent(new_trace_id())]]);
        $how{ $r->{headers}{'x-sampling'} // '' }++;
    }
    is_deeply(\%how, { head => $n }, "\$edgetrace_sampling: head, $n times");
    my $secs = Time::HiRes::time() - $t0;
    my $d = since($ngx->port, $m0);
    ok(1, sprintf('%d sampled parents in %.1f s', $n, $secs));
    is($d->{'edgetrace_requests_sampled_total{reason="head"}'}, $n,
       'every one head-sampled, above the limit');
    is($d->{edgetrace_requests_rate_limited_total}, 0, 'none rate-limited');
};

case 'a limited request: unsampled upstream, kept by its outcome' => sub {
    # 1/s: of requests in a row, the first takes the token
    my (@how, @up);
    $b->clear;
    for my $i (1 .. 6) {
        my $r = http_get($one->port, $i % 2 ? '/api/ok' : '/api/status/503');
        push @how, [$r->{headers}{'x-sampling'}, response_trace($r),
                    $r->{status}];
    }
    my @req = $b->wait_requests(6);
    my %flags;
    for my $req (@req) {
        my @tp = parse_traceparent(
            (Edgetrace::Test::Backend->header_values($req, 'traceparent'))[0]);
        $flags{ $tp[1] } = hex($tp[3]) & 1 if @tp;
    }
    my @limited = grep { $_->[0] eq 'limited' } @how;
    my @head = grep { $_->[0] eq 'head' } @how;
    ok(@limited >= 4, scalar(@limited) . ' of 6 limited at 1/s');
    is(@limited + @head, 6, 'each head or limited');
    is(scalar(grep { ($flags{ $_->[1] } // -1) != 0 } @limited), 0,
       'limited: the upstream got sampled=0');
    is(scalar(grep { ($flags{ $_->[1] } // -1) != 1 } @head), 0,
       'head: the upstream got sampled=1');
    for my $l (@limited) {
        my ($how, $trace, $status) = @$l;
        my @s = trace_spans($redis1->port, $trace,
                            count => $status == 503 ? 2 : 1,
                            timeout => $status == 503 ? 3 : 0, settle => 0.1);
        if ($status == 503) {
            is(scalar @s, 2, "limited 503 $trace: kept, server and client");
            is(scalar(grep { $_->{'edgetrace.sampling'} eq 'outcome' } @s), 2,
               "limited 503 $trace: edgetrace.sampling=outcome");
        } else {
            barrier($redis1->port, $one->port);
            @s = trace_spans($redis1->port, $trace, count => 1, timeout => 0);
            is(scalar @s, 0, "limited 200 $trace: nothing exported");
        }
    }

    # a sampled parent, with the bucket empty
    http_get($one->port, '/ok') for 1 .. 2;
    my $trace = new_trace_id();
    my $r = http_get($one->port, '/ok',
                     headers => [['traceparent', new_traceparent($trace)]]);
    is($r->{headers}{'x-sampling'}, 'head', 'a sampled parent: head');
    my @s = trace_spans($redis1->port, $trace, count => 1);
    is(scalar @s, 1, 'a sampled parent: exported');
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
