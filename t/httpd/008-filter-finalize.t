#!/usr/bin/perl
# The httpd twin of t/nginx/024: responses a handler or filter ends early
# (a failed precondition, an unsatisfiable range) have their server span,
# with the status the client got, under each MPM.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);

my $redis = start_redis();

for my $mpm (mpms()) {
    my $h = start_httpd(mpm => $mpm, redis => $redis,
                        files => { 'f.txt' => "0123456789" },
                        conf => <<'EOF2');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 50ms
EdgeTrace On
Alias /inner/ "%%PREFIX%%/htdocs/"
EOF2

    # one request in a trace of its own; returns (response, server span)
    my $traced = sub {
        my ($path, @headers) = @_;
        my ($trace, $parent) = (new_trace_id(), new_span_id());
        my $r = http_get($h->port, $path,
                         headers => [[traceparent => "00-$trace-$parent-01"],
                                     @headers]);
        my @s = trace_spans($redis->port, $trace, count => 1);
        my ($server) = grep { $_->{kind} eq 'server' } @s;
        is(scalar @s, 1, "$mpm $path: one span in the trace");
        is($server && $server->{parent_id}, $parent,
           "$mpm $path: the server span continues the client's trace");
        return ($r, $server);
    };

    my ($r, $s) = $traced->('/f.txt');
    is($r->{status}, 200, "$mpm: the file is served");
    is($s && $s->{'http.response.status_code'}, 200, "$mpm: its span: 200");

    for my $path ('/f.txt', '/inner/f.txt') {
        ($r, $s) = $traced->($path, ['If-Match' => '"nope"']);
        is($r->{status}, 412, "$mpm $path: If-Match mismatch: 412");
        is($s && $s->{'http.response.status_code'}, 412,
           "$mpm $path: the server span: 412");
        is($s && $s->{status}, 'unset', "$mpm $path: 412 is no server error");
        is($s && $s->{'url.path'}, $path, "$mpm $path: 412: the path");

        ($r, $s) = $traced->($path, ['If-Unmodified-Since'
                                     => 'Thu, 01 Jan 1998 00:00:00 GMT']);
        is($r->{status}, 412, "$mpm $path: If-Unmodified-Since: 412");
        is($s && $s->{'http.response.status_code'}, 412,
           "$mpm $path: its server span: 412");

        ($r, $s) = $traced->($path, [Range => 'bytes=100-']);
        is($r->{status}, 416, "$mpm $path: an unsatisfiable range: 416");
        is($s && $s->{'http.response.status_code'}, 416,
           "$mpm $path: the server span: 416");
        is($s && $s->{'url.path'}, $path, "$mpm $path: 416: the path");
    }

    ($r, $s) = $traced->('/f.txt', [Range => 'bytes=2-4']);
    is($r->{status}, 206, "$mpm: a satisfiable range: 206");
    is($r->{body}, '234', "$mpm: the range");
    is($s && $s->{'http.response.status_code'}, 206,
       "$mpm: its server span: 206");

    $h->stop;
}

done_testing;
