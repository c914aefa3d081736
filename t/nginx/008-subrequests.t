#!/usr/bin/perl
# Subrequests that reach an upstream (auth_request, mirror, SSI include)
# get their own client span, child of the main server span; their upstream
# sees that span's id, the main upstream request the main client span's id;
# still one server span per client request.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, files => {
        'page.html' => "before\n<!--# include virtual=\"/ssi-sub/frag\" -->"
                       . "\nafter\n",
        'plain.html' => "authorized\n",
    }, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;
        root %%PREFIX%%/html;

        location /auth-only {
            auth_request /auth;
            rewrite ^ /plain.html break;
        }
        location /authed {
            auth_request /auth;
            proxy_pass http://127.0.0.1:%%BACKEND%%/main;
        }
        location /denied {
            auth_request /auth-deny;
            proxy_pass http://127.0.0.1:%%BACKEND%%/main;
        }
        location /mirrored {
            mirror /mirror;
            proxy_pass http://127.0.0.1:%%BACKEND%%/main;
        }
        location /both {
            auth_request /auth;
            mirror /mirror;
            proxy_pass http://127.0.0.1:%%BACKEND%%/main;
        }
        location = /auth {
            internal;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_pass http://127.0.0.1:%%BACKEND%%/authcheck;
        }
        location = /auth-deny {
            internal;
            proxy_pass http://127.0.0.1:%%BACKEND%%/status/401;
        }
        location = /mirror {
            internal;
            proxy_pass http://127.0.0.1:%%BACKEND%%/mirror-copy;
        }
        location /ssi {
            ssi on;
            rewrite ^ /page.html break;
        }
        location /ssi-sub/ {
            proxy_pass http://127.0.0.1:%%BACKEND%%/fragment/;
        }
    }
EOF

# sends a request, waits for n upstream requests; returns (response,
# { uri prefix => [traceparents] }, server spans, client spans)
sub run {
    my ($path, $nreq, $nspans) = @_;
    $b->clear;
    my $r = http_get($ngx->port, $path, headers => [['X-Test', 'y']]);
    my @req = $b->wait_requests($nreq);
    my %tp;
    for my $q (@req) {
        (my $u = $q->{uri}) =~ s/\?.*//;
        push @{ $tp{$u} },
             Edgetrace::Test::Backend->header_values($q, 'traceparent');
    }
    my ($any) = map { @$_ } values %tp;
    my (undef, $trace) = parse_traceparent($any);
    my @s = trace_spans($redis->port, $trace, count => $nspans);
    # and nothing more comes for this trace
    Time::HiRes::sleep(0.2);
    @s = trace_spans($redis->port, $trace, count => $nspans, timeout => 0);
    return ($r, \%tp,
            [grep { $_->{kind} eq 'server' } @s],
            [grep { $_->{kind} eq 'client' } @s], $trace);
}

sub client_for {
    my ($clients, $tp) = @_;
    my (undef, undef, $id) = parse_traceparent($tp);
    my @c = grep { $_->{span_id} eq $id } @$clients;
    return $c[0];
}

# --- auth_request to a proxied location, the main request proxied too
my ($r, $tp, $servers, $clients) = run('/authed', 2, 3);
is($r->{status}, 200, 'auth_request: answered');
is(scalar @{ $servers }, 1, 'auth_request: one server span');
is(scalar @{ $clients }, 2, 'auth_request: two client spans');
my $server = $servers->[0];
is(scalar @{ $tp->{'/authcheck'} || [] }, 1, 'auth upstream: one traceparent');
is(scalar @{ $tp->{'/main'} || [] }, 1, 'main upstream: one traceparent');
my $auth = client_for($clients, $tp->{'/authcheck'}[0]);
my $main = client_for($clients, $tp->{'/main'}[0]);
ok($auth, 'auth upstream saw a client span id of the trace');
ok($main, 'main upstream saw a client span id of the trace');
isnt($tp->{'/authcheck'}[0], $tp->{'/main'}[0], 'different ids');
is($auth->{parent_id}, $server->{span_id}, 'auth client span: child of server');
is($main->{parent_id}, $server->{span_id}, 'main client span: child of server');
like($auth->{'url.full'}, qr{/authcheck$}, 'auth client span: url.full');
like($main->{'url.full'}, qr{/main$}, 'main client span: url.full');
is($server->{name}, 'GET /authed', 'server span: the main location');
is($server->{'url.path'}, '/authed', 'server span: url.path');

