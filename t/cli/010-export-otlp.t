#!/usr/bin/perl
# edgetrace export --otlp: nginx-produced spans delivered to an OTLP/HTTP
# JSON collector, every field of every span checked against the entry it
# came from; raw bytes in attributes stay valid JSON; the group ends with
# nothing pending.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Encode ();
use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli start_stack request);
use Edgetrace::Sink qw(start_sink);

my ($redis, $b, $ngx) = start_stack();
my $sink = start_sink();

my %known = map { $_ => 1 } qw(v trace_id span_id parent_id name kind
                               start_ns end_ns status service.name
                               tracestate);
my %int = map { $_ => 1 } qw(http.response.status_code server.port
                             client.port http.request.resend_count
                             network.peer.port);

# raw bytes as the JSON must carry them: valid UTF-8 decoded, the one
# invalid value of the test as it must be repaired
my $bad_ua = "bad\xff\xfe \xc3\xa9 \xc0\xaf \xed\xa0\x80 \xe2\x82 end";
my $bad_ua_fixed = "bad\x{fffd}\x{fffd} \x{e9} \x{fffd}\x{fffd} "
                 . "\x{fffd}\x{fffd}\x{fffd} \x{fffd}\x{fffd} end";

sub text {
    my ($v) = @_;
    return $bad_ua_fixed if $v eq $bad_ua;
    my $copy = $v;
    return Encode::decode('UTF-8', $copy, Encode::FB_CROAK());
}

sub kv {
    my ($k, $v, $as_int) = @_;
    $v = text($v);
    return { key => $k, value => ($as_int && $v =~ /^\d+\z/
                                  ? { intValue => $v }
                                  : { stringValue => $v }) };
}

# the OTLP span an entry must become
sub expected {
    my ($e) = @_;
    my (@attrs, @events);
    my @f = @{ $e->{_fields} };
    while (@f) {
        my ($k, $v) = splice @f, 0, 2;
        next if $known{$k};
        if ($k =~ /^event\.\d+\z/) {
            my ($name, @pairs) = split / /, $v;
            push @events, {
                name => $name, timeUnixNano => $e->{start_ns},
                attributes => [ map { kv($_->[0], $_->[1],
                                         $_->[0] ne 'peer') }
                                grep { $_->[1] ne '-' }
                                map { [split /=/, $_, 2] } @pairs ] };
            next;
        }
        push @attrs, kv($k, $v, $int{$k});
    }
    my %s = (traceId => $e->{trace_id}, spanId => $e->{span_id},
             name => $e->{name}, kind => $e->{kind} eq 'server' ? 2 : 3,
             startTimeUnixNano => $e->{start_ns},
             endTimeUnixNano => $e->{end_ns}, attributes => \@attrs,
             status => $e->{status} eq 'error'
                       ? { code => 2, message => $e->{'error.type'} }
                       : { code => 0 });
    $s{parentSpanId} = $e->{parent_id} if exists $e->{parent_id};
    $s{traceState} = $e->{tracestate} if exists $e->{tracestate};
    $s{events} = \@events if @events;
    return \%s;
}

# traffic: proxied, local, 5xx, a refused upstream (an event with
# status 502), continued context with tracestate, raw bytes in headers
my $tc = new_trace_id();
my @traces = (
    request($redis, $ngx, '/api/a?x=1'),
    request($redis, $ngx, '/local'),
    request($redis, $ngx, '/fail'),
    request($redis, $ngx, '/dead'),
    request($redis, $ngx, '/api/ctx', headers => [
        ['traceparent', "00-$tc-" . new_span_id() . '-01'],
        ['tracestate', 'vendor=abc,other=x']]),
    request($redis, $ngx, '/local', headers => [
        ['User-Agent', $bad_ua]]),
    request($redis, $ngx, '/retry/r'),
);
my @entries = stream_entries($redis->port, undef, count => 11);
is(scalar(@entries), 11, 'eleven spans in the stream');

my $r = run_cli($redis, 'export', '--otlp', $sink->url('/v1/traces'),
                '--once');
