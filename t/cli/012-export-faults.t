#!/usr/bin/perl
# edgetrace export when things go wrong: the collector answering 5xx
# (nothing acknowledged before a 2xx, nothing lost), hanging, rejecting
# with 4xx; the collector down under --once (exit 4, the batch pending
# for the next run); entries that are not spans; Redis down and back.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Sys::Hostname ();
use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli start_cli start_stack request);
use Edgetrace::Sink qw(start_sink);

my ($redis, $b, $ngx) = start_stack();
my $sink = start_sink();
my $url = $sink->url('/v1/traces');
my $rc = $redis->client;

sub pending {
    my ($group) = @_;
    return $rc->xpending('edgetrace:spans', $group)->[0];
}

# entries pending for one consumer of the group
sub own_pending {
    my ($group, $consumer) = @_;
    return scalar @{ $rc->xpending('edgetrace:spans', $group, '-', '+',
                                   1000, $consumer) };
}

# the span ids of the last request the sink answered 2xx, sorted
sub last_ids {
    my ($last) = grep { $_->{status} =~ /^2/ } reverse $sink->requests;
    return sort map { $_->{spanId} } map { @{ $_->{spans} } }
           map { @{ $_->{scopeSpans} } } @{ $last->{doc}{resourceSpans} };
}

sub delivered {
    my %n;
    $n{$_->{spanId}}++ for $sink->spans;
    return \%n;
}

request($redis, $ngx, '/api/one');
request($redis, $ngx, '/local');
my @entries = stream_entries($redis->port, undef, count => 3);
my @ids = sort map { $_->{span_id} } @entries;

# --- 500, then 200: at least once, acknowledged only after the 2xx

$sink->respond(500);
my $p = start_cli($redis, 'export', '--otlp', $url, '--group', 'g500',
                  '--once');
$sink->wait_requests(2);
is(scalar(grep { $_->{status} == 500 } $sink->requests),
   scalar($sink->requests), '500: the sink answered 500 to every try');
is(pending('g500'), 3, '500: the three entries are pending, not acked');
is_deeply(delivered(), {}, '500: nothing delivered yet');
ok($p->alive, '500: the forwarder retries');

$sink->respond(200);
is($p->wait(30), 0, '500 then 200: exit 0');
is(pending('g500'), 0, '500 then 200: acknowledged after the 200');
is_deeply([sort keys %{ delivered() }], \@ids,
          '500 then 200: every span delivered');
is_deeply([values %{ delivered() }], [1, 1, 1], '... once each');
like($p->err, qr/^edgetrace: export: \Q$url\E answered HTTP 500: the sink was told to answer 500; nothing acknowledged, retrying in 250ms$/m,
     '500: reported, with the backoff');
like($p->err, qr/^edgetrace: export: \Q$url\E accepted the batch after \d+ failed attempts$/m,
     '500: the recovery reported');
like($p->err, qr/: 3 spans exported in 1 batch; /, '500: the counts');

# --- 400: reported, not acknowledged, exit 3; resent by the same consumer

$sink->respond(400);
my $r = run_cli($redis, 'export', '--otlp', $url, '--group', 'g400',
                '--consumer', 'c1', '--once');
is($r->{rc}, 3, '400: exit 3');
like($r->{err}, qr/^edgetrace: export: \Q$url\E rejected 3 spans: HTTP 400: the sink was told to answer 400; nothing acknowledged: the batch stays pending in group g400 for consumer c1 \(fix the collector or the URL, then run export again with --group g400 --consumer c1: it resends the batch first\)$/m,
     '400: reported clearly, with the collector\'s answer and the rerun');
is(pending('g400'), 3, '400: nothing acknowledged');

$sink->respond(200);
$r = run_cli($redis, 'export', '--otlp', $url, '--group', 'g400',
             '--consumer', 'c1', '--once');
is($r->{rc}, 0, '400 fixed: the same consumer resends what it left');
like($r->{err}, qr/: 3 spans exported in 1 batch; /, '400 fixed: counts');
is(pending('g400'), 0, '400 fixed: acknowledged');