# --- auth_request alone
($r, $tp, $servers, $clients) = run('/auth-only', 1, 2);
is($r->{status}, 200, 'auth only: answered');
is(scalar @$servers, 1, 'auth only: one server span');
is(scalar @$clients, 1, 'auth only: one client span');
is($clients->[0]{span_id}, (parse_traceparent($tp->{'/authcheck'}[0]))[2],
   'auth only: upstream saw the client span id');
is($clients->[0]{parent_id}, $servers->[0]{span_id},
   'auth only: child of the server span');

# --- auth_request denial
($r, $tp, $servers, $clients) = run('/denied', 1, 2);
is($r->{status}, 401, 'denied: 401');
is(scalar @$clients, 1, 'denied: one client span');
is($clients->[0]{status}, 'error', 'denied: the auth exchange failed');
is($clients->[0]{'error.type'}, '401', 'denied: error.type 401');
is($servers->[0]{'http.response.status_code'}, '401', 'denied: server 401');
is($servers->[0]{status}, 'unset', 'denied: server span unset');

# --- mirror
($r, $tp, $servers, $clients) = run('/mirrored', 2, 3);
is($r->{status}, 200, 'mirror: answered');
is(scalar @$servers, 1, 'mirror: one server span');
is(scalar @$clients, 2, 'mirror: two client spans');
is(scalar @{ $tp->{'/mirror-copy'} || [] }, 1, 'mirror upstream: one traceparent');
is(scalar @{ $tp->{'/main'} || [] }, 1, 'main upstream: one traceparent');
my $mir = client_for($clients, $tp->{'/mirror-copy'}[0]);
$main = client_for($clients, $tp->{'/main'}[0]);
ok($mir && $main && $mir != $main, 'mirror: each upstream saw its own span');
is($mir->{parent_id}, $servers->[0]{span_id}, 'mirror: child of server');
is($main->{parent_id}, $servers->[0]{span_id}, 'main: child of server');

# --- both: three upstream requests, three ids, no corruption
($r, $tp, $servers, $clients) = run('/both', 3, 4);
is($r->{status}, 200, 'both: answered');
is(scalar @$servers, 1, 'both: one server span');
is(scalar @$clients, 3, 'both: three client spans');
my %seen;
for my $u ('/authcheck', '/mirror-copy', '/main') {
    is(scalar @{ $tp->{$u} || [] }, 1, "both: $u got one traceparent");
    my $c = client_for($clients, $tp->{$u}[0]);
    ok($c, "both: $u saw a client span of the trace");
    like($c->{'url.full'}, qr{\Q$u\E$}, "both: the span of $u has its url.full")
        if $c;
    $seen{ $c->{span_id} }++ if $c;
}
is(scalar keys %seen, 3, 'both: three distinct ids');

# --- an SSI include
($r, $tp, $servers, $clients) = run('/ssi', 1, 2);
is($r->{status}, 200, 'ssi: answered');
like($r->{body}, qr/before\n.*after/s, 'ssi: the page');
is(scalar @$servers, 1, 'ssi: one server span');
is(scalar @$clients, 1, 'ssi: one client span');
is($clients->[0]{span_id}, (parse_traceparent($tp->{'/fragment/frag'}[0]))[2],
   'ssi: upstream saw the include\'s client span id');
is($clients->[0]{parent_id}, $servers->[0]{span_id},
   'ssi: child of the server span');

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
