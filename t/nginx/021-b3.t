#!/usr/bin/perl
# B3: the single "b3" header and X-B3-*, read in the configured order, all
# configured formats written with the same ids, stale headers of the
# configured formats replaced, others left alone.

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

        location /b3 {
            edgetrace_propagation b3;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /multi {
            edgetrace_propagation b3multi;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /all {
            edgetrace_propagation w3c b3 b3multi;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /b3first {
            edgetrace_propagation b3 w3c;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /never {
            edgetrace_propagation b3;
            edgetrace_sample 0;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location = /barrier {
            return 204;
        }
    }
EOF

my $T = '80f198ee56343ba864fe8b2a57d3eff7';
my $T64 = 'a3ce929d0e0e4736';
my $S = 'e457b5a2e4d86bd1';
my $P = '05e3ac9a4f6e3b90';

sub upstream {
    my @req = $b->wait_requests(1);
    my %h;
    for my $n ('traceparent', 'tracestate', 'b3', 'x-b3-traceid',
               'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled',
               'x-b3-flags')
    {
        $h{$n} = [Edgetrace::Test::Backend->header_values($req[-1], $n)];
    }
    return \%h;
}

sub send_get {
    my ($path, @headers) = @_;
    $b->clear;
    my $r = http_get($ngx->port, $path, headers => \@headers);
    is($r->{status}, 200, "$path: answered");
    return upstream();
}

sub spans_of {
    my ($trace) = @_;
    my @s = trace_spans($redis->port, $trace, count => 2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    my ($client) = grep { $_->{kind} eq 'client' } @s;
    return ($server, $client);
}

# --- b3 single: continued, written back with the client span id
my $h = send_get('/b3/a', ['b3', "$T-$S-1-$P"]);
is(scalar @{ $h->{b3} }, 1, 'b3: one b3 header upstream');
my ($t, $s, $f) = split /-/, $h->{b3}[0];
is($t, $T, 'b3: the trace id');
isnt($s, $S, 'b3: a new span id');
is($f, '1', 'b3: sampled');
is(scalar @{ $h->{traceparent} }, 0, 'b3 only: no traceparent written');
my ($server, $client) = spans_of($T);
is($server->{parent_id}, $S, 'b3: server span parent is the b3 span id');
is($client->{span_id}, $s, 'b3: upstream saw the client span id');

# --- 64-bit trace id: padded to 128 bits
$h = send_get('/b3/b', ['b3', "$T64-$S-1"]);
($t) = split /-/, $h->{b3}[0];
is($t, "0000000000000000$T64", 'b3: 64-bit trace id padded');
($server) = spans_of("0000000000000000$T64");
is($server->{trace_id}, "0000000000000000$T64", 'b3: padded in the stream');

# --- deny: forwarded unsampled, nothing exported
$h = send_get('/b3/c', ['b3', "$T-$P-0"]);
(undef, undef, $f) = split /-/, $h->{b3}[0];
is($f, '0', 'b3 deny: forwarded unsampled');
my @all = barrier($redis->port, $ngx->port, '/barrier');
ok(!grep({ $_->{trace_id} eq $T && ($_->{parent_id} // '') eq $P } @all),
   'b3 deny: nothing exported');

# --- debug means sampled
my $T2 = '11112222333344445555666677778888';
$h = send_get('/b3/d', ['b3', "$T2-$S-d"]);
(undef, undef, $f) = split /-/, $h->{b3}[0];
is($f, '1', 'b3 debug: sampled');

# --- no sampling state: our sampler decides (edgetrace_sample 0 here)
my $T3 = '99998888777766665555444433332222';
$h = send_get('/never/e', ['b3', "$T3-$S"]);
($t, undef, $f) = split /-/, $h->{b3}[0];
is($t, $T3, 'b3 deferred: trace continued');
is($f, '0', 'b3 deferred: the receiver (sample 0) decided');

# --- sampling state only: a new trace with that decision
$h = send_get('/b3/f', ['b3', '0']);
($t, undef, $f) = split /-/, $h->{b3}[0];
like($t, qr/^[0-9a-f]{32}$/, 'b3 "0": a new trace');
is($f, '0', 'b3 "0": unsampled');
$h = send_get('/never/g', ['b3', '1']);
(undef, undef, $f) = split /-/, $h->{b3}[0];
is($f, '1', 'b3 "1": sampled despite edgetrace_sample 0');

# --- invalid b3: restart, the invalid value never reaches the upstream
$h = send_get('/b3/h', ['b3', uc("$T-$S-1")]);
is(scalar @{ $h->{b3} }, 1, 'invalid b3: one b3 upstream');
($t) = split /-/, $h->{b3}[0];
isnt($t, $T, 'invalid b3: new trace');
unlike($h->{b3}[0], qr/[A-F]/, 'invalid b3: replaced');

# --- b3multi
my $T4 = 'abcdabcdabcdabcdabcdabcdabcdabcd';
$h = send_get('/multi/a', ['X-B3-TraceId', $T4], ['X-B3-SpanId', $S],
              ['X-B3-ParentSpanId', $P], ['X-B3-Sampled', '1'],
              ['X-B3-Flags', '0']);
is_deeply($h->{'x-b3-traceid'}, [$T4], 'b3multi: trace id upstream');
is(scalar @{ $h->{'x-b3-spanid'} }, 1, 'b3multi: one span id');
isnt($h->{'x-b3-spanid'}[0], $S, 'b3multi: our span id');
is_deeply($h->{'x-b3-sampled'}, ['1'], 'b3multi: sampled');
is(scalar @{ $h->{'x-b3-parentspanid'} }, 0, 'b3multi: stale parent removed');
is(scalar @{ $h->{'x-b3-flags'} }, 0, 'b3multi: stale flags removed');
($server, $client) = spans_of($T4);
is($server->{parent_id}, $S, 'b3multi: parent');
is($client->{span_id}, $h->{'x-b3-spanid'}[0], 'b3multi: client span id');

my $T5 = 'abcdabcdabcdabcdabcdabcdabcd0005';
$h = send_get('/multi/b', ['X-B3-TraceId', $T5], ['X-B3-SpanId', $S],
              ['X-B3-Sampled', 'true']);
is_deeply($h->{'x-b3-traceid'}, [$T5], 'b3multi: "true" accepted');
is_deeply($h->{'x-b3-sampled'}, ['1'], 'b3multi: "true" is sampled');

$h = send_get('/multi/c', ['X-B3-TraceId', $T4], ['X-B3-Sampled', '1']);
isnt($h->{'x-b3-traceid'}[0], $T4, 'b3multi without span id: restart');

$h = send_get('/multi/d', ['X-B3-TraceId', $T4], ['X-B3-TraceId', $T],
              ['X-B3-SpanId', $S], ['X-B3-Sampled', '1']);
is(scalar @{ $h->{'x-b3-traceid'} }, 1, 'b3multi duplicated: one upstream');
ok($h->{'x-b3-traceid'}[0] ne $T4 && $h->{'x-b3-traceid'}[0] ne $T,
   'b3multi duplicated: restart');

# --- all formats written with the same ids; the first valid listed wins
my $TW = 'cccccccccccccccccccccccccccccccc';
$h = send_get('/all/a', ['traceparent', "00-$TW-$P-01"], ['b3', "$T-$S-1"]);
my (undef, $tpt, $tps) = split /-/, $h->{traceparent}[0];
is($tpt, $TW, 'w3c first: the traceparent trace wins');
($t, $s) = split /-/, $h->{b3}[0];
is($t, $TW, 'all: b3 carries the same trace');
is($s, $tps, 'all: b3 carries the same span id');
is_deeply($h->{'x-b3-traceid'}, [$TW], 'all: X-B3-TraceId the same');
is_deeply($h->{'x-b3-spanid'}, [$tps], 'all: X-B3-SpanId the same');

$h = send_get('/b3first/a', ['traceparent', "00-$TW-$P-01"],
              ['b3', "$T-$S-1"]);
(undef, $tpt) = split /-/, $h->{traceparent}[0];
is($tpt, $T, 'b3 first: the b3 trace wins, both agree upstream');

# the first listed invalid, the second valid
$h = send_get('/all/b', ['traceparent', "00-$TW-$P-0g"], ['b3', "$T-$S-1"]);
(undef, $tpt) = split /-/, $h->{traceparent}[0];
is($tpt, $T, 'invalid traceparent, valid b3: b3 continued');

# --- headers of formats not configured are left alone
$h = send_get('/b3/z', ['traceparent', "00-$TW-$P-01"], ['b3', "$T-$S-1"]);
is_deeply($h->{traceparent}, ["00-$TW-$P-01"],
          'b3 only: the client\'s traceparent untouched');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
