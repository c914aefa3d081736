#!/usr/bin/perl
# The tool on the demo chain: an nginx edge proxies to an
# httpd app tier that proxies to a backend.  show joins the four spans of
# both servers into one tree; export delivers httpd's spans as valid OTLP
# and Zipkin.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(start_httpd);
use Edgetrace::Cli qw(run_cli);
use Edgetrace::Sink qw(start_sink);

my $redis = start_redis();
my $be = start_backend();
my $bp = $be->port;

my $app = start_httpd(mpm => 'event', redis => $redis, conf => <<'EOF');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTraceServiceName app
EdgeTrace On
ProxyPass /orders http://127.0.0.1:%%BACKEND%%/orders
EOF
my $ap = $app->port;

my $edge = start_nginx(redis => $redis, ports => { APP => $ap },
                       conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 20ms;
    edgetrace_service_name edge;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Trace-Id $edgetrace_trace_id always;
        location /orders {
            proxy_pass http://127.0.0.1:%%APP%%;
        }
    }
EOF

my $res = http_get($edge->port, '/orders/42');
is($res->{status}, 200, 'answered through the chain');
my $t = $res->{headers}{'x-trace-id'};
my @s = trace_spans($redis->port, $t, count => 4);
is(scalar(@s), 4, 'four spans');
my %by = map { ("$_->{'service.name'} $_->{kind}" => $_) } @s;

my $r = run_cli($redis, 'show', $t);
is($r->{rc}, 0, 'show: exit 0');
is($r->{err}, '', 'show: nothing on stderr');
my @l = split /\n/, $r->{out};
like($l[0], qr/^trace $t: 4 spans, 2 services, 0 errors, /,
     'two services: nginx and httpd');
my $L = "\x{e2}\x{94}\x{94}\x{e2}\x{94}\x{80} ";
like($l[3], qr/ $by{'edge server'}{span_id}  \|[= ]+\|  edge: \S.* \[server\] GET \/orders\/42 200$/,
     'the nginx edge span is the root');
like($l[4], qr/ $by{'edge client'}{span_id}  \|[= ]+\|  ${L}edge: \S.* \[client\] GET http:\/\/127\.0\.0\.1:$ap\/orders\/42 200 peer=127\.0\.0\.1:$ap$/,
     'nginx\'s client span');
like($l[5], qr/ $by{'app server'}{span_id}  \|[= ]+\|     ${L}app: \S.* \[server\] GET \/orders\/42 200$/,
     'the httpd server span under it');
like($l[6], qr/ $by{'app client'}{span_id}  \|[= ]+\|        ${L}app: \S.* \[client\] GET http:\/\/127\.0\.0\.1:$bp\/orders\/42 200 peer=127\.0\.0\.1:$bp$/,
     'the httpd client span at the bottom');
is(scalar(@l), 7, 'no orphans');

# both formats accept what httpd wrote
my $sink = start_sink();
$r = run_cli($redis, 'export', '--otlp', $sink->url('/v1/traces'),
             '--once');
like($r->{err}, qr/: 4 spans exported in 1 batch; 0 invalid/, 'OTLP: four');
$r = run_cli($redis, 'export', '--zipkin', $sink->url('/api/v2/spans'),
             '--once');
like($r->{err}, qr/: 4 spans exported in 1 batch; 0 invalid/, 'Zipkin: four');
is_deeply([$sink->problems], [], 'every payload valid');
my @z = grep { ($_->{localEndpoint}{serviceName} // '') eq 'app' }
        $sink->spans;
is(scalar(@z), 2, 'Zipkin: the two httpd spans, service app');

is(join('', $edge->crashes, $app->crashes), '', 'no crash');

done_testing();
