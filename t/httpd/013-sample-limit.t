#!/usr/bin/perl
# EdgeTraceSampleLimit (docs/httpd.md), under each MPM: a burst of new
# roots at 100/s over 2 s exports at most 100 + 100 a second, over every
# child and thread sharing the bucket; parents that arrive sampled pass; a
# limited request is unsampled (the backend gets sampled=0,
# EDGETRACE_SAMPLING is "limited") and EdgeTraceKeep still keeps it by its
# outcome; the counters add up.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);

my $b = start_backend();

my $conf = <<'EOF';
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTraceQueueSize 16m
EdgeTrace On
EdgeTraceSampleLimit %%LIMIT%%/s
EdgeTraceKeep status=5xx
Header always set X-Trace-Id "%{EDGETRACE_TRACE_ID}e"
Header always set X-Sampling "%{EDGETRACE_SAMPLING}e"

ProxyPass /api/ http://127.0.0.1:%%BACKEND%%/

<Location /edgetrace-status>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>
EOF

(my $c100 = $conf) =~ s/%%LIMIT%%/100/;
(my $c1 = $conf) =~ s/%%LIMIT%%/1/;

my @names = ('edgetrace_requests_total',
             'edgetrace_requests_sampled_total{reason="head"}',
             'edgetrace_requests_sampled_total{reason="outcome"}',
             'edgetrace_requests_rate_limited_total',
             'edgetrace_spans_total');

sub since {
    my ($port, $m0) = @_;
    my $m = metrics($port, '/edgetrace-status');
    return { map { $_ => $m->{$_} - ($m0 ? $m0->{$_} : 0) } @names };
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

for my $mpm (mpms()) {
    my $redis = start_redis();
    my $redis1 = start_redis();
    my $h = start_httpd(mpm => $mpm, redis => $redis, conf => $c100,
                        files => { ok => "ok\n", barrier => "ok\n" });
    my $one = start_httpd(mpm => $mpm, redis => $redis1, conf => $c1,
                          files => { ok => "ok\n", barrier => "ok\n" });

    case "$mpm: a burst of new roots at 100/s: at most 100 + 100 a second"
        => sub {
        my $m0 = since($h->port);
        my ($n, $secs, $out) = wrk($h->port, '/ok', 2);
        ok($n >= 1000, "wrk sent $n new roots in ${secs}s") or diag($out);
        my $d = since($h->port, $m0);
        my $head = $d->{'edgetrace_requests_sampled_total{reason="head"}'};
        my $limited = $d->{edgetrace_requests_rate_limited_total};
        my $bound = int(100 * ($secs + 1)) + 1;
        ok($head <= $bound, "head-sampled $head <= $bound (100 + 100/s "
                            . sprintf('over %.1f s)', $secs));
        ok($head >= 100, "head-sampled $head >= 100 (the bucket's burst)");
        my $total = $d->{edgetrace_requests_total};
        ok($total >= $n && $total <= $n + 8,
           "every request traced: $total (wrk: $n completed)");
        is($head + $limited, $total, "head $head + rate-limited $limited = "
                                     . "requests $total (all new roots)");
        is($d->{'edgetrace_requests_sampled_total{reason="outcome"}'}, 0,
           'nothing kept by outcome (200s)');
        my @s = grep { $_->{kind} eq 'server'
                       && ($_->{'url.path'} // '') eq '/ok' }
                barrier($redis->port, $h->port);
        is(scalar @s, $head, 'the stream holds the head-sampled ones only');
        is(scalar(grep { $_->{'edgetrace.sampling'} ne 'head' } @s), 0,
           'each with edgetrace.sampling=head');
    };

    case "$mpm: parents that arrive sampled pass the limit" => sub {
        wrk($h->port, '/ok', 1);
        my $m0 = since($h->port);
        my $n = 400;
        for (1 .. $n) {
            http_get($h->port, '/ok',
                     headers => [['traceparent',
                                  new_traceparent(new_trace_id())]]);
        }
        my $d = since($h->port, $m0);
        is($d->{'edgetrace_requests_sampled_total{reason="head"}'}, $n,
           "every one of $n head-sampled, above the limit");
        is($d->{edgetrace_requests_rate_limited_total}, 0,
           'none rate-limited');
    };

    case "$mpm: a limited request: unsampled backend, kept by its outcome"
        => sub {
        my (@how, %flags);
        $b->clear;
        for my $i (1 .. 6) {
            my $r = http_get($one->port,
                             $i % 2 ? '/api/ok' : '/api/status/503');
            push @how, [$r->{headers}{'x-sampling'}, response_trace($r),
                        $r->{status}];
        }
        for my $req ($b->wait_requests(6)) {
            my @tp = parse_traceparent(
                (Edgetrace::Test::Backend->header_values($req,
                                                         'traceparent'))[0]);
            $flags{ $tp[1] } = hex($tp[3]) & 1 if @tp;
        }
        my @limited = grep { $_->[0] eq 'limited' } @how;
        my @head = grep { $_->[0] eq 'head' } @how;
        ok(@limited >= 4, scalar(@limited) . ' of 6 limited at 1/s');
        is(@limited + @head, 6, 'each head or limited');
        is(scalar(grep { ($flags{ $_->[1] } // -1) != 0 } @limited), 0,
           'limited: the backend got sampled=0');
        is(scalar(grep { ($flags{ $_->[1] } // -1) != 1 } @head), 0,
           'head: the backend got sampled=1');
        for my $l (@limited) {
            my ($how, $trace, $status) = @$l;
            if ($status == 503) {
                my @s = trace_spans($redis1->port, $trace, count => 2,
                                    settle => 0.1);
                is(scalar @s, 2, "limited 503: kept, server and client");
                is(scalar(grep { $_->{'edgetrace.sampling'} eq 'outcome' }
                          @s), 2, 'limited 503: edgetrace.sampling=outcome');
            } else {
                barrier($redis1->port, $one->port);
                my @s = trace_spans($redis1->port, $trace, count => 1,
                                    timeout => 0);
                is(scalar @s, 0, 'limited 200: nothing exported');
            }
        }

        # a sampled parent, with the bucket empty
        http_get($one->port, '/ok') for 1 .. 2;
        my $trace = new_trace_id();
        my $r = http_get($one->port, '/ok',
                         headers => [['traceparent',
                                      new_traceparent($trace)]]);
        is($r->{headers}{'x-sampling'}, 'head', 'a sampled parent: head');
        my @s = trace_spans($redis1->port, $trace, count => 1);
        is(scalar @s, 1, 'a sampled parent: exported');
    };

    case "$mpm: counters add up" => sub {
        for my $c ([$h, $redis], [$one, $redis1]) {
            my ($s, $r) = @$c;
            my $m = metrics($s->port, '/edgetrace-status');
            ok($m->{'edgetrace_requests_sampled_total{reason="head"}'}
               + $m->{edgetrace_requests_rate_limited_total}
               <= $m->{edgetrace_requests_total},
               'head + rate_limited <= requests');
            Edgetrace::Test::counters_match_redis($s, $r,
                                                  path => '/edgetrace-status',
                                                  dropped => 0,
                                                  timeout => 30);
        }
    };

    is(scalar $h->crashes, 0, "$mpm: no child crashed");
    $h->stop;
    $one->stop;
}

done_testing();