# the default consumer name is the host's, the same on every run: a
# plain rerun resends what the rejected run left pending
my $host = Sys::Hostname::hostname();
$sink->respond(400);
$r = run_cli($redis, 'export', '--otlp', $url, '--group', 'g400d', '--once');
is($r->{rc}, 3, '400, default consumer: exit 3');
like($r->{err}, qr/; nothing acknowledged: the batch stays pending in group g400d for consumer \Q$host\E \(fix the collector or the URL, then run export again with --group g400d --consumer \Q$host\E: it resends the batch first\)$/m,
     '400, default consumer: the rerun named');
is(own_pending('g400d', $host), 3, '400: pending for the host\'s consumer');

$sink->respond(200);
$r = run_cli($redis, 'export', '--otlp', $url, '--group', 'g400d', '--once');
is($r->{rc}, 0, '400 fixed, plain rerun: exit 0');
is($r->{err}, "edgetrace: export: 3 spans exported in 1 batch; 0 invalid "
              . "entries skipped; 0 entries trimmed before delivery; 0 "
              . "entries taken over from other consumers\n",
   '400 fixed, plain rerun: the three resent as its own, not taken over');
is_deeply([last_ids()], \@ids, '400 fixed, plain rerun: the sink got them');
is(pending('g400d'), 0, '400 fixed, plain rerun: acknowledged');

# --- collector down, --once: gives up after its tries, exit 4, the batch
# stays pending; the next run delivers it

my $down = 'http://127.0.0.1:' . dead_port() . '/v1/traces';
$r = run_cli($redis, 'export', '--otlp', $down, '--group', 'gdown',
             '--once', { timeout => 90 });
is($r->{rc}, 4, 'collector down, --once: exit 4, not a hang');
my @tries = $r->{err} =~ /^edgetrace: export: \Q$down\E: .*; nothing acknowledged, retrying in (\d+)ms$/mg;
is("@tries", '250 500 1000 2000 4000', 'collector down: five retries');
like($r->{err}, qr/^edgetrace: export: \Q$down\E: .*; giving up after 6 attempts \(--once\); nothing acknowledged: the batch stays pending in group gdown for consumer \Q$host\E \(run export again with --group gdown --consumer \Q$host\E: it resends the batch first\)$/m,
     'collector down: giving up said, with the rerun');
like($r->{err}, qr/: 0 spans exported in 0 batches; /, 'collector down: counts');
is(own_pending('gdown', $host), 3, 'collector down: the three stay pending');

$r = run_cli($redis, 'export', '--otlp', $url, '--group', 'gdown', '--once');
is($r->{rc}, 0, 'collector back: exit 0');
like($r->{err}, qr/: 3 spans exported in 1 batch; .*; 0 entries taken over /,
     'collector back: the three delivered by the same consumer');
is_deeply([last_ids()], \@ids, 'collector back: the sink got them');
is(pending('gdown'), 0, 'collector back: acknowledged');

# --- OTLP partial success: reported and counted, acknowledged

$sink->respond('partial');
$r = run_cli($redis, 'export', '--otlp', $url, '--group', 'gpartial',
             '--once');
is($r->{rc}, 0, 'partial success: exit 0');
like($r->{err}, qr/^edgetrace: export: \Q$url\E accepted the batch but rejected 1 of its 3 spans: span too old$/m,
     'partial success: reported with the collector\'s reason');
like($r->{err}, qr/: 3 spans exported in 1 batch \(1 of them rejected by the collector\);/,
     'partial success: counted');
is(pending('gpartial'), 0, 'partial success: acknowledged (a resend would '
   . 'be rejected again)');
$sink->respond(200);

# --- a collector that hangs: timeout, retry

my $before = scalar $sink->requests;
$sink->respond('hang');
$p = start_cli($redis, 'export', '--otlp', $url, '--group', 'ghang',
               '--http-timeout', '300ms', '--once');
$sink->wait_requests($before + 2);
is(pending('ghang'), 3, 'hang: pending while the collector hangs');
$sink->respond(200);
is($p->wait(30), 0, 'hang: exit 0 once it answers');
like($p->err, qr/^edgetrace: export: \Q$url\E: Operation timed out after \d+ milliseconds.*; nothing acknowledged, retrying in 250ms$/m,
     'hang: the timeout reported');
is(pending('ghang'), 0, 'hang: acknowledged');

# --- entries that are not spans: skipped, counted, acknowledged

