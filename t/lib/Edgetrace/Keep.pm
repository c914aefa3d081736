package Edgetrace::Keep;

# The cases nginx's edgetrace_keep / edgetrace_sample_limit and httpd's
# EdgeTraceKeep / EdgeTraceSampleLimit share (docs/nginx.md,
# docs/httpd.md): the same requests, the same checks, on either server.
#
#   my ($trace, $parent, $headers) = unsampled();
#   my @tp = upstream_flags($backend_request);   # parse_traceparent()
#   kept_5xx_case(port => P, redis => $redis, backend => $b, api => '/api/');
#   slow_case(port => P, redis => $redis, backend => $b, api => '/api/');
#   ok(kept_or_not($redis, P, $trace, $parent, $kept, $what));
#   sampling_log_case(port => P, log => $file, api => '/api/');
#   keep_counters_case(server => $s, redis => $redis, metrics => '/status');
#   head_ratio_case(port => P, redis => $redis, backend => $b,
#                   metrics => '/status', api => '/api/');
#   my $m0 = sampling_counters($port, $path);    # then with $m0: the deltas
#   my ($n, $secs, $out) = wrk_burst($port, '/ok', 2);
#   limit_burst_case(port => P, redis => $redis, metrics => '/status');
#   limited_case(port => P, redis => $redis, backend => $b, api => '/api/');
#   sampled_parents_case(port => P, metrics => '/status');
#   limit_counters_case(servers => [[$s, $redis], ...], metrics => '/status');

use strict;
use warnings;

use Exporter 'import';
use Test::More;
use Time::HiRes ();

use Edgetrace::Test qw(:all);

our @EXPORT_OK = qw(unsampled upstream_flags none_exported kept_5xx_case
                    slow_case kept_or_not sampling_log_case
                    keep_counters_case head_ratio_case
                    sampling_counters wrk_burst limit_burst_case
                    limited_case sampled_parents_case
                    limit_counters_case);
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

# none of the trace's spans, once a later trace's are in the stream
sub none_exported {
    my ($redis, $port, $trace) = @_;
    barrier($redis->port, $port);
    my @s = trace_spans($redis->port, $trace, count => 1, timeout => 0);
    return !@s;
}

# a 5xx of an unsampled parent: kept with its client span, its ids, its
# upstream told sampled=0 (rule status=5xx)
sub kept_5xx_case {
    my (%o) = @_;
    my ($port, $redis, $b, $api) = @o{qw(port redis backend api)};
    for my $code (503, 500, 599) {
        my $path = "${api}status/$code";
        my ($trace, $parent, $h) = unsampled();
        $b->clear;
        my $r = http_get($port, $path, headers => $h);
        is($r->{status}, $code, "$path: answered");
        my @s = trace_spans($redis->port, $trace, count => 2, settle => 0.2);
        is(scalar @s, 2, "$path: its server and client spans");
        my ($server) = grep { $_->{kind} eq 'server' } @s;
        my ($client) = grep { $_->{kind} eq 'client' } @s;
        is($server->{'edgetrace.sampling'}, 'outcome',
           "$path: server span edgetrace.sampling=outcome");
        is($client->{'edgetrace.sampling'}, 'outcome',
           "$path: client span edgetrace.sampling=outcome");
        is($server->{parent_id}, $parent, "$path: the parent it carried");
        is($client->{parent_id}, $server->{span_id},
           "$path: the client span's parent is the server span");
        is($server->{'http.response.status_code'}, $code, "$path: status");
        is($client->{'http.response.status_code'}, $code,
           "$path: the upstream's status");
        my $ev = try_event($client, 0);
        ok($ev && defined $ev->{header_ms},
           "$path: the try's header time, as for a sampled request");
        my @req = $b->wait_requests(1);
        my @tp = upstream_flags($req[0]);
        is($tp[1], $trace, "$path: upstream got the trace id");
        is($tp[2], $client->{span_id},
           "$path: upstream's parent is the client span");
        is($tp[3], '00', "$path: upstream got sampled=0");
    }
}

