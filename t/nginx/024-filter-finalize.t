#!/usr/bin/perl
# Responses that nginx's filters finish themselves (a failed precondition,
# an unsatisfiable range) clear every module's context: the server span is
# written all the same, with the status the client got.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $ngx = start_nginx(redis => $redis, files => { 'f.txt' => "0123456789" },
                      conf => <<'EOF2');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;
        root %%PREFIX%%/html;

        location /inner/ {
            alias %%PREFIX%%/html/;
        }
    }
EOF2

# one request in a trace of its own; returns (response, its server span)
sub traced {
    my ($path, @headers) = @_;
    my ($trace, $parent) = (new_trace_id(), new_span_id());
    my $r = http_get($ngx->port, $path,
                     headers => [[traceparent => "00-$trace-$parent-01"],
                                 @headers]);
    my @s = trace_spans($redis->port, $trace, count => 1);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    is(scalar @s, 1, "$path: one span in the trace");
    is($server && $server->{parent_id}, $parent,
       "$path: the server span continues the client's trace");
    return ($r, $server);
}

my ($r, $s) = traced('/f.txt');
is($r->{status}, 200, 'the file is served');
is($s && $s->{'http.response.status_code'}, 200, 'its span: 200');

for my $path ('/f.txt', '/inner/f.txt') {
    # --- If-Match that does not match: the not-modified filter finishes
    ($r, $s) = traced($path, ['If-Match' => '"nope"']);
    is($r->{status}, 412, "$path: If-Match mismatch: 412");
    is($s && $s->{'http.response.status_code'}, 412,
       "$path: the server span: 412");
    is($s && $s->{status}, 'unset', "$path: 412 is not a server error");
    is($s && $s->{'url.path'}, $path, "$path: 412: the path");

    # --- If-Unmodified-Since before the file was written
    ($r, $s) = traced($path, ['If-Unmodified-Since'
                              => 'Thu, 01 Jan 1998 00:00:00 GMT']);
    is($r->{status}, 412, "$path: If-Unmodified-Since in the past: 412");
    is($s && $s->{'http.response.status_code'}, 412,
       "$path: its server span: 412");

    # --- a range past the end: the range filter finishes
    ($r, $s) = traced($path, [Range => 'bytes=100-']);
    is($r->{status}, 416, "$path: an unsatisfiable range: 416");
    is($s && $s->{'http.response.status_code'}, 416,
       "$path: the server span: 416");
    is($s && $s->{'url.path'}, $path, "$path: 416: the path");
}

# a satisfiable range keeps working as before
($r, $s) = traced('/f.txt', [Range => 'bytes=2-4']);
is($r->{status}, 206, 'a satisfiable range: 206');
is($r->{body}, '234', 'the range');
is($s && $s->{'http.response.status_code'}, 206, 'its server span: 206');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
