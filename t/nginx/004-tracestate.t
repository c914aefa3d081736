#!/usr/bin/perl
# W3C tracestate in propagate mode: a valid one is normalized ("k=v,k=v"),
# forwarded once and carried as the spans' tracestate field; truncated to
# 512 characters by whole members; a duplicate key keeps its first member
# and the rest of the list; an invalid one is dropped entirely.

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

# sends a valid sampled traceparent with the given tracestate header lines;
# returns (tracestate values upstream, server span, client span)
sub send_state {
    my (@states) = @_;
    my $trace = new_trace_id();
    my $parent = new_span_id();
    $b->clear;
    my $r = http_get($ngx->port, '/api/ts',
                     headers => [['traceparent', "00-$trace-$parent-01"],
                                 map { ['tracestate', $_] } @states]);
    is($r->{status}, 200, 'answered 200');
    my @req = $b->wait_requests(1);
    my @up = Edgetrace::Test::Backend->header_values($req[0], 'tracestate');
    my @tp = Edgetrace::Test::Backend->header_values($req[0], 'traceparent');
    my (undef, $t) = parse_traceparent($tp[0]);
    is($t, $trace, 'the trace is continued');
    my @s = trace_spans($redis->port, $trace, count => 2);
    my ($server) = grep { $_->{kind} eq 'server' } @s;
    my ($client) = grep { $_->{kind} eq 'client' } @s;
    is($server->{parent_id}, $parent, 'the parent is kept');
    return (\@up, $server, $client);
}

sub valid_case {
    my ($what, $want, @states) = @_;
    my ($up, $server, $client) = send_state(@states);
    is_deeply($up, [$want], "$what: forwarded once as '$want'");
    is($server->{tracestate}, $want, "$what: server span tracestate");
    is($client->{tracestate}, $want, "$what: client span tracestate");
}

sub invalid_case {
    my ($what, @states) = @_;
    my ($up, $server, $client) = send_state(@states);
    is_deeply($up, [], "$what: no tracestate upstream");
    ok(!exists $server->{tracestate}, "$what: no tracestate field (server)");
    ok(!exists $client->{tracestate}, "$what: no tracestate field (client)");
}

valid_case('simple', 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
           'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
valid_case('spaces around members', 'a=1,b=2', 'a=1 , b=2');
valid_case('tabs around members', 'a=1,b=2', "a=1\t,\tb=2");
valid_case('empty members', 'a=1,b=2', ',a=1,,b=2,');
valid_case('two header lines are one list', 'a=1,b=2,c=3', 'a=1,b=2', 'c=3');
valid_case('multi-tenant key', 'tenant@vendor=v', 'tenant@vendor=v');
valid_case('keys with @ (current W3C grammar)', 'foo@=1,foo@@bar=2,foo@bar@baz=3',
           'foo@=1,foo@@bar=2,foo@bar@baz=3');
valid_case('digit first, special characters in key',
           '0a_-*/=x', '0a_-*/=x');
valid_case('value with a space inside', 'k=a b', 'k=a b');
invalid_case('value with =', 'k=a=b');
valid_case('32 members', join(',', map { "k$_=v" } 1 .. 32),
           join(',', map { "k$_=v" } 1 .. 32));

# truncation to 512 by whole members: members of 99 characters, 5 fit
my @m = map { sprintf("k%d=%s", $_, 'x' x (99 - 2 - length $_)) } 1 .. 8;
is(length $m[0], 99, 'member of 99 characters');
my $want = join ',', @m[0 .. 4];
is(length $want, 499, '5 members are 499 characters');
valid_case('truncated by whole members', $want, join(',', @m));

# members longer than 128 characters go first
my $long = 'big=' . ('y' x 200);
valid_case('a long member goes first',
           join(',', @m[0 .. 4]),
           join(',', $m[0], $long, @m[1 .. 4], $m[5]));

invalid_case('uppercase key', 'Congo=1');
invalid_case('no =', 'congo');
invalid_case('empty key', '=1');
invalid_case('empty value', 'a=');
invalid_case('comma-less junk after a member', 'a=1 b=2');
invalid_case('value with a comma-like control character', "a=\x01");
invalid_case('non-ASCII value', "a=caf\xc3\xa9");
# a duplicate key (the sender's fault) is dropped, the first kept with the
# rest of the list, whether on one line or on two
valid_case('duplicate key: the first is kept', 'a=1', 'a=1,a=2');
valid_case('duplicate keys among others', 'a=1,b=2,c=4',
           'a=1,b=2,a=3,c=4,b=5');
valid_case('duplicate key on two header lines', 'a=1,b=2,c=4',
           'a=1,b=2', 'b=3,c=4');
valid_case('the same member on two header lines', 'rojo=00f067aa0ba902b7',
           'rojo=00f067aa0ba902b7', 'rojo=00f067aa0ba902b7');
invalid_case('a bad duplicate still spoils the list', 'a=1,a=');
invalid_case('33 members', join(',', map { "k$_=v" } 1 .. 33));
invalid_case('one bad member spoils the list', 'a=1,B=2,c=3');
invalid_case('one bad line spoils the list', 'a=1', 'B=2');

# without a traceparent a tracestate means nothing: a new root, no tracestate
$b->clear;
http_get($ngx->port, '/api/none', headers => [['tracestate', 'a=1']]);
my @req = $b->wait_requests(1);
is_deeply([Edgetrace::Test::Backend->header_values($req[0], 'tracestate')],
          [], 'tracestate without traceparent: dropped');
my (undef, $t) = parse_traceparent(
    (Edgetrace::Test::Backend->header_values($req[0], 'traceparent'))[0]);
my @s = trace_spans($redis->port, $t, count => 2);
ok(!grep({ exists $_->{tracestate} } @s),
   'tracestate without traceparent: no field');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
