#!/usr/bin/perl
# mod_edgetrace propagation, under each MPM: W3C continued (flags,
# tracestate, a duplicate tracestate key dropped), every invalid traceparent
# restarts the trace and never reaches the backend, b3 and b3multi, formats
# in their configured order with mixed and disagreeing inputs, the four
# context modes, and EdgeTraceContext chosen per client inside <If>.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);

my $T = '4bf92f3577b34da6a3ce929d0e0e4736';
my $S = '00f067aa0ba902b7';
my $B = '463ac35c9f6413ad48485a3953bb6124';
my $BS = 'a2fb4a1d1a96d312';

my @invalid = (
    ['uppercase trace id',   '00-' . uc($T) . "-$S-01"],
    ['zero trace id',        '00-' . ('0' x 32) . "-$S-01"],
    ['zero span id',         "00-$T-" . ('0' x 16) . '-01'],
    ['version ff',           "ff-$T-$S-01"],
    ['00 too long',          "00-$T-$S-01-extra"],
    ['too short',            "00-$T-$S-1"],
    ['non-hex flags',        "00-$T-$S-0g"],
    ['garbage',              'hello world'],
    ['percent-encoded CRLF', "00-$T-$S-01%0d%0aX-Evil: 1"],
    ['binary',               "00-$T-$S-\x80\xff"],
    ['oversized',            "00-$T-$S-01" . ('x' x 6000)],
);

my $redis = start_redis();
my $b = start_backend();

