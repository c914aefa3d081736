#!/usr/bin/perl
# serve's web page (docs/ui.md) in a real headless chromium, driven by
# chromedriver, over the demo chain: an nginx edge proxies to an httpd app
# tier that proxies to a backend, and a real `serve` stores the spans.
# Search by trace id and by span id shows the waterfall in parent order;
# a keyword of an attribute finds its trace; "errors only" lists exactly
# the 5xx traces; the service table counts what was sent; the map draws
# edge -> app -> backend with the calls; a path with <script> and an
# <img onerror> is text and opens no dialog; a trace's URL opens that
# trace.  Screenshots of each
# view go to build/ui/; the page's load time is printed, never asserted.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Path ();
use Time::HiRes ();
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(start_httpd);
use Edgetrace::Serve qw(start_serve);
use Edgetrace::Browser qw(start_browser);

my $redis = start_redis();
my $be = start_backend();

my $app = start_httpd(mpm => 'event', redis => $redis, conf => <<'EOF');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTraceServiceName app
EdgeTrace On
ProxyPass /orders http://127.0.0.1:%%BACKEND%%/orders
ProxyPass /status http://127.0.0.1:%%BACKEND%%/status
EOF

my $edge = start_nginx(redis => $redis, ports => { APP => $app->port },
                       conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 20ms;
    edgetrace_service_name edge;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Trace-Id $edgetrace_trace_id always;
        location / {
            proxy_pass http://127.0.0.1:%%APP%%;
        }
    }
EOF

my (%sent, %status_of, @order);

sub chain {
    my ($path) = @_;
    my $r = http_get($edge->port, $path);
    my $t = $r->{headers}{'x-trace-id'} or die "no trace id for $path\n";
    my @s = trace_spans($redis->port, $t, count => 4);
    die "$path: " . scalar(@s) . " spans, not 4\n" unless @s == 4;
    $sent{$t} = \@s;
    $status_of{$t} = $r->{status};
    push @order, $t;
    return $t;
}

chain("/orders/$_") for 1 .. 3;
my @bad = map { chain('/status/500') } 1 .. 2;
my $kiwi = chain('/orders/kiwi-7731');
my $xss = chain('/orders/<script>alert(1)</script>'
                . '<img/src/onerror=alert(2)>');
my $n = scalar @order;
is(scalar(grep { $status_of{$_} == 500 } @order), 2, 'two 5xx answers');

my $s = start_serve($redis);
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == 4 * $n }),
   'serve stored every span');

my $base = 'http://127.0.0.1:' . $s->port;
my $shots = build_dir() . '/ui';
File::Path::make_path($shots);

# --- the page's answer: compiled in, with its headers

my ($st, undef, $html, $raw) = $s->get('/');
is($st, 200, 'GET /: 200');
like($raw->{headers}{'content-type'}, qr{^text/html}, '... HTML');
is($raw->{headers}{'content-security-policy'} =~ /script-src 'self'/
   && $raw->{headers}{'content-security-policy'} =~ /default-src 'self'/
   ? 1 : 0, 1, "... Content-Security-Policy: default-src and script-src "
               . "'self'");
is($raw->{headers}{'x-content-type-options'}, 'nosniff', '... nosniff');
unlike($html, qr/<script>|<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+=/i,
       '... no inline script, no inline event handler');
($st, undef, undef, $raw) = $s->get('/ui/ui.js');
like($raw->{headers}{'content-type'}, qr{^text/javascript},
     '/ui/ui.js: JavaScript');

# --- the browser

