package Edgetrace::Keep;

# The cases nginx's edgetrace_keep / edgetrace_sample_limit and httpd's
# EdgeTraceKeep / EdgeTraceSampleLimit share (docs/nginx.md,
# docs/httpd.md): the same requests, the same checks, on either server.
#
#   my ($trace, $parent, $headers) = unsampled();
#   my @tp = upstream_flags($backend_request);   # parse_traceparent()
#   head_ratio_case(port => P, redis => $redis, backend => $b,
#                   metrics => '/status', api => '/api/');
#   my $m0 = sampling_counters($port, $path);    # then with $m0: the deltas
#   my ($n, $secs, $out) = wrk_burst($port, '/ok', 2);
#   limit_burst_case(port => P, redis => $redis, metrics => '/status');
#   limited_case(port => P, redis => $redis, backend => $b, api => '/api/');

use strict;
use warnings;

use Exporter 'import';
use Test::More;
use Time::HiRes ();

use Edgetrace::Test qw(:all);

our @EXPORT_OK = qw(unsampled upstream_flags head_ratio_case
                    sampling_counters wrk_burst limit_burst_case
                    limited_case);
our %EXPORT_TAGS = (all => \@EXPORT_OK);


# an unsampled parent: the head decision is no, whatever the ratio
sub unsampled {
    my ($trace, $parent) = (new_trace_id(), new_span_id());
    return ($trace, $parent, [['traceparent', "00-$trace-$parent-00"]]);
}

# the traceparent a backend request carried, as parse_traceparent() gives
sub upstream_flags {
    my ($req) = @_;
    return parse_traceparent(
        (Edgetrace::Test::Backend->header_values($req, 'traceparent'))[0]);
}

