#!/usr/bin/perl
# serve's web page (docs/ui.md) in a real headless chromium, driven by
# chromedriver, over the demo chain: an nginx edge proxies to an httpd app
# tier that proxies to a backend, and a real `serve` stores the spans.
# Search by trace id and by span id shows the waterfall in parent order;
# a keyword of an attribute finds its trace; "errors only" lists exactly
# the 5xx traces; the service table counts what was sent; the map draws
# edge -> app -> backend with the calls and the p95 of each edge against
# the durations sent (a backend that sleeps 300 ms); results sort by time
# and by duration; a service and span name, a duration range and a custom
# time range find what they should, in search, services and the map; an
# orphan and a span with clock skew are shown so; live refresh shows new
# traffic without a reload, and waits while the tab is hidden; a path
# with <script> and an <img onerror> is text and opens no dialog; a
# trace's URL opens that trace.  Screenshots of each view go to
# build/ui/; the page's load time is printed, never asserted.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Path ();
use POSIX ();
use Time::HiRes ();
use Edgetrace::Test qw(:all);
use Edgetrace::Serve qw(start_serve bucket_quantile start_chain);
use Edgetrace::Browser qw(start_browser);

# nginx -> httpd -> backend, both servers writing to one Redis
my $chain = start_chain();
my ($redis, $be, $edge) = ($chain->redis, $chain->backend, $chain->edge);

my (%sent, %status_of, @order);

sub chain {
    my ($path) = @_;
    my ($t, $status, @s) = $chain->request($path);
    $sent{$t} = \@s;
    $status_of{$t} = $status;
    push @order, $t;
    return $t;
}

chain("/orders/$_") for 1 .. 3;
my @bad = map { chain('/status/500') } 1 .. 2;
my $kiwi = chain('/orders/kiwi-7731');
my @slow = map { chain('/slow/300') } 1 .. 2;
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