my $br = start_browser();
ok($br->chromium_pid, 'chromium runs, PID ' . ($br->chromium_pid // '?'));

sub view_ready {
    my ($css) = @_;
    return $br->wait_js('return !!document.querySelector(arguments[0])',
                       15, $css);
}

# the data-* values of each element that $css selects: a list per
# element, or with one name the value itself
sub data_of {
    my ($css, @names) = @_;
    my $rows = $br->js('var n = arguments[1]; return Array.from('
                       . 'document.querySelectorAll(arguments[0]))'
                       . '.map(function (e) { return n.map(function (k) '
                       . '{ return e.dataset[k]; }); })', $css, \@names);
    return @names == 1 ? map { $_->[0] } @$rows : @$rows;
}

# the rows of the waterfall: [span id, depth]
sub waterfall {
    return data_of('#waterfall .row', qw(spanId depth));
}

# the sent spans of a trace in parent order (children by start)
sub parent_order {
    my ($t) = @_;
    my %kids;
    my @roots;
    for my $e (@{ $sent{$t} }) {
        if ($e->{parent_id} && grep { $_->{span_id} eq $e->{parent_id} }
                                    @{ $sent{$t} })
        {
            push @{ $kids{ $e->{parent_id} } }, $e;
        } else {
            push @roots, $e;
        }
    }
    my @out;
    my $walk;
    $walk = sub {
        my ($e, $d) = @_;
        push @out, [$e->{span_id}, $d];
        $walk->($_, $d + 1)
            for sort { $a->{start_ns} <=> $b->{start_ns} }
                @{ $kids{ $e->{span_id} } || [] };
    };
    $walk->($_, 0) for @roots;
    return @out;
}

my $t0 = Time::HiRes::time();
$br->get("$base/#/search");
view_ready('#results');
my $load = Time::HiRes::time() - $t0;
my $nav = $br->js('var n = performance.getEntriesByType("navigation")[0];'
                 . ' return n ? Math.round(n.loadEventEnd) : null');
diag(sprintf 'the page loaded and searched in %.0f ms (navigation to load '
             . 'event: %s ms)', $load * 1000, $nav // '?');
$br->screenshot("$shots/search.png");
is($br->js('return document.querySelectorAll("#results tr.result")'
          . '.length'), $n, 'search, any service: every trace listed');

# --- by trace id, from the search form

my $t = $order[0];
$br->type('input[name=traceId]', $t);
$br->click('#search-go');
view_ready('#waterfall .row');
is($br->js('return location.hash'), "#/trace/$t", 'trace id: its URL');
is($br->js('return document.getElementById("trace-id").textContent'), $t,
   '... that trace');
is_deeply([waterfall()], [parent_order($t)],
          '... the waterfall: its four spans in parent order');
$br->screenshot("$shots/trace.png");

# a click shows the span's attributes and events
my ($client) = grep { $_->{kind} eq 'client'
                      && $_->{'service.name'} eq 'edge' } @{ $sent{$t} };
$br->click(qq{#waterfall .row[data-span-id="$client->{span_id}"]});
view_ready('#span-detail');
like($br->js('return document.getElementById("span-detail").textContent'),
     qr/upstream\.try.*peer=127\.0\.0\.1:\d+/s,
     "a span's detail: its upstream tries");
$br->screenshot("$shots/span.png");

# --- by span id: the header's box, then the trace with that span picked

my ($leaf) = grep { $_->{kind} eq 'client' && $_->{'service.name'} eq 'app' }
             @{ $sent{ $order[1] } };
$br->get("$base/#/search");
view_ready('#results');
$br->type('#goto-id', $leaf->{span_id});
$br->click('#goto button');
$br->wait_js('return location.hash.indexOf(arguments[0]) === 8', 15,
            $order[1]);
view_ready('#span-detail');
is($br->js('return document.getElementById("trace-id").textContent'),
   $order[1], 'span id: its trace');
is_deeply([waterfall()], [parent_order($order[1])],
          '... the waterfall in parent order');
is($br->js('return document.querySelector("#waterfall .row.sel")'
          . '.dataset.spanId'), $leaf->{span_id}, '... that span picked');

# --- a keyword of an attribute

$br->get("$base/#/search?q=kiwi");
view_ready('#results');
is_deeply([data_of('#results tr.result', 'traceId')], [$kiwi],
          'keyword "kiwi" (of url.path): its trace only');

# --- errors only: exactly the 5xx traces

$br->get("$base/#/search?errors=1");
view_ready('#results');
is_deeply([sort(data_of('#results tr.result', 'traceId'))],
          [sort @bad], 'errors only: exactly the two 5xx traces');
$br->screenshot("$shots/errors.png");

# --- the services: the counts sent

$br->get("$base/#/services?range=1d");
view_ready('#red tr.red-row');
my $rows = $br->js('return Array.from(document.querySelectorAll('
                  . '"#red tr.red-row")).map(function (r) { return '
                  . '[r.dataset.service, r.dataset.operation, '
                  . 'r.querySelector(".count").textContent, '
                  . 'r.querySelector(".errors").textContent]; })');
my (%want, %got);
for my $sp (map { @$_ } values %sent) {
    my $k = "$sp->{'service.name'} $sp->{name}";
    $want{$k}[0]++;
    $want{$k}[1] += ($sp->{status} // '') eq 'error' ? 1 : 0;
}
$got{"$_->[0] $_->[1]"} = [$_->[2] + 0, $_->[3] + 0] for @$rows;
$_->[1] //= 0 for values %want;
is_deeply(\%got, \%want,
          'services: spans and errors per service and name, as sent');
is($br->js('return Array.from(document.querySelectorAll("#red tr.red-row"))'
           . '.every(function (r) { return r.querySelectorAll('
           . '"svg.chart rect").length >= 3; })') ? 1 : 0, 1,
   '... each row with its three charts');
view_ready('#slowest tr.result');
view_ready('#recent-errors tr.result');
is_deeply([sort(data_of('#slowest tr.result', 'traceId'))], [sort @order],
          '... the slowest traces: every trace, once');
is_deeply([sort(data_of('#recent-errors tr.result', 'traceId'))],
          [sort @bad], '... the most recent errors: the 5xx traces');
$br->screenshot("$shots/services.png");

# --- the service map: edge -> app -> the backend

$br->get("$base/#/map?range=1d");
view_ready("#edges tr.edge-row");
view_ready('#map-svg g.node');
my @edges = data_of('#edges tr.edge-row',
                     qw(parent child calls errors peer));
is_deeply([sort { $a->[0] cmp $b->[0] } @edges],
          [['app', '127.0.0.1:' . $be->port, $n, 2, 1],
           ['edge', 'app', $n, 2, 0]],
          "the map: edge -> app and app -> the backend, $n calls each, "
          . "the two 5xx their errors");
is_deeply([sort(data_of('#map-svg g.node', 'service'))],
          [sort '127.0.0.1:' . $be->port, 'app', 'edge'],
          '... three nodes drawn');
$br->screenshot("$shots/map.png");

# --- <script> in a path: text, and no dialog

$br->get("$base/#/trace/$xss");
view_ready('#waterfall .row');
my ($xsrv) = grep { $_->{kind} eq 'server' && $_->{'service.name'} eq 'edge' }
             @{ $sent{$xss} };
$br->click(qq{#waterfall .row[data-span-id="$xsrv->{span_id}"]});
view_ready('#span-detail');
Time::HiRes::sleep(0.5);
is($br->alert_text, undef, '<script> in a path: no dialog opened');
like($br->js('return document.getElementById("span-detail").textContent'),
     qr{/orders/<script>alert\(1\)</script><img/src/onerror=alert\(2\)>},
     '... the path shown as text');
is($br->js('return document.querySelectorAll("#view script, #view img")'
           . '.length'), 0, '... and no element made of it');
$br->screenshot("$shots/xss.png");

# --- a trace's URL, pasted: that trace

$br->get("$base/#/trace/$order[2]");
view_ready('#waterfall .row');
is($br->js('return document.getElementById("trace-id").textContent'),
   $order[2], "a trace's URL opens that trace");
is_deeply([waterfall()], [parent_order($order[2])], '... its waterfall');

is($br->alert_text, undef, 'no dialog was opened at all');
my $chromium = $br->chromium_pid;
$br->stop;
ok(!kill(0, $chromium), 'chromium stopped');

done_testing();