# 1% head sampling with status=5xx and slower=200ms: every 5xx and slow
# request kept with its server and client span, the 200s at about the
# head ratio, the backend told sampled=0 unless head-sampled.  "api" is
# the path prefix proxied to the backend's root.
sub head_ratio_case {
    my (%o) = @_;
    my ($port, $redis, $b, $api) = @o{qw(port redis backend api)};
    my $m0 = metrics($port, $o{metrics});
    $b->clear;
    my %traces;
    my $n = $ENV{KEEP_N} || 3000;
    my ($slow, $bad, $ok) = ("${api}slow/250", "${api}status/503",
                             "${api}ok");
    for my $i (1 .. $n) {
        my $path = $i % 100 == 0 ? $slow : $i % 10 == 0 ? $bad : $ok;
        my $r = http_get($port, $path);
        push @{ $traces{$path} }, response_trace($r);
    }
    my $m1 = metrics($port, $o{metrics});
    my %d = map { $_ => $m1->{$_} - $m0->{$_} }
            ('edgetrace_requests_total',
             'edgetrace_requests_sampled_total{reason="head"}',
             'edgetrace_requests_sampled_total{reason="outcome"}');
    my $head = $d{'edgetrace_requests_sampled_total{reason="head"}'};
    my $outcome = $d{'edgetrace_requests_sampled_total{reason="outcome"}'};
    is($d{edgetrace_requests_total}, $n, "$n requests traced");

    # 1% of 3000: 30 expected; below 5 or above 80 has a chance under 1e-9
    ok($head >= 5 && $head <= 80, "head-sampled $head of $n (about 30)");

    barrier($redis->port, $port);
    my %spans;
    for my $e (stream_entries($redis->port)) {
        push @{ $spans{ $e->{trace_id} } }, $e;
    }
    my $how = sub { ($spans{ $_[0] }[0]{'edgetrace.sampling'}) // '' };

    # every 5xx and slow one: its two spans, by outcome unless by head
    my @kept = (@{ $traces{$slow} }, @{ $traces{$bad} });
    my @bad;
    for my $t (@kept) {
        my %k = map { $_->{kind} => $_ } @{ $spans{$t} || [] };
        push @bad, $t unless @{ $spans{$t} || [] } == 2
            && $k{server} && $k{client}
            && $k{server}{'edgetrace.sampling'}
               eq $k{client}{'edgetrace.sampling'};
    }
    is(scalar @bad, 0, scalar(@kept) . ' 5xx and slow requests: each with '
                       . 'its server and client span') or diag("@bad[0 .. 4]");
    my $by_outcome = grep { $how->($_) eq 'outcome' } @kept;
    my $by_head = grep { $how->($_) eq 'head' } @kept;
    is($by_outcome + $by_head, scalar @kept, 'each by outcome or head');
    is($by_outcome, $outcome, "$outcome kept by outcome, as counted");

    # the 200s: exported only when head-sampled
    my $ok_exported = grep { $spans{$_} } @{ $traces{$ok} };
    my $ok_head = grep { $how->($_) eq 'head' } @{ $traces{$ok} };
    is($ok_exported, $ok_head, "200s: $ok_exported exported, all by head");
    is($ok_head + $by_head, $head, 'the head-sampled ones, as counted');

    # the backend got the sampled flag exactly for the head-sampled ones
    my %flags;
    for my $req ($b->requests) {
        my @tp = upstream_flags($req);
        $flags{ $tp[1] } = hex($tp[3]) & 1 if @tp;
    }
    my @wrong = grep { ($flags{$_} // -1) != ($how->($_) eq 'head' ? 1 : 0) }
                map { @$_ } values %traces;
    is(scalar @wrong, 0, 'the backend got sampled=0 unless head-sampled, '
                         . 'kept ones included')
        or diag(join ' ', map { "$_: " . ($flags{$_} // 'none') . ' '
                                . $how->($_) } @wrong[0 .. 4]);
}


my @COUNTERS = ('edgetrace_requests_total',
                'edgetrace_requests_sampled_total{reason="head"}',
                'edgetrace_requests_sampled_total{reason="outcome"}',
                'edgetrace_requests_rate_limited_total',
                'edgetrace_spans_total');

# the sampling counters, or their growth since $m0
sub sampling_counters {
    my ($port, $path, $m0) = @_;
    my $m = metrics($port, $path);
    return { map { $_ => $m->{$_} - ($m0 ? $m0->{$_} : 0) } @COUNTERS };
}

# wrk for $secs seconds: (requests completed, seconds taken, its output)
sub wrk_burst {
    my ($port, $path, $secs) = @_;
    my $t0 = Time::HiRes::time();
    my $out = `wrk -t2 -c8 -d${secs}s http://127.0.0.1:$port$path 2>&1`;
    my $elapsed = Time::HiRes::time() - $t0;
    my ($n) = $out =~ /(\d+) requests in/;
    return ($n // 0, $elapsed, $out);
}

# a burst of new roots to "/ok" at a limit of 100/s over 2 s: at most
# 100 + 100 a second head-sampled, the rest rate-limited, the stream
# holding the head-sampled ones only
sub limit_burst_case {
    my (%o) = @_;
    my ($port, $redis) = @o{qw(port redis)};
    my $m0 = sampling_counters($port, $o{metrics});
    my ($n, $secs, $out) = wrk_burst($port, '/ok', 2);
    ok($n >= 1000, "wrk sent $n new roots in ${secs}s") or diag($out);
    my $d = sampling_counters($port, $o{metrics}, $m0);
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
    my @s = grep { $_->{kind} eq 'server'
                   && ($_->{'url.path'} // '') eq '/ok' }
            barrier($redis->port, $port);
    is(scalar @s, $head, 'the stream holds the head-sampled ones only');
    is(scalar(grep { $_->{'edgetrace.sampling'} ne 'head' } @s), 0,
       'each with edgetrace.sampling=head');
}

# at a limit of 1/s, requests in a row: the first takes the token, the
# others are limited (X-Sampling: limited), their backend told sampled=0,
# a limited 503 kept by its outcome (status=5xx), a limited 200 not
# exported; then a sampled parent, with the bucket empty, passes
sub limited_case {
    my (%o) = @_;
    my ($port, $redis, $b, $api) = @o{qw(port redis backend api)};
    my (@how, %flags);
    $b->clear;
    for my $i (1 .. 6) {
        my $r = http_get($port, $i % 2 ? "${api}ok" : "${api}status/503");
        push @how, [$r->{headers}{'x-sampling'}, response_trace($r),
                    $r->{status}];
    }
    for my $req ($b->wait_requests(6)) {
        my @tp = upstream_flags($req);
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
            my @s = trace_spans($redis->port, $trace, count => 2,
                                settle => 0.1);
            is(scalar @s, 2, "limited 503 $trace: kept, server and client");
            is(scalar(grep { $_->{'edgetrace.sampling'} eq 'outcome' } @s), 2,
               "limited 503 $trace: edgetrace.sampling=outcome");
        } else {
            barrier($redis->port, $port);
            my @s = trace_spans($redis->port, $trace, count => 1,
                                timeout => 0);
            is(scalar @s, 0, "limited 200 $trace: nothing exported");
        }
    }

    http_get($port, '/ok') for 1 .. 2;
    my $trace = new_trace_id();
    my $r = http_get($port, '/ok',
                     headers => [['traceparent', new_traceparent($trace)]]);
    is($r->{headers}{'x-sampling'}, 'head', 'a sampled parent: head');
    my @s = trace_spans($redis->port, $trace, count => 1);
    is(scalar @s, 1, 'a sampled parent: exported');
}


1;
