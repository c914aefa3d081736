#!/usr/bin/perl
# mod_edgetrace and mod_proxy, under each MPM: balancer failover is one
# client span whose tries are events (http.request.resend_count = tries -
# 1); a dead backend is a client span without response; a backend 5xx is an
# error on both spans; subrequests (SSI include virtual) get their own
# client span; internal redirects (mod_rewrite [PT], ErrorDocument,
# DirectoryIndex) stay one server span.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);

my $redis = start_redis();
my $b = start_backend();

for my $mpm (mpms()) {
    my $h = start_httpd(mpm => $mpm, redis => $redis,
                        files => {
                            'page.shtml' =>
                                "A<!--#include virtual=\"/api/sub\" -->B\n",
                            'dir/index.html' => "index\n",
                        },
                        conf => <<'EOF');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTrace On

<Proxy balancer://pool>
    BalancerMember http://127.0.0.1:%%DEAD%% retry=0
    BalancerMember http://127.0.0.1:%%BACKEND%% retry=0
</Proxy>
ProxyPass /lb balancer://pool/lb
ProxyPass /api http://127.0.0.1:%%BACKEND%%/api
ProxyPass /dead http://127.0.0.1:%%DEAD%%/dead
ProxyPass /s500 http://127.0.0.1:%%BACKEND%%/status/500
ProxyPass /slow http://127.0.0.1:%%BACKEND%%/slow

<Location /edgetrace-status>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>

RewriteEngine On
RewriteRule ^/pt/(.*)$ /api/$1 [PT]

<Location /missing>
    ErrorDocument 404 /api/notfound
</Location>
<Directory "%%PREFIX%%/htdocs">
    Options +Includes
    DirectoryIndex index.html
    <Files "*.shtml">
        SetOutputFilter INCLUDES
    </Files>
</Directory>
EOF

    # --- failover: the first member is dead, the second answers
    my ($r, @s) = get($h, '/lb/x', 2);
    is($r->{status}, 200, "$mpm: failover answered");
    my ($cl) = grep { $_->{kind} eq 'client' } @s;
    my ($srv) = grep { $_->{kind} eq 'server' } @s;
    my $dead = $h->ports->{DEAD};
    my $live = $b->port;
    is($cl->{'http.request.resend_count'}, 1, "$mpm: one resend");
    like($cl->{'event.0'} // '', qr/^upstream\.try peer=127\.0\.0\.1:$dead status=- /,
         "$mpm: the first try: the dead member, no response");
    like($cl->{'event.1'} // '', qr/^upstream\.try peer=127\.0\.0\.1:$live status=200 /,
         "$mpm: the second try: the live member");
    is($cl->{'server.port'}, $live, "$mpm: the last peer");
    is($cl->{'http.response.status_code'}, 200, "$mpm: its status");
    is($cl->{status}, 'unset', "$mpm: the exchange succeeded");
    my ($up) = $b->wait_requests(1);
    my ($v, $t, $sp) = parse_traceparent(one($up, 'traceparent'));
    is($sp, $cl->{span_id}, "$mpm: the backend saw the client span");

    like($cl->{'event.0'} // '', qr/ header_ms=- /,
         "$mpm: no response, no header time");

    # --- a slow backend: the try's header time
    ($r, @s) = get($h, '/slow/300', 2);
    ($cl) = grep { $_->{kind} eq 'client' } @s;
    my ($hms, $rms) = ($cl->{'event.0'} // '')
                      =~ /header_ms=(\d+) response_ms=(\d+)$/;
    ok(defined $hms && $hms >= 290 && $rms >= $hms,
       "$mpm: header_ms of a slow backend: " . ($cl->{'event.0'} // ''));

    # --- a dead backend without balancer
    ($r, @s) = get($h, '/dead', 2);
    ok($r->{status} == 503 || $r->{status} == 502, "$mpm: dead backend: 50x");
    ($cl) = grep { $_->{kind} eq 'client' } @s;
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($cl->{'error.type'}, 'no_response', "$mpm: no response");
    is($cl->{status}, 'error', "$mpm: client span error");
    ok(!exists $cl->{'http.response.status_code'}, "$mpm: no status code");
    is($srv->{status}, 'error', "$mpm: server span error");
    is($srv->{'error.type'}, $r->{status}, "$mpm: error.type the status");

    # --- a backend 500
    ($r, @s) = get($h, '/s500', 2);
    is($r->{status}, 500, "$mpm: backend 500 passed on");
    ($cl) = grep { $_->{kind} eq 'client' } @s;
    is($cl->{'http.response.status_code'}, 500, "$mpm: upstream 500");
    is($cl->{'error.type'}, '500', "$mpm: error.type 500");

    # --- SSI subrequest: a client span of its own, child of the server
    ($r, @s) = get($h, '/page.shtml', 2);
    like($r->{body}, qr/^A.*B$/s, "$mpm: SSI page served");
    is(scalar(grep { $_->{kind} eq 'server' } @s), 1,
       "$mpm: SSI: one server span");
    ($cl) = grep { $_->{kind} eq 'client' } @s;
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($cl && $cl->{parent_id}, $srv->{span_id}, "$mpm: subrequest client span");
    ($up) = $b->wait_requests(1);
    ($v, $t, $sp) = parse_traceparent(one($up, 'traceparent'));
    is($sp, $cl && $cl->{span_id}, "$mpm: the subrequest's backend saw it");
    is($up->{uri}, '/api/sub', "$mpm: SSI: the subrequest's path");

    # --- mod_rewrite [PT]: one server span, one client span
    ($r, @s) = get($h, '/pt/users', 2);
    is($r->{status}, 200, "$mpm: [PT] proxied");
    is(scalar @s, 2, "$mpm: [PT]: two spans");
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv->{'url.path'}, '/pt/users', "$mpm: [PT]: the client's path");

    # --- ErrorDocument to a proxied URL: one server span
    ($r, @s) = get($h, '/missing', 2);
    is(scalar(grep { $_->{kind} eq 'server' } @s), 1,
       "$mpm: ErrorDocument: one server span");
    is(scalar(grep { $_->{kind} eq 'client' } @s), 1,
       "$mpm: ErrorDocument: one client span");
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv->{'url.path'}, '/missing', "$mpm: ErrorDocument: client's path");
    is($srv->{'http.response.status_code'}, $r->{status},
       "$mpm: ErrorDocument: the status the client got");

    # --- DirectoryIndex: an internal redirect, one server span
    ($r, @s) = get($h, '/dir/', 1);
    is($r->{body}, "index\n", "$mpm: DirectoryIndex served");
    Time::HiRes::sleep(0.2);
    @s = stream_entries($redis->port, undef, count => 1, timeout => 1);
    is(scalar @s, 1, "$mpm: DirectoryIndex: one span");

    my $m = wait_counters($h);
    is($m->{edgetrace_spans_total},
       $m->{edgetrace_spans_exported_total}, "$mpm: every span exported");

    $h->stop;
    is_deeply([$h->crashes], [], "$mpm: no crash");
}

sub get {
    my ($h, $path, $n) = @_;
    return traced_request($redis, $b, $h->port, $path, $n);
}

sub one {
    my ($up, $name) = @_;
    my @v = Edgetrace::Test::Backend->header_values($up, $name);
    return @v == 1 ? $v[0] : 'COUNT=' . scalar(@v);
}

sub wait_counters {
    my ($h) = @_;
    my $m = {};
    wait_until(sub {
        $m = metrics($h->port, '/edgetrace-status');
        ($m->{edgetrace_spans_queued} // 1) == 0;
    }, 3);
    return $m;
}

done_testing();
