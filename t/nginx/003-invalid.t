#!/usr/bin/perl
# An invalid traceparent restarts the trace: a new root (no parent_id), the
# response unchanged, and the upstream never sees the client's value (nor
# the tracestate that came with it).

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

        location /api {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
    }
EOF

my $T = '4bf92f3577b34da6a3ce929d0e0e4736';
my $S = '00f067aa0ba902b7';

my @invalid = (
    ['uppercase trace id',   '00-' . uc($T) . "-$S-01"],
    ['uppercase span id',    "00-$T-" . uc($S) . '-01'],
    ['uppercase flags',      "00-$T-$S-0A"],
    ['uppercase version',    "0A-$T-$S-01"],
    ['zero trace id',        '00-' . ('0' x 32) . "-$S-01"],
    ['zero span id',         "00-$T-" . ('0' x 16) . '-01'],
    ['version ff',           "ff-$T-$S-01"],
    ['00 too long',          "00-$T-$S-01-extra"],
    ['00 one char more',     "00-$T-$S-010"],
    ['too short',            "00-$T-$S-1"],
    ['short trace id',       '00-' . substr($T, 1) . "-$S-01"],
    ['short span id',        "00-$T-" . substr($S, 1) . '-01'],
    ['non-hex trace id',     '00-' . substr($T, 0, 31) . "g-$S-01"],
    ['non-hex flags',        "00-$T-$S-0g"],
    ['underscores',          "00_${T}_${S}_01"],
    ['missing delimiter',    "00-$T$S-01"],
    ['future version bad',   "01-$T-$S-01extra"],
    ['garbage',              'hello world'],
    ['dashes only',          '---'],
    ['single char',          '0'],
    ['percent-encoded CRLF', "00-$T-$S-01%0d%0aX-Evil: 1"],
    ['binary',               "00-$T-$S-\x80\xff"],
    ['inner space',          "00-$T- $S-01"],
);

for my $case (@invalid) {
    my ($what, $value) = @$case;
    $b->clear;
    my $r = http_get($ngx->port, '/api/x',
                     headers => [['traceparent', $value],
                                 ['tracestate', 'vendor=opaque']]);
    is($r->{status}, 200, "$what: answered 200");

    my @req = $b->wait_requests(1);
    my @tp = Edgetrace::Test::Backend->header_values($req[0], 'traceparent');
    is(scalar @tp, 1, "$what: one traceparent upstream");
    my ($v, $trace, $span, $flags) = parse_traceparent($tp[0]);
    ok($trace, "$what: ours is well formed");
    isnt($tp[0], $value, "$what: the client's value is not forwarded");
    isnt($trace, $T, "$what: a new trace id");
    is_deeply([Edgetrace::Test::Backend->header_values($req[0],
                                                      'tracestate')],
              [], "$what: no tracestate with a new root");

    my @s = trace_spans($redis->port, $trace, count => 2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    ok($server, "$what: server span exported");
    ok($server && !exists $server->{parent_id}, "$what: a root span");
    ok($server && !exists $server->{tracestate}, "$what: no tracestate field");
}

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
