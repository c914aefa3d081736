#!/usr/bin/perl
# edgetrace serve's API under bad requests: every malformed, oversized or
# hostile parameter gets a 400 with Jaeger's errors [{code, msg}] and a
# message that names what is wrong; an unknown trace or span a 404;
# another method a 405; a huge limit is lowered.  The server answers
# valid JSON throughout and keeps running.  And the options: --listen
# only on loopback, a port in use, an unknown argument.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli);
use Edgetrace::Serve qw(start_serve);

my $redis = start_redis();
my $rc = $redis->client;
my $now = int(time()) . '000000000';

my $tid = new_trace_id();
$rc->xadd('edgetrace:spans', '*', v => 1, trace_id => $tid,
          span_id => new_span_id(), name => "GET \xff\"\\\x01", kind => 'server',
          start_ns => $now, end_ns => $now + 1000000, status => 'error',
          'service.name' => "svc\xc3\x28", 'url.path' => "/\x00\x7f\"</script>",
          "key\xfe" => 'v', 'error.type' => '500',
          'http.response.status_code' => 'x500');

my $s = start_serve($redis);
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == 1 }), 'stored');

my $n4 = 0;

sub bad {
    my ($path, $code, $msg, $name) = @_;
    my ($st, $j, $body) = $s->get($path);
    $n4++;
    subtest $name => sub {
        is($st, $code, "status $code");
        ok($j, 'JSON') or diag($body);
        is($j->{data}, undef, 'data: null');
        is(scalar @{ $j->{errors} || [] }, 1, 'one error');
        is($j->{errors}[0]{code}, $code, 'its code');
        like($j->{errors}[0]{msg}, $msg, 'its message');
    };
}

my $T = '/api/traces?service=svc';
bad('/api/traces', 400, qr/parameter 'service' is required/, 'no service');
bad("$T&limit=abc", 400, qr/param 'limit'/, 'limit=abc');
bad("$T&limit=-1", 400, qr/param 'limit'/, 'limit=-1');
bad("$T&limit=1e3", 400, qr/param 'limit'/, 'limit=1e3');
bad("$T&limit=99999999999999999999999", 400, qr/param 'limit'/,
    'limit past 2^64');
bad("$T&start=abc", 400, qr/param 'start'/, 'start=abc');
bad("$T&end=%00", 400, qr/param 'end'/, 'end=NUL');
bad("$T&start=20&end=10", 400, qr/'start' is after 'end'/, 'start > end');
bad("$T&minDuration=soon", 400, qr/param 'minDuration'/, 'minDuration');
bad("$T&minDuration=2s&maxDuration=1s", 400,
    qr/'maxDuration' should be greater than 'minDuration'/, 'max < min');
bad("$T&tag=nocolon", 400, qr/malformed 'tag' parameter/, 'tag=nocolon');
bad("$T&tags=%7Bnot%20json", 400, qr/malformed 'tags' parameter/,
    'tags not JSON');
bad("$T&tags=%7B%22a%22%3A1%7D", 400, qr/must be a string/,
    'tags with a number');
bad("$T&tags=%5B%22a%22%5D", 400, qr/a JSON object of strings/,
    'tags an array');
bad("$T&" . join('&', map { "tag=k$_:v" } 1 .. 17), 400, qr/at most 16 tags/,
    'seventeen tags');
bad("$T&" . join('&', map { "x$_=1" } 1 .. 70), 400,
    qr/more than 64 query parameters/, 'seventy parameters');
bad("$T&operation=" . ('x' x 5000), 400, qr/longer than 4096 bytes/,
    'a 5000-byte parameter');
bad('/api/traces/xyz', 400, qr/cannot parse traceID/, 'trace id not hex');
bad('/api/traces/' . ('a' x 33), 400, qr/cannot parse traceID/,
    'trace id of 33 digits');
bad('/api/traces/0000', 400, qr/cannot parse traceID/, 'trace id all zero');
bad('/api/traces/%3Cscript%3E', 400, qr/cannot parse traceID/,
    'trace id <script>');
bad('/api/traces/' . new_trace_id(), 404, qr/trace not found/,
    'an unknown trace');
bad('/api/edgetrace/spans/zz', 400, qr/cannot parse spanID/, 'span id');
bad('/api/edgetrace/spans/' . new_span_id(), 404, qr/span not found/,
    'an unknown span');
bad('/api/dependencies?endTs=abc', 400, qr/param 'endTs'/, 'endTs=abc');
bad('/api/dependencies?lookback=-1', 400, qr/param 'lookback'/,
    'lookback=-1');
bad('/api/dependencies?endTs=99999999999999999', 400, qr/out of range/,
    'endTs out of range');
