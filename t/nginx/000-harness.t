#!/usr/bin/perl
# The harness itself: backend, raw client, Redis helpers, a plain nginx
# (without the module) proxying to the backend.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();

# the backend answers with the header lines it received, duplicates kept
my $r = http_get($b->port, '/echo?x=1',
                 headers => [['X-A', 'one'], ['x-a', 'two'], ['X-B', 'b']]);
is($r->{status}, 200, 'backend answers 200');
like($r->{body}, qr/^X-A: one\nx-a: two\nX-B: b\n/m, 'body lists headers');

is(http_get($b->port, '/status/503')->{status}, 503, '/status/NNN');
my $t0 = time;
is(http_get($b->port, '/slow/300')->{status}, 200, '/slow/MS');
is(http_get($b->port, '/accel/x/y')->{headers}{'x-accel-redirect'}, '/x/y',
   '/accel/PATH');

my @reqs = $b->requests;
is(scalar @reqs, 4, 'four requests logged');
is($reqs[0]{method}, 'GET', 'method logged');
is($reqs[0]{uri}, '/echo?x=1', 'uri logged');
is_deeply([Edgetrace::Test::Backend->header_values($reqs[0], 'x-a')],
          ['one', 'two'], 'duplicate headers kept, in order');

# non-ASCII bytes survive the log
http_get($b->port, '/bytes', headers => [['X-Bin', "caf\xe9\x01"]]);
@reqs = $b->requests;
is((Edgetrace::Test::Backend->header_values($reqs[-1], 'x-bin'))[0],
   "caf\xe9\x01", 'raw bytes kept');

# keepalive: two requests on one connection
$r = http_get($b->port, undef, raw => "GET /k1 HTTP/1.1\r\nHost: x\r\n\r\n"
                                     . "GET /k2 HTTP/1.1\r\nHost: x\r\n"
                                     . "Connection: close\r\n\r\n");
is(scalar(() = $r->{raw} =~ m{HTTP/1.1 200}g), 2, 'keepalive: two answers');

# redis helpers
my $rc = redis($redis->port);
$rc->xadd('s', '*', 'a', '1', 'b', '2');
$rc->xadd('s', '*', 'c', '3');
my @e = stream_entries($redis->port, 's', count => 2, timeout => 1);
is(scalar @e, 2, 'two entries');
is($e[0]{a}, 1, 'field a');
is_deeply($e[0]{_fields}, [a => 1, b => 2], 'fields in order');
like($e[1]{_id}, qr/^\d+-\d+$/, 'entry id');

# the entries of one trace, in stream order, whatever else the stream holds
$rc->xadd('t', '*', trace_id => 'aa', n => 1);
$rc->xadd('t', '*', trace_id => 'bb', n => 2);
$rc->xadd('t', '*', trace_id => 'aa', n => 3);
is_deeply([map { $_->{n} } trace_spans($redis->port, 'aa', key => 't',
                                       count => 2, timeout => 1)],
          [1, 3], 'trace_spans: the entries of one trace, in order');

# EDGETRACE_CASE runs the cases whose names match, and only those
{
    local $ENV{EDGETRACE_CASE} = 'second';
    my $lib = "$FindBin::Bin/../lib";
    my $tap = `$^X -I'$lib' -e '
        use Test::More; use Edgetrace::Test qw(case);
        case "first case" => sub { pass("ran first") };
        case "second case" => sub { pass("ran second") };
        done_testing' 2>&1`;
    like($tap, qr/^ok 1 - second case$/m, 'EDGETRACE_CASE: the case chosen');
    unlike($tap, qr/ran first/, 'EDGETRACE_CASE: the other one not run');
}

# a plain nginx proxying to the backend
$b->clear;
my $ngx = start_nginx(module => 0, conf => <<'EOF');
    upstream u { server 127.0.0.1:%%DEAD%%; server 127.0.0.1:%%BACKEND%%; }
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { proxy_pass http://127.0.0.1:%%BACKEND%%; }
        location /retry { proxy_pass http://u; }
    }
EOF
ok($ngx->worker_pids >= 1, 'nginx workers found');
$r = http_get($ngx->port, '/p', headers => [['traceparent', 'x']]);
is($r->{status}, 200, 'proxied');
like($r->{body}, qr/^traceparent: x$/m, 'upstream saw the header');
is(http_get($ngx->port, '/retry')->{status}, 200, 'retry to the live peer');

ok($ngx->reload, 'reload: new workers');
is(http_get($ngx->port, '/p')->{status}, 200, 'after reload');

my ($code, $out) = nginx_t(module => 0, conf => "bogus_directive 1;");
isnt($code, 0, 'nginx -t fails');
like($out, qr/unknown directive "bogus_directive"/, 'nginx -t output');

# free_port never gives the same port twice: a %%DEAD%% port equal to the
# server's own once made a proxy loop (the kernel does repeat itself)
my %seen;
my $repeats = grep { $seen{$_}++ } map { free_port() } 1 .. 300;
is($repeats, 0, 'free_port: 300 distinct ports');

is(scalar $ngx->crashes, 0, 'no crash');
my $st = $ngx->quit;
ok(defined $st, 'quit: the master exited');
ok(!kill(0, $ngx->pid), 'master gone');

done_testing;
