#!/usr/bin/perl
# The values injected for an upstream are read when nginx writes the
# upstream request, which can be long after the module wrote them: here a
# request body arrives late, while other traced requests are served.
# Every format's headers must still carry this request's client span.
# Each case finds its spans by their trace ids (EDGETRACE_CASE=regex).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Socket::INET;
use Time::HiRes ();
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /all {
            edgetrace_propagation w3c b3 b3multi;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /b3 {
            edgetrace_propagation b3;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
    }
EOF

# the upstream request whose X-Test header is $tag
sub upstream_of {
    my ($tag, @req) = @_;
    my @r = grep {
        (Edgetrace::Test::Backend->header_values($_, 'x-test'))[0] eq $tag
    } @req;
    return $r[0];
}

sub header1 {
    my ($req, $name) = @_;
    my @v = Edgetrace::Test::Backend->header_values($req, $name);
    return @v == 1 ? $v[0] : undef;
}

for my $path ('/all', '/b3') {
    case "$path: a body that comes late" => sub {
        $b->clear;
        my $t = new_trace_id();

        # the headers now, the body later
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                      Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        syswrite($s, "POST $path/late HTTP/1.1\r\nHost: x\r\n"
                     . "traceparent: " . new_traceparent($t) . "\r\n"
                     . "b3: $t-" . new_span_id() . "-1\r\n"
                     . "X-Test: late\r\nContent-Length: 5\r\n"
                     . "Connection: close\r\n\r\n");
        Time::HiRes::sleep(0.2);

        # meanwhile, other traced requests with upstreams of their own
        for my $i (1 .. 3) {
            my $o = new_trace_id();
            is(http_get($ngx->port, "$path/other",
                        headers => [['traceparent', new_traceparent($o)],
                                    ['b3', "$o-" . new_span_id() . '-1'],
                                    ['X-Test', "other$i"]])->{status},
               200, "other request $i answered");
        }

        syswrite($s, "hello");
        my $raw = '';
        while (sysread($s, $raw, 65536, length $raw)) { }
        close $s;
        like($raw, qr{^HTTP/1\.1 200 }, 'the late request answered');

        my $up = upstream_of('late', $b->wait_requests(4));
        ok($up, 'the late request reached the upstream');

        my @spans = trace_spans($redis->port, $t, count => 2);
        my ($client) = grep { $_->{kind} eq 'client' } @spans;
        ok($client, 'its client span');
        my $id = $client ? $client->{span_id} : 'none';

        is(header1($up, 'b3'), "$t-$id-1", 'b3: this request\'s client span');

        if ($path eq '/all') {
            is(header1($up, 'traceparent'), "00-$t-$id-01",
               'traceparent: this request\'s client span');
            is(header1($up, 'x-b3-traceid'), $t, 'X-B3-TraceId');
            is(header1($up, 'x-b3-spanid'), $id, 'X-B3-SpanId');
            is(header1($up, 'x-b3-sampled'), '1', 'X-B3-Sampled');
        }
    };
}

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