# opens $url (the page's, from #/) once the view is emptied, so that what
# $css finds is of this view, not of the one before it
sub open_view {
    my ($url, $css) = @_;
    $br->js('document.getElementById("view").textContent = ""');
    $br->get("$base/$url");
    return view_ready($css);
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
# the services' rows: [service, name, spans, errors]
sub red_rows {
    return @{ $br->js('return Array.from(document.querySelectorAll('
                      . '"#red tr.red-row")).map(function (r) { return '
                      . '[r.dataset.service, r.dataset.operation, '
                      . 'r.querySelector(".count").textContent, '
                      . 'r.querySelector(".errors").textContent]; })') };
}

my $rows = [red_rows()];
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
my (%q_want, %q_got);
for my $r (data_of('#red tr.red-row', qw(service operation p50 p95 p99))) {
    my @spans = grep { $_->{'service.name'} eq $r->[0] && $_->{name} eq $r->[1] }
                map { @$_ } values %sent;
    $q_got{"$r->[0] $r->[1]"} = [map { $_ + 0 } @$r[2 .. 4]];
    $q_want{"$r->[0] $r->[1]"} = [map { bucket_quantile($_, @spans) }
                                  0.50, 0.95, 0.99];
}
is_deeply(\%q_got, \%q_want,
          '... p50, p95 and p99 of the durations sent (the 300 ms sleeps '
          . 'among them)');
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

# --- each edge's p95, from serve's dependency rows: the edge's client
# spans, two of them 300 ms long (the backend's sleep)

my @edge_calls = grep { $_->{'service.name'} eq 'edge' && $_->{kind} eq 'client' }
                 map { @$_ } values %sent;
my $p95 = bucket_quantile(0.95, @edge_calls);
cmp_ok($p95, '>=', 250000, "the edge's client spans: p95 in the bucket of "
       . "the 300 ms sleeps ($p95 us)");
my (undef, $dj) = $s->get('/api/edgetrace/dependencies?lookback=86400000'
                          . '&endTs=' . int(time() * 1000 + 60000));
is_deeply([map { [$_->{parent}, $_->{child}, $_->{callCount}, $_->{p95}] }
           @{ $dj->{data} }], [['edge', 'app', $n, $p95]],
          '/api/edgetrace/dependencies: edge -> app, its p95 as sent');
my ($app_p95) = map { $_->[1] }
                grep { $_->[0] eq 'app' } data_of('#edges tr.edge-row',
                                                  qw(child p95));
is($app_p95, $p95, 'the map: edge -> app, that p95');
like($br->js('return document.querySelector("#edges tr.edge-row'
             . '[data-child=app] .p95").textContent'),
     qr/^\x{2264} \d+(\.\d+)? ms$/, '... shown as the end of its bucket');
like($br->js('return document.querySelector("#map-svg text.edge'
             . '[data-parent=app]").textContent'), qr/p95 \d/,
     '... and on the drawn edge to the backend');

# --- results sorted by time, by duration

sub column {
    my ($key) = @_;
    return map { $_ + 0 } data_of('#results tr.result', $key);
}

open_view('#/search?sort=duration', '#results tr.result');
my @d = column('duration');
is_deeply(\@d, [sort { $b <=> $a } @d], 'sort=duration: longest first');
is_deeply([sort((data_of('#results tr.result', 'traceId'))[0, 1])],
          [sort @slow], '... the two 300 ms traces on top');
$br->screenshot("$shots/search-duration.png");
$br->click('#sort-time');
$br->wait_js('return location.hash.indexOf("sort=time") >= 0', 10);
view_ready('#results tr.result');
$br->wait_js('return document.getElementById("sort-time").textContent'
             . '.indexOf("\x{25bc}") > 0', 10);
my @t = column('start');
is_deeply(\@t, [sort { $b <=> $a } @t],
          'a click on "start": sort=time in the URL, newest first');

# --- a service and span name; a duration range

my ($kiwi_srv) = grep { $_->{kind} eq 'server' && $_->{'service.name'} eq 'app' }
                 @{ $sent{$kiwi} };
my @named = grep {
    grep { $_->{'service.name'} eq 'app' && $_->{name} eq $kiwi_srv->{name} }
         @{ $sent{$_} }
} @order;
open_view('#/search?service=app&operation='
          . $br->js('return encodeURIComponent(arguments[0])',
                    $kiwi_srv->{name}), '#results');
is_deeply([sort(data_of('#results tr.result', 'traceId'))], [sort @named],
          "service app, span name '$kiwi_srv->{name}': its traces");
open_view('#/search?minDuration=250ms', '#results');
is_deeply([sort(data_of('#results tr.result', 'traceId'))], [sort @slow],
          'minDuration=250ms: the two 300 ms traces');
open_view('#/search?maxDuration=250ms&service=edge', '#results');
is_deeply([sort(data_of('#results tr.result', 'traceId'))],
          [sort grep { my $t = $_; !grep { $t eq $_ } @slow } @order],
          'maxDuration=250ms: the others');

# --- a custom time range: local date and time, as the form gives it

sub local_minute {
    return POSIX::strftime('%Y-%m-%dT%H:%M', localtime($_[0]));
}

my $before = 'range=custom&start=' . local_minute(time() - 7200)
             . '&end=' . local_minute(time() - 3600);
my $around = 'range=custom&start=' . local_minute(time() - 600)
             . '&end=' . local_minute(time() + 600);
open_view("#/search?$before", '#results');
is($br->js('return document.querySelectorAll("#results tr.result").length'),
   0, 'search, a custom range before the traffic: nothing');
open_view("#/search?$around", '#results tr.result');
is($br->js('return document.querySelectorAll("#results tr.result").length'),
   $n, '... one around it: every trace');

open_view("#/services?$before", '#red');
is($br->js('return document.querySelectorAll("#red tr.red-row").length'),
   0, 'services, a custom range before the traffic: no row');
open_view("#/services?$around", '#red tr.red-row');
is($br->js('return document.getElementById("range").value'), 'custom',
   '... one around it: the form says custom');
my %around = map { ("$_->[0] $_->[1]" => $_->[2] + 0) } red_rows();
is_deeply(\%around, { map { ($_ => $want{$_}[0]) } keys %want },
          '... and the counts sent');
$br->screenshot("$shots/services-custom.png");

open_view("#/map?$before", '#edges');
is($br->js('return document.querySelectorAll("#edges tr.edge-row").length'),
   0, 'the map, a custom range before the traffic: no edge');
open_view("#/map?$around", '#edges tr.edge-row');
is_deeply([sort { $a->[0] cmp $b->[0] }
           data_of('#edges tr.edge-row', qw(parent child calls))],
          [['app', '127.0.0.1:' . $be->port, $n],
           ['edge', 'app', $n]], '... one around it: the calls sent');

# --- an orphan, and clock skew: a trace written as another host's
# clock and a lost parent would make it (the stream format, by hand)

my $odd = new_trace_id();
my $lost = new_span_id();
my %of = map { ("$_->{'service.name'} $_->{kind}" => $_) } @{ $sent{$order[0]} };
my %fix = ('app server' => { shift => -40_000_000 },
           'app client' => { parent_id => $lost });
for my $k ('edge server', 'edge client', 'app server', 'app client') {
    my @f = @{ $of{$k}{_fields} };
    for (my $i = 0; $i < @f; $i += 2) {
        $f[$i + 1] = $odd if $f[$i] eq 'trace_id';
        $f[$i + 1] = $fix{$k}{parent_id}
            if $f[$i] eq 'parent_id' && $fix{$k}{parent_id};
        $f[$i + 1] += $fix{$k}{shift}
            if $f[$i] =~ /^(start|end)_ns$/ && $fix{$k}{shift};
    }
    $redis->client->xadd('edgetrace:spans', '*', @f);
}
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == 4 * $n + 4 }),
   'a trace with an orphan and clock skew stored');
