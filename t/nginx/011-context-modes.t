#!/usr/bin/perl
# edgetrace_context: extract (continue, leave the client's headers alone),
# inject (new root, ours replaces the client's), propagate (continue, ours
# written), ignore (new root, client's headers alone); with a variable, an
# unknown value means inject.

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

    map $arg_mode $trust {
        default    $arg_mode;
        ""         propagate;
    }

    server {
        listen 127.0.0.1:%%PORT%%;

        location /extract {
            edgetrace_context extract;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /inject {
            edgetrace_context inject;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /propagate {
            edgetrace_context propagate;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /ignore {
            edgetrace_context ignore;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /default {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /var {
            edgetrace_context $trust;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
    }
EOF

my $T = new_trace_id();
my $P = new_span_id();
my $TP = "00-$T-$P-01";
my $TS = 'congo=t61rcWkgMzE';

# returns (upstream traceparents, upstream tracestates, server span,
# client span)
my $seq = 0;
sub run {
    my ($path, @headers) = @_;
    @headers = (['traceparent', $TP], ['tracestate', $TS]) unless @headers;
    # the trace id repeats across requests: the request's own query
    # argument finds its server span, wherever it is in the stream
    my $tag = 'r=' . ++$seq;
    my $what = $path;
    $path .= ($path =~ /\?/ ? '&' : '?') . $tag;
    $b->clear;
    my $r = http_get($ngx->port, $path, headers => \@headers);
    is($r->{status}, 200, "$what: answered");
    my @req = $b->wait_requests(1);
    my @tp = Edgetrace::Test::Backend->header_values($req[0], 'traceparent');
    my @ts = Edgetrace::Test::Backend->header_values($req[0], 'tracestate');
    my $server;
    wait_until(sub {
        ($server) = grep { $_->{kind} eq 'server'
                           && ($_->{'url.query'} // '') =~ /(^|&)\Q$tag\E$/ }
                    stream_entries($redis->port, undef, timeout => 0);
    }, 3);
    # its client span is the server span's child
    my $client;
    wait_until(sub {
        ($client) = grep { $_->{kind} eq 'client'
                           && $_->{parent_id} eq $server->{span_id} }
                    trace_spans($redis->port, $server->{trace_id});
    }, 3);
    return (\@tp, \@ts, $server, $client);
}

sub check_continued {
    my ($what, $server) = @_;
    is($server->{trace_id}, $T, "$what: the client's trace is continued");
    is($server->{parent_id}, $P, "$what: parent is the client's span");
}

sub check_new_root {
    my ($what, $server) = @_;
    isnt($server->{trace_id}, $T, "$what: a new trace");
    ok(!exists $server->{parent_id}, "$what: a root span");
}

sub check_untouched {
    my ($what, $tp, $ts) = @_;
    is_deeply($tp, [$TP], "$what: the client's traceparent, untouched");
    is_deeply($ts, [$TS], "$what: the client's tracestate, untouched");
}

# ours written: one traceparent of the spans' ids, and the tracestate
# $ts_want (undef: none) upstream and in both spans
sub check_ours {
    my ($what, $tp, $ts, $server, $client, $ts_want) = @_;
    is(scalar @$tp, 1, "$what: one traceparent upstream");
    my (undef, $t, $s) = parse_traceparent($tp->[0]);
    is($t, $server->{trace_id}, "$what: ours, with the span's trace");
    is($s, $client->{span_id}, "$what: ours, with the client span id");
    is_deeply($ts, [defined $ts_want ? $ts_want : ()],
              "$what: tracestate upstream: " . ($ts_want // 'none'));
    is_deeply([map { $_->{tracestate} // 'none' } $server, $client],
              [($ts_want // 'none') x 2],
              "$what: tracestate of the server and client spans");
}

# --- extract
my ($tp, $ts, $server, $client) = run('/extract');
check_continued('extract', $server);
check_untouched('extract', $tp, $ts);
is($server->{tracestate}, $TS, 'extract: tracestate carried in the span');
is($client->{parent_id}, $server->{span_id}, 'extract: client span exported');

# extract with an invalid value: the client's header is left as it was
($tp, $ts, $server) = run('/extract', ['traceparent', 'garbage'],
                          ['tracestate', 'Bad']);
is_deeply($tp, ['garbage'], 'extract: an invalid traceparent is not touched');
is_deeply($ts, ['Bad'], 'extract: an invalid tracestate is not touched');
ok(!exists $server->{parent_id}, 'extract: invalid means a new root');

# extract without context: nothing written
($tp, $ts, $server) = run('/extract', ['X-Nothing', '1']);
is_deeply($tp, [], 'extract: no traceparent written');
is_deeply($ts, [], 'extract: no tracestate written');

# --- inject
($tp, $ts, $server, $client) = run('/inject');
check_new_root('inject', $server);
check_ours('inject', $tp, $ts, $server, $client, undef);

# inject: an outsider cannot switch sampling off either
($tp, $ts, $server, $client) = run('/inject',
                                   ['traceparent', "00-$T-$P-00"]);
check_new_root('inject, unsampled parent', $server);
ok(hex((parse_traceparent($tp->[0]))[3]) & 1,
   'inject: sampled by our own rule, not the client\'s flag');

# --- propagate (explicit and default)
for my $path ('/propagate', '/default') {
    ($tp, $ts, $server, $client) = run($path);
    check_continued($path, $server);
    check_ours($path, $tp, $ts, $server, $client, $TS);
}

# propagate writes the tracestate it read, normalized: not the client's
($tp, $ts, $server, $client) = run('/propagate', ['traceparent', $TP],
                                   ['tracestate', " $TS , rojo=1,congo=2"]);
check_ours('propagate, untidy tracestate', $tp, $ts, $server, $client,
           "$TS,rojo=1");

# --- ignore
($tp, $ts, $server, $client) = run('/ignore');
check_new_root('ignore', $server);
check_untouched('ignore', $tp, $ts);
ok(!exists $server->{tracestate}, 'ignore: no tracestate in the span');
($tp, $ts) = run('/ignore', ['X-Nothing', '1']);
is_deeply($tp, [], 'ignore: no traceparent written');

# --- a variable (map on $arg_mode)
($tp, $ts, $server, $client) = run('/var?mode=extract');
check_continued('var extract', $server);
check_untouched('var extract', $tp, $ts);

($tp, $ts, $server, $client) = run('/var?mode=inject');
check_new_root('var inject', $server);
check_ours('var inject', $tp, $ts, $server, $client, undef);

($tp, $ts, $server, $client) = run('/var?mode=propagate');
check_continued('var propagate', $server);
check_ours('var propagate', $tp, $ts, $server, $client, $TS);

($tp, $ts, $server, $client) = run('/var?mode=ignore');
check_new_root('var ignore', $server);
check_untouched('var ignore', $tp, $ts);

($tp, $ts, $server, $client) = run('/var');
check_continued('var default (propagate)', $server);

for my $bogus ('bogus', 'Extract', 'propagate2', '1') {
    ($tp, $ts, $server, $client) = run("/var?mode=$bogus");
    check_new_root("unknown value '$bogus' is inject", $server);
    check_ours("unknown value '$bogus' is inject", $tp, $ts, $server,
               $client, undef);
}

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
