#!/usr/bin/perl
# Hostile and oversized input through mod_edgetrace, under each MPM: the
# request is always answered, the entry keeps its exact set of fields
# whatever bytes a client sends, values are cut at EdgeTraceValueMaxSize,
# too many tracestate lines drop the tracestate (the parent stays), and
# requests httpd cannot read are not traced.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);

my $T = '4bf92f3577b34da6a3ce929d0e0e4736';
my $S = '00f067aa0ba902b7';

my $redis = start_redis();
my $b = start_backend();

for my $mpm (mpms()) {
    my $h = start_httpd(mpm => $mpm, redis => $redis, conf => <<'EOF');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTraceValueMaxSize 100
EdgeTrace On
EdgeTraceAttribute app.header "expr=%{HTTP:X-App}"
LimitRequestFieldSize 16380
ProxyPass /api http://127.0.0.1:%%BACKEND%%/api
<Location /edgetrace-status>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>
EOF

    # --- RESP and field injection attempts in every value a client sets
    my $evil = "\$3\r\nfoo*1\r\n\$1\r\nx trace_id 1 kind client";
    $evil =~ s/[\r\n]/ /g;    # HTTP itself forbids CR LF in values
    (my $q = $evil) =~ s/ /+/g;
    my ($r, @s) = get($h, "/api/x?q=$q", 2,
                      ['User-Agent', $evil], ['X-App', "$evil\xff\xfe"]);
    is($r->{status}, 200, "$mpm: answered");
    my ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv->{'user_agent.original'}, substr($evil, 0, 100),
       "$mpm: the user agent as sent, cut at 100 bytes");
    is($srv->{'app.header'}, substr("$evil\xff\xfe", 0, 100),
       "$mpm: an attribute with any bytes");
    is($srv->{'url.query'}, substr("q=$q", 0, 100), "$mpm: url.query raw");
    my %names;
    for (my $i = 0; $i < @{ $srv->{_fields} }; $i += 2) {
        $names{ $srv->{_fields}[$i] }++;
    }
    is(scalar(grep { $_ > 1 } values %names), 0,
       "$mpm: no field twice in the entry");
    is($srv->{kind}, 'server', "$mpm: kind not overridden");

    # --- a long URL: cut in the entry, served in full
    my $long = '/api/' . ('a' x 4000);
    ($r, @s) = get($h, $long, 2);
    is($r->{status}, 200, "$mpm: long URL answered");
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is(length $srv->{'url.path'}, 100, "$mpm: url.path cut at 100");
    my ($up) = $b->wait_requests(1);
    is(length $up->{uri}, length $long, "$mpm: the backend got all of it");

    # --- 40 tracestate lines: tracestate dropped, the parent kept
    ($r, @s) = get($h, '/api/ts', 2, ['traceparent', "00-$T-$S-01"],
                   map { ['tracestate', "k$_=v"] } 1 .. 40);
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv->{parent_id}, $S, "$mpm: 40 tracestate lines: parent kept");
    ok(!exists $srv->{tracestate}, "$mpm: 40 tracestate lines: dropped");
    ($up) = $b->wait_requests(1);
    is_deeply([Edgetrace::Test::Backend->header_values($up, 'tracestate')],
              [], "$mpm: nothing stale upstream");

    # --- a tracestate of 10 KB: cut to 512 by whole members
    my $big = join ',', map { sprintf 'k%04d=%s', $_, 'v' x 40 } 1 .. 20;
    ($r, @s) = get($h, '/api/big', 2, ['traceparent', "00-$T-$S-01"],
                   ['tracestate', $big]);
    ($up) = $b->wait_requests(1);
    my ($ts) = Edgetrace::Test::Backend->header_values($up, 'tracestate');
    ok(defined $ts && length $ts <= 512 && $ts =~ /^k0001=v+(,k\d{4}=v+)*$/,
       "$mpm: a 940-byte tracestate cut to 512 by whole members");

    # --- a request httpd refuses to read: answered 400, not traced
    my $m0 = metrics($h->port, '/edgetrace-status');
    $r = http_get($h->port, '/', raw => "GET /x HTTP/1.1\r\nHost: a\r\n"
                  . "Bad Header\r\n\r\n");
    is($r->{status}, 400, "$mpm: malformed request: 400");
    $r = http_get($h->port, '/api/after');
    is($r->{status}, 200, "$mpm: the next request is fine");
    my $m1 = metrics($h->port, '/edgetrace-status');
    is($m1->{edgetrace_requests_total} - $m0->{edgetrace_requests_total}, 1,
       "$mpm: the malformed request was not traced");

    # --- HTTP/1.0 without Host
    $r = http_get($h->port, '/', raw => "GET /api/old HTTP/1.0\r\n\r\n");
    is($r->{status}, 200, "$mpm: HTTP/1.0 answered");
    my $old;
    wait_until(sub {
        ($old) = grep { ($_->{'url.path'} // '') eq '/api/old' }
                 stream_entries($redis->port, undef, count => 1,
                                timeout => 0.2);
    }, 3);
    is($old && $old->{'network.protocol.version'}, '1.0',
       "$mpm: HTTP/1.0 recorded");

    $h->stop;
    is_deeply([$h->crashes], [], "$mpm: no crash");
}

sub get {
    my ($h, $path, $n, @headers) = @_;
    return traced_request($redis, $b, $h->port, $path, $n,
                          headers => \@headers);
}

done_testing();