for my $mpm (mpms()) {
    my $h = start_httpd(mpm => $mpm, redis => $redis, conf => <<'EOF');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTrace On

ProxyPass /w3c http://127.0.0.1:%%BACKEND%%/w3c
ProxyPass /b3 http://127.0.0.1:%%BACKEND%%/b3
ProxyPass /multi http://127.0.0.1:%%BACKEND%%/multi
ProxyPass /b3first http://127.0.0.1:%%BACKEND%%/b3first
ProxyPass /w3cfirst http://127.0.0.1:%%BACKEND%%/w3cfirst
ProxyPass /extract http://127.0.0.1:%%BACKEND%%/extract
ProxyPass /inject http://127.0.0.1:%%BACKEND%%/inject
ProxyPass /ignore http://127.0.0.1:%%BACKEND%%/ignore
ProxyPass /perclient http://127.0.0.1:%%BACKEND%%/perclient
ProxyPass /never http://127.0.0.1:%%BACKEND%%/never

<Location /b3>
    EdgeTracePropagation b3
</Location>
<Location /multi>
    EdgeTracePropagation b3multi
</Location>
<Location /b3first>
    EdgeTracePropagation b3 w3c
</Location>
<Location /w3cfirst>
    EdgeTracePropagation w3c b3 b3multi
</Location>
<Location /extract>
    EdgeTraceContext extract
</Location>
<Location /inject>
    EdgeTraceContext inject
</Location>
<Location /ignore>
    EdgeTraceContext ignore
</Location>
<Location /perclient>
    EdgeTraceContext inject
    <If "%{HTTP:X-Internal} == 'yes'">
        EdgeTraceContext propagate
    </If>
</Location>
<Location /never>
    EdgeTraceSample 0
</Location>
EOF

    # --- W3C continued: parent, flags, tracestate
    my ($up, @s) = send_get($h, '/w3c', 1,
                            ['traceparent', "00-$T-$S-01"],
                            ['tracestate', 'vendor=a,other=b'],
                            ['tracestate', 'third=c']);
    my ($v, $trace, $span, $flags) = parse_traceparent(one($up, 'traceparent'));
    is($trace, $T, "$mpm: the trace id continues");
    is($flags, '01', "$mpm: the parent's flags");
    is(one($up, 'tracestate'), 'vendor=a,other=b,third=c',
       "$mpm: tracestate lines joined and forwarded once");
    my ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv->{parent_id}, $S, "$mpm: the server span's parent");
    is($srv->{tracestate}, 'vendor=a,other=b,third=c',
       "$mpm: tracestate on the span");

    # --- a duplicate key: its first member and the rest of the list kept,
    # on one line and on two
    for my $case (['one line', ['vendor=a,other=b,vendor=c,third=d']],
                  ['two lines', ['vendor=a,other=b', 'vendor=c,third=d']]) {
        my ($what, $lines) = @$case;
        ($up, @s) = send_get($h, '/w3c', 1,
                             ['traceparent', "00-$T-$S-01"],
                             map { ['tracestate', $_] } @$lines);
        is(one($up, 'tracestate'), 'vendor=a,other=b,third=d',
           "$mpm: duplicate key on $what: the first kept, forwarded");
        ($srv) = grep { $_->{kind} eq 'server' } @s;
        is($srv->{tracestate}, 'vendor=a,other=b,third=d',
           "$mpm: duplicate key on $what: on the span");
    }

    # --- an unsampled parent: forwarded unsampled, nothing exported
    ($up) = send_get($h, '/w3c', 0, ['traceparent', "00-$B-$S-00"]);
    ($v, $trace, $span, $flags) = parse_traceparent(one($up, 'traceparent'));
    is("$trace $flags", "$B 00", "$mpm: unsampled context forwarded");

    # --- invalid: restart, the client's value never reaches the backend
    for my $case (@invalid) {
        my ($what, $value) = @$case;
        ($up, @s) = send_get($h, '/w3c', 1, ['traceparent', $value],
                             ['tracestate', 'k=v']);
        my @tp = Edgetrace::Test::Backend->header_values($up, 'traceparent');
        is(scalar @tp, 1, "$mpm: $what: one traceparent upstream");
        ($v, $trace, $span, $flags) = parse_traceparent($tp[0] // '');
        ok($trace && $trace ne $T, "$mpm: $what: a new trace");
        is($flags, '03', "$mpm: $what: sampled, random");
        is_deeply([Edgetrace::Test::Backend->header_values($up,
                   'tracestate')], [], "$mpm: $what: tracestate dropped");
        ($srv) = grep { $_->{kind} eq 'server' } @s;
        ok($srv && !exists $srv->{parent_id}, "$mpm: $what: a root span");
    }

    # --- b3
    ($up, @s) = send_get($h, '/b3', 1, ['b3', "$B-$BS-1"],
                         ['X-B3-ParentSpanId', $S], ['traceparent',
                          "00-$T-$S-01"]);
    like(one($up, 'b3'), qr/^$B-[0-9a-f]{16}-1$/, "$mpm: b3 continued");
    is(one($up, 'traceparent'), "00-$T-$S-01",
       "$mpm: b3 only: traceparent left alone");
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv->{parent_id}, $BS, "$mpm: b3 parent");

    ($up) = send_get($h, '/b3', 0, ['b3', '0']);
    like(one($up, 'b3'), qr/^[0-9a-f]{32}-[0-9a-f]{16}-0$/,
         "$mpm: b3 deny: a new trace, forwarded unsampled");

    ($up, @s) = send_get($h, '/b3', 1, ['b3', "a3ce929d0e0e4736-$BS-1"]);
    like(one($up, 'b3'), qr/^0000000000000000a3ce929d0e0e4736-/,
         "$mpm: 64-bit b3 trace id padded");

    # --- b3multi: stale parent and flags removed
    ($up, @s) = send_get($h, '/multi', 1, ['X-B3-TraceId', $B],
                         ['X-B3-SpanId', $BS], ['X-B3-ParentSpanId', $S],
                         ['X-B3-Sampled', '1'], ['X-B3-Flags', '1']);
    is(one($up, 'x-b3-traceid'), $B, "$mpm: X-B3-TraceId");
    my ($cl) = grep { $_->{kind} eq 'client' } @s;
    is(one($up, 'x-b3-spanid'), $cl->{span_id},
       "$mpm: X-B3-SpanId is the client span");
    is(one($up, 'x-b3-sampled'), '1', "$mpm: X-B3-Sampled");
    is_deeply([Edgetrace::Test::Backend->header_values($up,
               'x-b3-parentspanid')], [], "$mpm: stale ParentSpanId gone");
    is_deeply([Edgetrace::Test::Backend->header_values($up, 'x-b3-flags')],
              [], "$mpm: X-B3-Flags gone");

    # --- mixed: both valid and disagreeing, the first listed wins
    ($up, @s) = send_get($h, '/b3first', 1, ['traceparent', "00-$T-$S-01"],
                         ['b3', "$B-$BS-1"]);
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv->{trace_id}, $B, "$mpm: b3 listed first wins");
    ($v, $trace) = parse_traceparent(one($up, 'traceparent'));
    is($trace, $B, "$mpm: both written with the same ids");
    like(one($up, 'b3'), qr/^$B-/, "$mpm: b3 written too");

    # the first listed invalid, the second valid
    ($up, @s) = send_get($h, '/w3cfirst', 1, ['traceparent', 'garbage'],
                         ['b3', "$B-$BS-1"]);
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv->{trace_id}, $B, "$mpm: invalid w3c, valid b3: b3");
    is(one($up, 'x-b3-traceid'), $B, "$mpm: all three formats written");

    # --- context modes
    ($up, @s) = send_get($h, '/extract', 1, ['traceparent', "00-$T-$S-01"]);
    is(one($up, 'traceparent'), "00-$T-$S-01",
       "$mpm: extract: the client's header as it was");
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv->{parent_id}, $S, "$mpm: extract: continued");

    ($up, @s) = send_get($h, '/inject', 1, ['traceparent', "00-$T-$S-01"]);
    ($v, $trace) = parse_traceparent(one($up, 'traceparent'));
    ok($trace ne $T, "$mpm: inject: a new trace written");
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    ok(!exists $srv->{parent_id}, "$mpm: inject: a root");

    ($up) = send_get($h, '/ignore', 1, ['traceparent', "00-$T-$S-01"]);
    is(one($up, 'traceparent'), "00-$T-$S-01",
       "$mpm: ignore: header untouched");

    ($up) = send_get($h, '/perclient', 1, ['traceparent', "00-$T-$S-01"]);
    ($v, $trace) = parse_traceparent(one($up, 'traceparent'));
    ok($trace ne $T, "$mpm: <If> outsider: inject");
    ($up) = send_get($h, '/perclient', 1, ['traceparent', "00-$T-$S-01"],
                     ['X-Internal', 'yes']);
    ($v, $trace) = parse_traceparent(one($up, 'traceparent'));
    is($trace, $T, "$mpm: <If> insider: propagate");

    # --- EdgeTraceSample 0: new roots unsampled, parents still decide
    ($up) = send_get($h, '/never', 0);
    ($v, $trace, $span, $flags) = parse_traceparent(one($up, 'traceparent'));
    is($flags, '02', "$mpm: sample 0: unsampled root");
    ($up) = send_get($h, '/never', 1, ['traceparent', "00-$T-$S-01"]);
    ($v, $trace, $span, $flags) = parse_traceparent(one($up, 'traceparent'));
    is($flags, '01', "$mpm: sample 0: a sampled parent wins");

    $h->stop;
    is_deeply([$h->crashes], [], "$mpm: no crash");
}

# one request; returns the backend's view and, when $spans, the two spans
sub send_get {
    my ($h, $path, $spans, @headers) = @_;
    my ($r, @e) = traced_request($redis, $b, $h->port, $path, $spans ? 2 : 0,
                                 headers => \@headers, timeout => 3);
    die "$path: status $r->{status}\n" unless $r->{status} == 200;
    my ($up) = $b->wait_requests(1);
    return ($up, $spans ? @e : ());
}

sub one {
    my ($up, $name) = @_;
    my @v = Edgetrace::Test::Backend->header_values($up, $name);
    return @v == 1 ? $v[0] : join('|', 'COUNT=' . scalar(@v), @v);
}

done_testing();
