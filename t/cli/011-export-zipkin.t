#!/usr/bin/perl
# edgetrace export --zipkin: nginx-produced spans as Zipkin v2 JSON, every
# field checked against the entry it came from.

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

my $bad = "x\xff\xc3\xa9";
my $bad_fixed = "x\x{fffd}\x{e9}";

sub text {
    my ($v) = @_;
    return $bad_fixed if $v eq $bad;
    my $copy = $v;
    return Encode::decode('UTF-8', $copy, Encode::FB_CROAK());
}

# the Zipkin span an entry must become
sub expected {
    my ($e) = @_;
    my (%tags, @ann);
    my @f = @{ $e->{_fields} };
    my $ts = substr($e->{start_ns}, 0, -3) + 0;
    while (@f) {
        my ($k, $v) = splice @f, 0, 2;
        next if $known{$k};
        if ($k =~ /^event\.\d+\z/) {
            push @ann, { timestamp => $ts, value => $v };
            next;
        }
        $tags{$k} = text($v);
    }
    $tags{error} = $e->{'error.type'} if $e->{status} eq 'error';
    my $d = int(($e->{end_ns} - $e->{start_ns}) / 1000);
    my %s = (traceId => $e->{trace_id}, id => $e->{span_id},
             name => $e->{name}, kind => uc $e->{kind}, timestamp => $ts,
             duration => $d || 1,
             localEndpoint => { serviceName => $e->{'service.name'} },
             tags => \%tags);
    $s{parentId} = $e->{parent_id} if exists $e->{parent_id};
    $s{annotations} = \@ann if @ann;
    if ($e->{kind} eq 'client') {
        $s{remoteEndpoint} = { ipv4 => $e->{'server.address'},
                               port => $e->{'server.port'} };
    }
    return \%s;
}

request($redis, $ngx, '/api/z?y=2');
request($redis, $ngx, '/fail');
request($redis, $ngx, '/dead');
request($redis, $ngx, '/local', headers => [['User-Agent', $bad]]);
my @entries = stream_entries($redis->port, undef, count => 6);
is(scalar(@entries), 6, 'six spans in the stream');

my $r = run_cli($redis, 'export', '--zipkin', $sink->url('/api/v2/spans'),
                '--batch', '4', '--once');
is($r->{rc}, 0, 'export --zipkin --once: exit 0');
like($r->{err}, qr/: 6 spans exported in 2 batches; 0 invalid entries/,
     'export: the counts');

my @req = $sink->requests;
is(scalar(@req), 2, 'two requests of at most 4 spans');
is_deeply([map { scalar @{ $_->{doc} } } @req], [4, 2], '4 and 2 spans');
is_deeply([map { $_->{status} } @req], [202, 202], 'answered 202');
is_deeply([$sink->problems], [], 'the payloads are valid Zipkin v2 JSON');

my %got = map { $_->{id} => $_ } $sink->spans;
is(scalar(keys %got), 6, 'six spans delivered');
for my $e (@entries) {
    is_deeply($got{$e->{span_id}}, expected($e),
              "span $e->{span_id} ($e->{kind} "
              . ($e->{'url.path'} // $e->{'url.full'}) . ") exact");
}

my ($dead) = grep { ($_->{'url.full'} // '') =~ m{/dead} } @entries;
my $z = $got{$dead->{span_id}};
is($z->{kind}, 'CLIENT', 'client span: CLIENT');
is($z->{remoteEndpoint}{ipv4}, '127.0.0.1', 'remoteEndpoint: the peer');
is($z->{tags}{error}, $dead->{'error.type'}, 'error tag');
like($z->{annotations}[0]{value}, qr/^upstream\.try peer=127\.0\.0\.1:\d+ status=- /,
     'the try as an annotation');

my $pending = $redis->client->xpending('edgetrace:spans', 'edgetrace-zipkin');
is($pending->[0], 0, 'nothing pending in the default Zipkin group');

is(join('', $ngx->crashes), '', 'nginx did not crash');

done_testing();