my $s = $entries[0];
my @f = @{ $s->{_fields} };
$rc->xadd('edgetrace:spans', '*', hello => 'world');
$rc->xadd('edgetrace:spans', '*', map { $_ eq '1' ? '2' : $_ } @f[0 .. 1],
          @f[2 .. $#f]);
$rc->xadd('edgetrace:spans', '*', grep { $_ ne 'span_id' && $_ ne $s->{span_id} } @f);
$rc->xadd('edgetrace:spans', '*', "\x00\xff", "\xfe\x00", v => "\x01");
request($redis, $ngx, '/local');
$rc->xadd('edgetrace:spans', '*', @f[0 .. 1], kind => 'sideways',
          @f[2 .. $#f]);

$r = run_cli($redis, 'export', '--otlp', $url, '--group', 'g500',
             '--once');
is($r->{rc}, 0, 'garbage: exit 0');
like($r->{err}, qr/^edgetrace: export: skipped 5 entries that are not edgetrace spans \(\d+-\d: a required field is missing; \d+-\d: not format version 1; \d+-\d: a required field is missing; \.\.\.\)$/m,
     'garbage: skipped, with the first reasons');
like($r->{err}, qr/: 1 span exported in 1 batch; 5 invalid entries skipped;/,
     'garbage: counted');
is(pending('g500'), 0, 'garbage: acknowledged, the group is not blocked');
is_deeply([$sink->problems], [], 'every payload valid');

# --- Redis down

my $dead = dead_port();
$r = run_cli($dead, 'export', '--otlp', $url, '--once');
is($r->{rc}, 1, 'Redis down, --once: exit 1');
like($r->{err}, qr/^edgetrace: export: cannot connect to Redis at redis:\/\/127\.0\.0\.1:$dead: Connection refused$/m,
     'Redis down: a clear error');

# the stream key holds something else: an error, not a retry loop
$rc->set('notastream', 'x');
$r = run_cli($redis, '--stream', 'notastream', 'export', '--otlp', $url);
is($r->{rc}, 1, 'WRONGTYPE: exit 1, even without --once');
like($r->{err}, qr/^edgetrace: export: cannot create group edgetrace-otlp on notastream: WRONGTYPE/m,
     'WRONGTYPE: said so');

# Redis gone and back: a running forwarder reconnects
my $r2 = start_redis();
my $port2 = $r2->port;
$p = start_cli($r2, 'export', '--otlp', $url, '--group', 'gback');
wait_until(sub { $p->err =~ /forwarding edgetrace:spans/ }, 10);
$r2->stop;
wait_until(sub { $p->err =~ /reconnecting/ }, 10);
$r2 = start_redis(port => $port2);
my $tid = new_trace_id();
$r2->client->xadd('edgetrace:spans', '*', v => 1, trace_id => $tid,
                  span_id => '00000000000000aa', name => 'back',
                  kind => 'server', start_ns => '1000', end_ns => '2000',
                  status => 'unset', 'service.name' => 'edge');
ok(wait_until(sub { grep { $_->{traceId} eq $tid } $sink->spans }, 20),
   'Redis back: the new span delivered');
like($p->err, qr/^edgetrace: export: Redis at redis:\/\/127\.0\.0\.1:$port2: .*; reconnecting$/m,
     'Redis gone: reported');
like($p->err, qr/^edgetrace: export: Redis at redis:\/\/127\.0\.0\.1:$port2 is back$/m,
     'Redis back: reported');

# the group deleted under a running forwarder: created again
$r2->client->xgroup('DESTROY', 'edgetrace:spans', 'gback');
my $tid2 = new_trace_id();
$r2->client->xadd('edgetrace:spans', '*', v => 1, trace_id => $tid2,
                  span_id => '00000000000000bb', name => 'again',
                  kind => 'server', start_ns => '1000', end_ns => '2000',
                  status => 'unset', 'service.name' => 'edge');
ok(wait_until(sub { grep { $_->{traceId} eq $tid2 } $sink->spans }, 20),
   'group deleted: created again, the new span delivered');
like($p->err, qr/^edgetrace: export: XREADGROUP on edgetrace:spans: NOGROUP /m,
     'group deleted: reported');
is($p->kill('TERM'), 0, 'SIGTERM: exit 0');
like($p->err, qr/: 3 spans exported in \d batch(es)?;/, 'SIGTERM: the counts');

is(join('', $ngx->crashes), '', 'nginx did not crash');

done_testing();