# a slow request kept (rule slower=200ms), a quick one and a 404 not
sub slow_case {
    my (%o) = @_;
    my ($port, $redis, $b, $api) = @o{qw(port redis backend api)};
    my ($trace, $parent, $h) = unsampled();
    $b->clear;
    my $r = http_get($port, "${api}slow/300", headers => $h);
    is($r->{status}, 200, 'slow: answered');
    my @s = trace_spans($redis->port, $trace, count => 2, settle => 0.2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    my ($client) = grep { $_->{kind} eq 'client' } @s;
    ok($server && $client, 'slow: server and client spans');
    is($server->{'edgetrace.sampling'}, 'outcome', 'slow: outcome');
    is($client->{'edgetrace.sampling'}, 'outcome', 'slow: client outcome');
    ok(span_ms($server) >= 290, sprintf('slow: it lasted %.0f ms',
                                        span_ms($server)));
    ok(span_ms($client) >= 290 && $client->{end_ns} <= $server->{end_ns},
       'slow: the client span timed when the upstream answered');
    is($server->{parent_id}, $parent, 'slow: the parent it carried');
    my @req = $b->wait_requests(1);
    is((upstream_flags($req[0]))[3], '00', 'slow: upstream got sampled=0');

    ($trace, $parent, $h) = unsampled();
    $r = http_get($port, "${api}ok", headers => $h);
    is($r->{status}, 200, 'quick: answered');
    ok(none_exported($redis, $port, $trace), 'quick: nothing exported');

    ($trace, $parent, $h) = unsampled();
    $r = http_get($port, "${api}status/404", headers => $h);
    is($r->{status}, 404, 'a 404: answered');
    ok(none_exported($redis, $port, $trace),
       'a 404 (no rule): nothing exported');
}

# the trace of a request to $port: its server span kept by outcome with
# the parent it carried ($kept), or nothing exported
sub kept_or_not {
    my ($redis, $port, $trace, $parent, $kept, $what) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    unless ($kept) {
        return ok(none_exported($redis, $port, $trace),
                  "$what: nothing exported");
    }
    my @s = grep { $_->{kind} eq 'server' }
            trace_spans($redis->port, $trace, count => 1);
    is(scalar @s, 1, "$what: exported");
    is($s[0]{'edgetrace.sampling'}, 'outcome', "$what: outcome");
    is($s[0]{parent_id}, $parent, "$what: the parent it carried");
}

# how a request came to be exported, in an access log whose lines are
# 'TRACE_ID "SAMPLING" STATUS'
sub sampling_log_case {
    my (%o) = @_;
    my ($port, $api) = @o{qw(port api)};
    my ($t1, undef, $h1) = unsampled();
    http_get($port, "${api}status/502", headers => $h1);
    my ($t2, undef, $h2) = unsampled();
    http_get($port, "${api}ok", headers => $h2);
    my $t3 = new_trace_id();
    http_get($port, "${api}ok",
             headers => [['traceparent', new_traceparent($t3)]]);
    my %log;
    wait_until(sub {
        %log = map { /^(\S+) "(\S*)" (\d+)/ ? ($1 => $2) : () }
               split /\n/, Edgetrace::Test::_slurp($o{log});
        exists $log{$t3};
    }, 3);
    is($log{$t1}, 'outcome', 'a kept 502: outcome');
    is($log{$t2}, '', 'an unsampled 200: empty');
    is($log{$t3}, 'head', 'a sampled parent: head');
}

# the counters of a server with outcome rules and no limit, at the end
sub keep_counters_case {
    my (%o) = @_;
    my $m = metrics($o{server}->port, $o{metrics});
    ok($m->{'edgetrace_requests_sampled_total{reason="outcome"}'} > 0,
       'requests_sampled_total{reason="outcome"} counted');
    is($m->{edgetrace_requests_rate_limited_total}, 0,
       'no limit: nothing rate-limited');
    ok($m->{'edgetrace_requests_sampled_total{reason="head"}'}
       + $m->{'edgetrace_requests_sampled_total{reason="outcome"}'}
       <= $m->{edgetrace_requests_total}, 'head + outcome <= requests');
    Edgetrace::Test::counters_match_redis($o{server}, $o{redis},
                                          path => $o{metrics}, dropped => 0);
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

    # the 200s: exported when head-sampled, or when a moment of load made
    # one really slower than 200 ms
    my $ok_exported = grep { $spans{$_} } @{ $traces{$ok} };
    my $ok_head = grep { $how->($_) eq 'head' } @{ $traces{$ok} };
    my @ok_slow = grep { $how->($_) eq 'outcome' } @{ $traces{$ok} };
    is(scalar(grep { my ($s) = grep { $_->{kind} eq 'server' }
                                    @{ $spans{$_} };
                     span_ms($s) <= 200 } @ok_slow), 0,
       '200s kept by outcome (' . scalar(@ok_slow) . '): each slower than '
       . '200 ms');
    is($ok_exported, $ok_head + @ok_slow,
       "200s: $ok_exported exported, $ok_head by head");
    is($by_outcome + @ok_slow, $outcome, "$outcome kept by outcome, as "
                                         . 'counted');
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

# the sampling counters (or their growth since $m0) once the requests wrk
# left in flight are done
sub settled_counters {
    my ($port, $path, $m0) = @_;
    my ($m, $last) = (sampling_counters($port, $path, $m0), -1);
    for (1 .. 50) {
        last if $m->{edgetrace_requests_total} == $last;
        $last = $m->{edgetrace_requests_total};
        Time::HiRes::sleep(0.1);
        $m = sampling_counters($port, $path, $m0);
    }
    return $m;
}

# wrk for $secs seconds: (requests completed, seconds taken, its output)
sub wrk_burst {
    my ($port, $path, $secs) = @_;
    my $t0 = Time::HiRes::time();
    my $out = `wrk -t2 -c8 -d${secs}s http://127.0.0.1:$port$path 2>&1`
              // "wrk did not run: $! (scripts/deps test installs it)";
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
    my $m0 = settled_counters($port, $o{metrics});
    my ($n, $secs, $out) = wrk_burst($port, '/ok', 2);
    ok($n >= 1000, "wrk sent $n new roots in ${secs}s") or diag($out);
    my $d = settled_counters($port, $o{metrics}, $m0);
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


# with the bucket empty, more parents that arrive sampled than the limit
# lets by: every one head-sampled, none rate-limited
sub sampled_parents_case {
    my (%o) = @_;
    my $port = $o{port};
    wrk_burst($port, '/ok', 1);
    my $m0 = settled_counters($port, $o{metrics});
    my $n = 400;
    my %how;
    for (1 .. $n) {
        my $r = http_get($port, '/ok',
                         headers => [['traceparent',
                                      new_traceparent(new_trace_id())]]);
        $how{ $r->{headers}{'x-sampling'} // '' }++;
    }
    is_deeply(\%how, { head => $n }, "X-Sampling: head, $n times");
    my $d = sampling_counters($port, $o{metrics}, $m0);
    is($d->{'edgetrace_requests_sampled_total{reason="head"}'}, $n,
       "every one of $n head-sampled, above the limit");
    is($d->{edgetrace_requests_rate_limited_total}, 0, 'none rate-limited');
}

# the counters of servers with a limit, at the end: [server, its Redis]
sub limit_counters_case {
    my (%o) = @_;
    for my $c (@{ $o{servers} }) {
        my ($s, $r) = @$c;
        my $m = metrics($s->port, $o{metrics});
        ok($m->{'edgetrace_requests_sampled_total{reason="head"}'}
           + $m->{edgetrace_requests_rate_limited_total}
           <= $m->{edgetrace_requests_total},
           'head + rate_limited <= requests');
        Edgetrace::Test::counters_match_redis($s, $r, path => $o{metrics},
                                              dropped => 0, timeout => 30);
    }
}


1;
