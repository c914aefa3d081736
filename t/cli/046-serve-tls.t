#!/usr/bin/perl
# edgetrace serve from a Redis over TLS (docs/serve.md: the global
# options, docs/cli.md "TLS"): nginx exports over rediss://, serve reads
# the same Redis's TLS port with --redis rediss:// and --cacert, stores
# every span and answers for the trace; with a CA that did not sign the
# server's certificate it stores nothing and says why.  Certificates are
# made now (t/lib/Edgetrace/Tls.pm).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Serve qw(start_serve all_acked);
use Edgetrace::Tls qw(make_pki redis_tls_args);

my $pki = make_pki();
my $tp = free_port();
my $redis = start_redis(args => [redis_tls_args($pki, port => $tp)]);
my $url = "rediss://127.0.0.1:$tp";

my $ngx = start_nginx(ports => { TLS => $tp }, conf => <<"EOF");
    edgetrace_redis rediss://127.0.0.1:%%TLS%%;
    edgetrace_redis_ssl_trusted_certificate $pki->{ca};
    edgetrace_flush_interval 20ms;
    edgetrace_service_name edge;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Trace-Id \$edgetrace_trace_id always;
        location / { return 200 "ok\\n"; }
    }
EOF

my @t;
for my $i (1 .. 5) {
    my $r = http_get($ngx->port, "/tls/$i");
    push @t, $r->{headers}{'x-trace-id'} if $r->{status} == 200;
}
is(scalar @t, 5, 'five traced requests');
ok(wait_until(sub { $redis->client->xlen('edgetrace:spans') == 5 }, 10),
   'exported over TLS');

# --- serve over TLS

my $s = start_serve(undef, global => ['--redis', $url,
                                      '--cacert', $pki->{ca}]);
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == 5 }),
   'serve stored the five spans, read over TLS');
ok(all_acked($redis->client), 'and acknowledged them');

my ($status, $j) = $s->get("/api/traces/$t[0]");
is($status, 200, '/api/traces/{id}: 200');
is($j->{data}[0]{traceID}, $t[0], 'the trace');
is(scalar @{ $j->{data}[0]{spans} }, 1, 'its span');
my %tag = map { $_->{key} => $_->{value} } @{ $j->{data}[0]{spans}[0]{tags} };
is($tag{'url.path'}, '/tls/1', 'as nginx wrote it')
    or diag explain $j->{data}[0]{spans}[0];
$s->stop;

# --- a wrong CA: refused, with the reason, and retried (as Redis down)

$s = start_serve(undef, global => ['--redis', $url,
                                   '--cacert', $pki->{other_ca}]);
ok(wait_until(sub { $s->proc->err =~ /certificate verify failed/ }, 10),
   'a wrong CA: the reason') or diag $s->proc->err;
($status, $j) = $s->get('/api/edgetrace/status');
is($j->{data}{counters}{spansStored}, 0, 'a wrong CA: nothing stored')
    or diag explain $j;
$s->stop;

done_testing();