bad('/api/edgetrace/search', 400, qr/parameter 'q' is required/, 'no q');
bad('/api/edgetrace/search?q=a%00b', 400, qr/NUL/, 'q with a NUL');
bad('/api/edgetrace/search?q=' . ('w' x 300), 400, qr/longer than 256/,
    'q of 300 bytes');
bad('/api/edgetrace/red?step=5', 400, qr/whole number of minutes/,
    'step=5');
bad('/api/edgetrace/red?lookback=86400000000', 400, qr/more than 1440/,
    'a RED of too many points');
bad('/api/operations', 400, qr/parameter 'service' is required/,
    '/api/operations without service');
bad('/api/nowhere', 404, qr/no such endpoint/, 'an unknown path');
bad('/ui/nowhere.js', 404, qr/no such endpoint/,
    'a file the page does not have (the page is at /, docs/ui.md)');

my ($st, $j, $body, $raw) = $s->get('/api/services', method => 'POST',
                                    body => 'x=1');
$n4++;
is($st, 405, 'POST: 405');
is($raw->{headers}{allow}, 'GET, HEAD', '... Allow: GET, HEAD');

# a huge limit is lowered, not refused
($st, $j) = $s->get("$T&limit=100000000");
is($st, 200, 'limit=100000000: 200');
is($j->{limit}, 1000, '... lowered to 1000');

# hostile bytes in what was stored, and in the path
($st, $j, $body) = $s->get('/api/services');
is_deeply($j->{data}, ["svc\x{fffd}("], 'a service name of invalid UTF-8');
($st, $j, $body) = $s->get('/api/services/%FF%FE/operations');
is($st, 200, 'an operations path of invalid bytes: 200');
is_deeply($j->{data}, [], '... none');
($st, $j, $body) = $s->get("/api/traces/$tid");
ok(utf8::decode(my $copy = $body), 'the trace is valid UTF-8');
my $sp = $j->{data}[0]{spans}[0];
is($sp->{operationName}, "GET \x{fffd}\"\\\x01", 'the name, escaped');
my %tags = map { ($_->{key} => $_) } @{ $sp->{tags} };
is($tags{'url.path'}{value}, "/\x00\x7f\"</script>",
   'NUL, DEL, quote in a value');
like($body, qr{"/\\u0000\x7f\\"</script>"}, '... escaped as JSON');
is($tags{"key\x{fffd}"}{value}, 'v', 'a key of invalid UTF-8');
is_deeply($tags{'http.response.status_code'},
          { key => 'http.response.status_code', type => 'string',
            value => 'x500' }, 'a status code that is no number: a string');
is_deeply($tags{error}, { key => 'error', type => 'bool',
                          value => JSON::PP::true },
          'error=true on a failed span');

# a request line past libmicrohttpd's buffer: refused, and still serving
my $r = http_get($s->port, '/api/services?x=' . ('y' x 70000));
ok($r->{status} >= 400 || $r->{status} == 0,
   "a 70 kB URL refused ($r->{status})");
ok($s->proc->alive, 'serve still runs');

my $sdata = $s->wait_status(sub { 1 });
is($sdata->{counters}{badRequests}, $n4, 'every 4xx counted');
is($s->stop, 0, 'exit 0');

# --- options

my $refused = $s->dir . '/refused.db';
my $res = run_cli($redis, 'serve', '--db', $refused, '--listen',
                  '0.0.0.0:16686');
is($res->{rc}, 2, '--listen 0.0.0.0: exit 2');
like($res->{err}, qr/loopback addresses only/, '... loopback only');
ok(!-e $refused, '... checked before the database is created');
$res = run_cli($redis, 'serve', '--listen', 'localhost');
is($res->{rc}, 2, '--listen without a port: exit 2');
$res = run_cli($redis, 'serve', '--listen', '127.0.0.1:70000');
like($res->{err}, qr/the port is 1 to 65535/, '--listen port 70000');
$res = run_cli($redis, 'serve', '--db', $s->dir . '/x.db', '--listen',
               '127.0.0.1:' . $redis->port);
is($res->{rc}, 1, 'a port in use: exit 1');
like($res->{err}, qr/cannot listen on/, '... cannot listen');
$res = run_cli($redis, 'serve', '--bogus');
is($res->{rc}, 2, 'an unknown argument: exit 2');
$res = run_cli($redis, 'serve', '--db', '/nonexistent/dir/x.db');
is($res->{rc}, 1, 'a database that cannot be created: exit 1');
like($res->{err}, qr/cannot open/, '... said');
$res = run_cli($redis, 'serve', '--help');
is($res->{rc}, 0, '--help: exit 0');
like($res->{out}, qr/--listen ADDR:PORT/, '--help names --listen');

done_testing();