open_view("#/trace/$odd", '#waterfall .row');
my ($orphan) = grep { $_->[0] eq $of{'app client'}{span_id} }
               data_of('#waterfall .row', qw(spanId depth));
is($orphan->[1], 0, 'the orphan: at the top level');
is($br->js('var e = document.querySelector("#waterfall .row[data-span-id=\''
           . $of{'app client'}{span_id} . '\'] .tag.orphan");'
           . ' return e && e.textContent'),
   "orphan: parent $lost not stored", '... marked as one');
is($br->js('var e = document.querySelector("#waterfall .row[data-span-id=\''
           . $of{'app client'}{span_id} . '\'] .tag.orphan");'
           . ' return e.getBoundingClientRect().right'
           . ' <= e.closest(".label").getBoundingClientRect().right') ? 1 : 0,
   1, '... in sight, not cut off by the row');
# serve's microseconds, the nanoseconds' digits but the last three (a
# double would round them)
my $skew = substr($of{'app server'}{start_ns}, 0, -3) - 40000
           - substr($of{'edge client'}{start_ns}, 0, -3);
is($br->js('return document.querySelector("#waterfall .row[data-span-id=\''
           . $of{'app server'}{span_id} . '\']").dataset.skew') + 0,
   $skew, "clock skew: the app's span starts ${skew} us before its parent");
like($br->js('var e = document.querySelector("#waterfall .row[data-span-id=\''
             . $of{'app server'}{span_id} . '\'] .tag.skew");'
             . ' return e && e.textContent'),
     qr/^clock skew -\d+(\.\d+)? ms$/, '... shown on its row');
$br->screenshot("$shots/trace-skew.png");
$n++;
push @order, $odd;

# --- live refresh: new traffic shows without a reload, not while hidden

sub rows { $br->js('return document.querySelectorAll(arguments[0]).length',
                   $_[0]) }

open_view('#/search?refresh=1', '#results tr.result');
is($br->js('return document.getElementById("refresh").value'), '1',
   'refresh=1: the control says so');
is(rows('#results tr.result'), $n, '... every trace listed');
$br->js('window.etMark = 1; window.etFetches = 0; var f = window.fetch;'
        . ' window.fetch = function () { window.etFetches++;'
        . ' return f.apply(this, arguments); }');
my $live = chain('/orders/live-1');
$n++;
ok($br->wait_js('return document.querySelector("#results tr.result'
                . '[data-trace-id=\'" + arguments[0] + "\']") !== null', 20,
                $live), 'new traffic appears in the results')
    or diag(rows('#results tr.result') . " rows");
is($br->js('return window.etMark'), 1, '... without a reload');
$br->screenshot("$shots/live.png");

# hidden: no query; shown again: at once
$br->js('Object.defineProperty(document, "hidden", { configurable: true,'
        . ' get: function () { return true; } });'
        . ' document.dispatchEvent(new Event("visibilitychange"))');
Time::HiRes::sleep(1.5);
my $f0 = $br->js('return window.etFetches');
Time::HiRes::sleep(3);
is($br->js('return window.etFetches'), $f0,
   'the tab hidden: no query for 3 s');
$br->js('Object.defineProperty(document, "hidden", { configurable: true,'
        . ' get: function () { return false; } });'
        . ' document.dispatchEvent(new Event("visibilitychange"))');
ok($br->wait_js('return window.etFetches > arguments[0]', 5, $f0),
   'shown again: the query re-run');

open_view('#/search', '#results tr.result');
$br->js('window.etFetches = 0');
Time::HiRes::sleep(2.5);
is($br->js('return window.etFetches'), 0, 'off by default: no query');

# services and the map, refreshed
open_view('#/services?range=1d&refresh=1', '#red tr.red-row');
my ($edge_op) = map { $_->[1] } grep { $_->[0] eq 'edge' }
                data_of('#red tr.red-row', qw(service operation));
my $css = qq{#red tr.red-row[data-service="edge"][data-operation="$edge_op"] .count};
my $c0 = $br->js('return document.querySelector(arguments[0]).textContent',
                 $css);
my $more = grep { $_->{'service.name'} eq 'edge' && $_->{name} eq $edge_op }
           @{ $sent{ chain('/orders/live-2') } };
$n++;
ok($br->wait_js('var e = document.querySelector(arguments[0]);'
                . ' return e && e.textContent === String(arguments[1])', 20,
                $css, $c0 + $more),
   "services: the new spans counted ($c0 + $more)");
open_view('#/map?range=1d&refresh=1', '#edges tr.edge-row');
chain('/orders/live-3');
$n++;
ok($br->wait_js('var e = document.querySelector("#edges tr.edge-row'
                . '[data-child=app]"); return e && e.dataset.calls == '
                . 'arguments[0]', 20, $n), "the map: edge -> app, $n calls");
open_view('#/search', '#results tr.result');

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