is($r->{rc}, 0, 'export --once: exit 0');
is($r->{out}, '', 'export: nothing on stdout');
is($r->{err}, "edgetrace: export: 11 spans exported in 1 batch; 0 invalid "
              . "entries skipped; 0 entries trimmed before delivery; 0 "
              . "entries taken over from other consumers\n",
   'export: the counts on stderr');

my @req = $sink->requests;
is(scalar(@req), 1, 'one request');
is($req[0]{path}, '/v1/traces', 'POST to the URL as given');
is($req[0]{content_type}, 'application/json', 'Content-Type: JSON');
is_deeply([$sink->problems], [], 'the payload is valid OTLP JSON');

my $doc = $req[0]{doc};
is(scalar(@{ $doc->{resourceSpans} }), 1, 'one resource: one service');
is_deeply($doc->{resourceSpans}[0]{resource},
          { attributes => [{ key => 'service.name',
                             value => { stringValue => 'edge' } }] },
          'service.name on the resource');
is_deeply($doc->{resourceSpans}[0]{scopeSpans}[0]{scope},
          { name => 'edgetrace', version => '0.1.0' }, 'the scope');

my %got = map { $_->{spanId} => $_ } $sink->spans;
is(scalar(keys %got), 11, 'eleven spans delivered');
for my $e (@entries) {
    my $g = $got{$e->{span_id}};
    delete $g->{_service} if $g;
    is_deeply($g, expected($e), "span $e->{span_id} ($e->{kind} "
              . ($e->{'url.path'} // $e->{'url.full'}) . ") exact");
}

# the typed values, spelled out once
my ($dead) = grep { ($_->{'url.full'} // '') =~ m{/dead} } @entries;
my ($failed) = grep { ($_->{'url.path'} // '') eq '/dead' } @entries;
my $g = expected($failed);
my %a = map { $_->{key} => $_->{value} } @{ $g->{attributes} };
is_deeply($a{'http.response.status_code'}, { intValue => '502' },
          'status code as intValue');
$g = expected($dead);
%a = map { $_->{key} => $_->{value} } @{ $g->{attributes} };
like($a{'server.port'}{intValue}, qr/^\d+$/, 'port as intValue');
is($got{$dead->{span_id}}{kind}, 3, 'client span: kind 3');
is($got{$dead->{span_id}}{status}{code}, 2, 'error: status code 2');
is($got{$dead->{span_id}}{events}[0]{name}, 'upstream.try',
   'the try as an event');
my ($retry) = grep { ($_->{'url.full'} // '') =~ m{/retry/r} } @entries;
my %ra = map { $_->{key} => $_->{value} }
         @{ $got{$retry->{span_id}}{attributes} };
is_deeply($ra{'http.request.resend_count'}, { intValue => '1' },
          'resend_count as intValue');
is(scalar(@{ $got{$retry->{span_id}}{events} }), 2, 'two tries, two events');

# docs/cli.md names exactly the attributes of nginx's spans sent as intValue
my %typed;
for my $s (values %got) {
    $typed{$_->{key}} = 1
        for grep { exists $_->{value}{intValue} } @{ $s->{attributes} };
}
open my $fh, '<', "$FindBin::Bin/../../docs/cli.md" or die "docs/cli.md: $!";
my $readme = do { local $/; <$fh> };
my ($said) = $readme =~ /^OTLP\/HTTP JSON .*?0 otherwise;\s*(.*?)\s+as `intValue`/ms;
is_deeply([sort(($said // '') =~ /`([^`]+)`/g)], [sort keys %typed],
          'docs/cli.md: the attributes it lists as intValue are the ones sent so');

# raw bytes: invalid UTF-8 replaced by U+FFFD, valid UTF-8 kept
my ($ua) = grep { ($_->{'user_agent.original'} // '') =~ /^bad/ } @entries;
my ($uav) = map { $_->{value}{stringValue} }
            grep { $_->{key} eq 'user_agent.original' }
            @{ $got{$ua->{span_id}}{attributes} };
is($uav, $bad_ua_fixed, 'invalid UTF-8 (stray, overlong, surrogate, truncated) replaced');

# acknowledged: nothing pending, the group read everything
my $rc = $redis->client;
my $pending = $rc->xpending('edgetrace:spans', 'edgetrace-otlp');
is($pending->[0], 0, 'nothing pending in the group');

# a second run: nothing new, nothing sent
$r = run_cli($redis, 'export', '--otlp', $sink->url('/v1/traces'),
             '--once');
is($r->{rc}, 0, 'second export: exit 0');
like($r->{err}, qr/: 0 spans exported in 0 batches;/,
     'second export: nothing new');
is(scalar($sink->requests), 1, 'second export: no request');

# new spans: only those
request($redis, $ngx, '/local');
$r = run_cli($redis, 'export', '--otlp', $sink->url('/v1/traces'),
             '--once');
like($r->{err}, qr/: 1 span exported in 1 batch;/, 'then only the new span');

# a new group starts at the beginning of the stream; --batch splits
$r = run_cli($redis, 'export', '--otlp', $sink->url('/v1/traces'),
             '--group', 'again', '--batch', '4', '--once');
like($r->{err}, qr/: 12 spans exported in 3 batches;/,
     'a new group: the whole stream, in batches of 4');
is(scalar($sink->requests), 5, 'three more requests');
is_deeply([$sink->problems], [], 'all valid');

# --header: sent with every request (tokens, tenants)
request($redis, $ngx, '/local');
$r = run_cli($redis, 'export', '--otlp', $sink->url('/v1/traces'),
             '--header', 'Authorization: Bearer t0k',
             '--header=X-Scope-OrgID: tenant1', '--once');
is($r->{rc}, 0, '--header: exit 0');
my $last = ($sink->requests)[-1];
is($last->{headers}{authorization}, 'Bearer t0k', '--header: Authorization');
is($last->{headers}{'x-scope-orgid'}, 'tenant1', '--header: a second one');
is($last->{content_type}, 'application/json', '--header: Content-Type kept');
$r = run_cli($redis, 'export', '--otlp', $sink->url('/v1/traces'),
             '--header', 'no colon', '--once');
is($r->{rc}, 2, '--header without a colon: usage error');

# --from-now: a new group that starts with new entries only
$r = run_cli($redis, 'export', '--otlp', $sink->url('/v1/traces'),
             '--group', 'fresh', '--from-now', '--once');
like($r->{err}, qr/: 0 spans exported in 0 batches;/,
     '--from-now: nothing old');

# the consumer leaves the group when it has nothing pending
my $cons = $rc->xinfo('CONSUMERS', 'edgetrace:spans', 'edgetrace-otlp');
is(scalar(@$cons), 0, 'finished consumers left the group');

# ports an edgetrace_attribute adds: intValue when they are numbers
my $tid = new_trace_id();
$rc->xadd('typed', '*', v => 1, trace_id => $tid, span_id => new_span_id(),
          name => 'GET /', kind => 'server', start_ns => '1000',
          end_ns => '2000', status => 'unset', 'service.name' => 'edge',
          'client.port' => '50123', 'network.peer.port' => 'none');
$r = run_cli($redis, '--stream', 'typed', 'export', '--otlp',
             $sink->url('/v1/traces'), '--once');
my ($ts) = grep { $_->{traceId} eq $tid } $sink->spans;
is_deeply({ map { $_->{key} => $_->{value} } @{ $ts->{attributes} } },
          { 'client.port' => { intValue => '50123' },
            'network.peer.port' => { stringValue => 'none' } },
          'client.port as intValue, a port that is not a number a string');

# usage
$r = run_cli($redis, 'export', '--once');
is($r->{rc}, 2, 'no collector: usage error');
like($r->{err}, qr/give one collector, --otlp URL or --zipkin URL/,
     'no collector: said so');
$r = run_cli($redis, 'export', '--otlp', 'ftp://x', '--once');
is($r->{rc}, 2, 'not http: usage error');
$r = run_cli($redis, 'export', '--otlp', $sink->url, '--batch', '0');
is($r->{rc}, 2, '--batch 0: usage error');
$r = run_cli($redis, 'export', '--help');
is($r->{rc}, 0, 'export --help: exit 0');
like($r->{out}, qr/^Usage: edgetrace \[GLOBAL OPTIONS\] export \(--otlp URL \| --zipkin URL\)/,
     'export --help: usage');

is(join('', $ngx->crashes), '', 'nginx did not crash');

done_testing();
