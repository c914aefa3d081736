#!/usr/bin/perl
# Hostile input: oversized, garbage, tab-padded, duplicated, CRLF-laden,
# non-ASCII trace headers, HTTP/0.9.  Never a crash; the response is what
# it would be untraced; the upstream never sees the client's invalid value.

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
    large_client_header_buffers 4 32k;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /api {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /plain {
            edgetrace off;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location = /metrics {
            edgetrace off;
            edgetrace_status;
        }
        location = /pid {
            edgetrace off;
            return 200 $pid;
        }
    }
EOF

my $T = new_trace_id();
my $S = new_span_id();
my $VALID = "00-$T-$S-01";
my $port = $ngx->port;

sub raw_req {
    my ($path, @lines) = @_;
    return "GET $path HTTP/1.1\r\nHost: localhost\r\n"
         . join('', map { "$_\r\n" } @lines)
         . "Connection: close\r\n\r\n";
}

# the upstream view of a request: its traceparent and tracestate values
sub upstream {
    my @req = $b->requests;
    return (undef, undef) unless @req;
    return ([Edgetrace::Test::Backend->header_values($req[-1], 'traceparent')],
            [Edgetrace::Test::Backend->header_values($req[-1], 'tracestate')]);
}

# sends the same header lines traced and untraced; checks the status is the
# same and what the upstream saw; returns (traced response, traceparents
# upstream, tracestates upstream)
sub hostile {
    my ($what, @lines) = @_;
    $b->clear;
    my $plain = http_get($port, undef, raw => raw_req('/plain/x', @lines));
    $b->clear;
    my $r = http_get($port, undef, raw => raw_req('/api/x', @lines));
    is($r->{status}, $plain->{status},
       "$what: status as untraced ($plain->{status})");
    my ($tp, $ts) = upstream();
    if ($r->{status} == 200) {
        is(scalar @$tp, 1, "$what: one traceparent upstream");
        ok(parse_traceparent($tp->[0]), "$what: a well-formed traceparent");
        my (undef, undef, $span) = parse_traceparent($tp->[0]);
        isnt($span, $S, "$what: never the client's span id");
        ok(@$ts <= 1, "$what: at most one tracestate upstream");
        if (@$ts) {
            ok(length $ts->[0] <= 512, "$what: tracestate within 512");
            unlike($ts->[0], qr/[^\x20-\x7e]/, "$what: tracestate printable");
        }
    }
    return ($r, $tp, $ts);
}

sub span_of {
    my ($tp) = @_;
    my (undef, $trace, $span) = parse_traceparent($tp->[0]);
    my @s = trace_spans($redis->port, $trace, count => 2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    return $server;
}

# --- oversized
my ($r, $tp, $ts) = hostile('8 KB traceparent', 'traceparent: ' . ('a' x 8192));
isnt(span_of($tp)->{trace_id}, $T, '8 KB traceparent: a new trace');
($r, $tp, $ts) = hostile('8 KB valid-prefixed traceparent',
                         "traceparent: $VALID-" . ('b' x 8192));
ok(!exists span_of($tp)->{parent_id}, 'valid prefix + 8 KB: a new root');
($r, $tp, $ts) = hostile('8 KB tracestate', "traceparent: $VALID",
                         'tracestate: a=' . ('c' x 8192));
is(span_of($tp)->{parent_id}, $S, '8 KB tracestate: traceparent still valid');
is_deeply($ts, [], '8 KB tracestate: a member over 256 chars is invalid');
($r, $tp, $ts) = hostile('many tracestate lines', "traceparent: $VALID",
                         map { "tracestate: k$_=v" } 1 .. 40);
ok(!@$ts || ($ts->[0] =~ tr/,//) < 32, 'many tracestate lines: <= 32 members');
($r, $tp, $ts) = hostile('33 tracestate members', "traceparent: $VALID",
                         'tracestate: ' . join(',', map { "k$_=v" } 1 .. 33));
is_deeply($ts, [], '33 members: dropped');
is(span_of($tp)->{parent_id}, $S, '33 members: traceparent still continued');

# --- garbage
hostile('high bytes', "traceparent: \x80\x81\xfe\xff");
hostile('control bytes', "traceparent: 00-\x01\x02\x03");
hostile('UTF-8', "traceparent: 00-\xc3\xa9\xc3\xa9");
hostile('non-ASCII tracestate', "traceparent: $VALID",
        "tracestate: caf\xc3\xa9=1");
hostile('NUL in value', "traceparent: 00-\x00-01");
hostile('empty value', 'traceparent:');
hostile('only spaces', 'traceparent:    ');
hostile('header name with a space', "traceparent : $VALID");
hostile('bare CR in value', "traceparent: $VALID\rX-Evil: 1");
hostile('bare LF in value', "traceparent: $VALID\nX-Evil: 1");
hostile('obsolete line folding', "traceparent: 00-$T-", " $S-01");
hostile('percent-encoded CRLF', "traceparent: $VALID%0d%0aX-Evil:%201");
($r, $tp) = hostile('CRLF then a second traceparent',
                    "traceparent: garbage\r\ntraceparent: $VALID");
ok(!exists span_of($tp)->{parent_id},
   'two lines, one garbage: treated as invalid');

# --- whitespace
($r, $tp) = hostile('tabs around the value', "traceparent:\t$VALID\t");
is(span_of($tp)->{parent_id}, $S, 'tabs stripped: the trace is continued');
is((parse_traceparent($tp->[0]))[1], $T, 'tabs stripped: same trace upstream');
($r, $tp) = hostile('tabs and spaces', "traceparent: \t $VALID \t ");
is(span_of($tp)->{parent_id}, $S, 'tabs and spaces: continued');
($r, $tp, $ts) = hostile('tab-padded tracestate', "traceparent: $VALID",
                         "tracestate:\ta=1\t");
is_deeply($ts, ['a=1'], 'tab-padded tracestate: stripped');

# --- header names
($r, $tp) = hostile('mixed-case name', "TraceParent: $VALID");
is(span_of($tp)->{parent_id}, $S, 'mixed-case name: continued');
my @req = $b->requests;
is(scalar(grep { lc $_->[0] eq 'traceparent' } @{ $req[-1]{headers} }), 1,
   'mixed-case name: replaced, not doubled');

# --- duplicates
my $T2 = new_trace_id();
my $S2 = new_span_id();
($r, $tp) = hostile('two different valid traceparents',
                    "traceparent: $VALID", "traceparent: 00-$T2-$S2-01");
my $sp = span_of($tp);
ok(!exists $sp->{parent_id}, 'two traceparents: a new root');
ok($sp->{trace_id} ne $T && $sp->{trace_id} ne $T2,
   'two traceparents: neither trace id is used');
($r, $tp) = hostile('the same traceparent twice',
                    "traceparent: $VALID", "traceparent: $VALID");
ok(!exists span_of($tp)->{parent_id}, 'the same one twice: a new root');
($r, $tp, $ts) = hostile('two tracestate lines', "traceparent: $VALID",
                         'tracestate: a=1', 'tracestate: b=2');
is_deeply($ts, ['a=1,b=2'], 'two tracestate lines: combined into one');

# --- many headers
hostile('100 junk headers', map { "X-Junk-$_: " . ('j' x 50) } 1 .. 100);

# --- HTTP/0.9 and other odd request lines
$r = http_get($port, undef, raw => "GET /api/x\r\n");
ok(length $r->{raw}, 'HTTP/0.9: answered');
$r = http_get($port, undef, raw => "GET /api/x HTTP/1.0\r\n"
                                 . "traceparent: $VALID\r\n\r\n");
is($r->{status}, 200, 'HTTP/1.0 without Host: 200');
$r = http_get($port, undef, raw => "GARBAGE\r\n\r\n");
is($r->{status}, 400, 'garbage request line: 400');

# --- clients that leave mid-request: the worker lives on, and the span
# says what nginx logged
my $pid = http_get($port, '/pid')->{body};
like($pid, qr/^\d+$/, 'the worker serving requests');
$b->clear;
my $T3 = new_trace_id();
$r = http_get($port, undef, raw => "GET /api/x HTTP/1.1\r\nHost: x\r\n"
                                 . "traceparent: 00-$T3-$S-01", timeout => 0.5);
is($r->{raw}, '', 'headers cut short: no answer while the client waits');
my $T4 = new_trace_id();
$r = http_get($port, undef, raw => "GET /api/x HTTP/1.1\r\n"
                                 . "Host: x\r\nContent-Length: 5\r\n"
                                 . "traceparent: 00-$T4-$S-01\r\n\r\nab",
              timeout => 0.5);
is($r->{raw}, '', 'body cut short: no answer while the client waits');
is(http_get($port, '/pid')->{body}, $pid,
   'the same worker serves the next request');
my @up = $b->requests;
is(scalar @up, 0, "neither cut request reached upstream");

# the next traced request's spans come from the same worker's queue, after
# any span of the cut requests
my $T5 = new_trace_id();
$r = http_get($port, '/api/after', headers => [['traceparent',
                                                "00-$T5-$S-01"]]);
is($r->{status}, 200, 'still serving afterwards');
is(scalar(my @after = trace_spans($redis->port, $T5, count => 2)), 2,
   'still exporting afterwards: both spans');
is_deeply([trace_spans($redis->port, $T3, timeout => 0)], [],
          'headers cut short: no span (nginx never had a request)');
my @cut = trace_spans($redis->port, $T4, timeout => 0);
is_deeply([map { $_->{kind} } @cut], ['server'],
          'body cut short: a server span only (no upstream try)');
is($cut[0]{parent_id}, $S, 'body cut short: the parent continued');
is($cut[0]{'http.response.status_code'}, 400,
   'body cut short: status 400, as nginx logs it');
is($cut[0]{status}, 'unset', 'body cut short: not a server error');

my $m = metrics($port);
ok(wait_until(sub {
       my $m = metrics($port);
       $m->{edgetrace_spans_queued} == 0
       && $m->{edgetrace_spans_total} == $m->{edgetrace_spans_exported_total}
   }, 3), 'every span exported');

is_deeply([$ngx->crashes], [], 'no worker crashed');

done_testing;
