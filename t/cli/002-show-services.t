#!/usr/bin/perl
# edgetrace show on a trace two nginx servers wrote: an edge proxying to an
# app tier that proxies to a backend; four spans, two services, joined by
# their parent links into one tree.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli);

my $redis = start_redis();
my $be = start_backend();
my $bp = $be->port;
my $app = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace_service_name app;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
    }
EOF
my $ap = $app->port;
my $edge = start_nginx(redis => $redis, ports => { APP => $ap },
                       conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace_service_name edge;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Trace-Id $edgetrace_trace_id always;
        location /shop/ {
            proxy_pass http://127.0.0.1:%%APP%%;
        }
    }
EOF

my $res = http_get($edge->port, '/shop/cart?id=7');
is($res->{status}, 200, 'the chain answers');
my $t = $res->{headers}{'x-trace-id'};
my @s = trace_spans($redis->port, $t, count => 4);
is(scalar(@s), 4, 'four spans in the stream');

my %by = map { ("$_->{'service.name'} $_->{kind}" => $_) } @s;
is($by{'edge client'}{parent_id}, $by{'edge server'}{span_id},
   'edge client under edge server');
is($by{'app server'}{parent_id}, $by{'edge client'}{span_id},
   'app server under edge client (the forwarded context)');
is($by{'app client'}{parent_id}, $by{'app server'}{span_id},
   'app client under app server');

my $r = run_cli($redis, 'show', $t);
is($r->{rc}, 0, 'show: exit 0');
my @l = split /\n/, $r->{out};
like($l[0], qr/^trace $t: 4 spans, 2 services, 0 errors, \d+\.\d{3}ms$/,
     'four spans, two services');
my $L = "\x{e2}\x{94}\x{94}\x{e2}\x{94}\x{80} ";
like($l[3], qr/^\+0\.000ms .* $by{'edge server'}{span_id}  \|=+ *\|  edge: GET \/shop\/ \[server\] GET \/shop\/cart\?id=7 200$/,
     'the edge server span is the root');
like($l[4], qr/ $by{'edge client'}{span_id}  \|[= ]+\|  ${L}edge: GET \[client\] GET http:\/\/127\.0\.0\.1:$ap\/shop\/cart\?id=7 200 peer=127\.0\.0\.1:$ap$/,
     'its client span one level down');
like($l[5], qr/ $by{'app server'}{span_id}  \|[= ]+\|     ${L}app: GET \/ \[server\] GET \/shop\/cart\?id=7 200$/,
     'the app tier\'s server span under it');
like($l[6], qr/ $by{'app client'}{span_id}  \|[= ]+\|        ${L}app: GET \[client\] GET http:\/\/127\.0\.0\.1:$bp\/shop\/cart\?id=7 200 peer=127\.0\.0\.1:$bp$/,
     'the app tier\'s client span at the bottom');
is(scalar(@l), 7, 'no orphans');

is(join('', $edge->crashes, $app->crashes), '', 'nginx did not crash');

done_testing();
