#!/usr/bin/perl
# edgetrace serve on the demo chain: an nginx edge proxies to an httpd app
# tier that proxies to a backend.  What serve stored, read back through
# its Jaeger API, is what the servers wrote to the stream: the four spans
# of a trace with CHILD_OF references and two processes, the services,
# their operations, the edge -> app dependency, searches by tag, duration,
# keyword and span id, the RED aggregates.  A path with <script> and
# bytes that are not UTF-8 comes back as valid, escaped JSON; a span
# delivered twice is stored once.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use JSON::PP ();
use Edgetrace::Test qw(:all);
use Edgetrace::Serve qw(start_serve all_acked bucket_quantile start_chain);

my $c = start_chain();
my $redis = $c->redis;
sub chain { $c->request(@_) }

my ($t1, $st1, @s1) = chain('/orders/42');
is($st1, 200, 'a request through the chain');
my $hostile = "/orders/<script>alert(1)</script>\xff\xfe\xc3";
my ($t2, $st2, @s2) = chain($hostile);
my %sent = map { ($_->{span_id} => $_) } @s1, @s2;

my $s = start_serve($redis);
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == 8 }),
   'serve stored the eight spans');

# --- /api/traces/{id}: Jaeger's shape, what was sent

my ($status, $j, $body, $raw) = $s->get("/api/traces/$t1");
is($status, 200, '/api/traces/{id}: 200');
like($raw->{headers}{'content-type'}, qr{^application/json}, '... JSON');
is($raw->{headers}{'x-content-type-options'}, 'nosniff', '... nosniff');
is_deeply([sort keys %$j], [qw(data errors limit offset total)],
          'the envelope: data, total, limit, offset, errors');
is($j->{errors}, undef, 'errors: null');
is(scalar @{ $j->{data} }, 1, 'one trace');
my $tr = $j->{data}[0];
is($tr->{traceID}, $t1, 'its traceID');
is(scalar @{ $tr->{spans} }, 4, 'four spans');
is_deeply([sort map { $_->{serviceName} } values %{ $tr->{processes} }],
          [qw(app edge)], 'two processes: edge and app');

my %tag_want;
for my $sp (@{ $tr->{spans} }) {
    my $e = $sent{ $sp->{spanID} };
    ok($e, "span $sp->{spanID} was sent") or next;
    my $what = "$e->{'service.name'} $e->{kind}";
    is($sp->{traceID}, $t1, "$what: traceID");
    is($sp->{operationName}, $e->{name}, "$what: operationName");
    # ns have 19 digits: strings, not floats
    is($sp->{startTime}, substr($e->{start_ns}, 0, -3),
       "$what: startTime (us)");
    is($sp->{duration}, int(($e->{end_ns} - $e->{start_ns}) / 1000),
       "$what: duration (us)");
    is($tr->{processes}{ $sp->{processID} }{serviceName},
       $e->{'service.name'}, "$what: its process");
    if ($e->{parent_id}) {
        is_deeply($sp->{references}, [{ refType => 'CHILD_OF',
                                         traceID => $t1,
                                         spanID => $e->{parent_id} }],
                  "$what: CHILD_OF its parent");
    } else {
        is_deeply($sp->{references}, [], "$what: a root, no reference");
    }
    my %tags = map { ($_->{key} => $_) } @{ $sp->{tags} };
    is($tags{'span.kind'}{value}, $e->{kind}, "$what: span.kind");
    my @attrs = grep { !/^(_id|_fields|v|trace_id|span_id|parent_id|name|kind|start_ns|end_ns|status|service\.name|edgetrace\.sampling|tracestate|event\.\d+)$/ }
                keys %$e;
    for my $k (@attrs) {
        is($tags{$k}{value}, $e->{$k}, "$what: tag $k");
    }
    is($tags{'http.response.status_code'}{type}, 'int64',
       "$what: the status code an int64")
        if $tags{'http.response.status_code'};
    my @ev = grep { /^event\.\d+$/ } keys %$e;
    is(scalar @{ $sp->{logs} }, scalar @ev, "$what: a log per event");
}

# --- the hostile path: valid JSON, escaped, the bytes repaired

($status, $j, $body) = $s->get("/api/traces/$t2");
is($status, 200, 'the trace with <script> in its path');
ok(utf8::decode(my $copy = $body), 'the body is valid UTF-8');
ok($j, 'and valid JSON');
my ($srv) = grep { $sent{ $_->{spanID} }{kind} eq 'server'
                   && $sent{ $_->{spanID} }{'service.name'} eq 'edge' }
            @{ $j->{data}[0]{spans} };
my ($path) = map { $_->{value} } grep { $_->{key} eq 'url.path' }
             @{ $srv->{tags} };
is($path, "/orders/<script>alert(1)</script>\x{fffd}\x{fffd}\x{fffd}",
   'url.path: <script> as it was, invalid bytes as U+FFFD');
unlike($body, qr/[\xfe\xff]/, 'no raw invalid byte in the body');

# --- services, operations, dependencies

($status, $j) = $s->get('/api/services');
is_deeply($j->{data}, [qw(app edge)], '/api/services');
is($j->{total}, 2, '... total');
my %names;
$names{ $_->{'service.name'} }{ $_->{name} } = 1 for values %sent;
($status, $j) = $s->get('/api/services/edge/operations');
is_deeply($j->{data}, [sort keys %{ $names{edge} }],
          '/api/services/edge/operations: the names of its spans');
($status, $j) = $s->get('/api/operations?service=app&spanKind=server');
my %app_srv = map { ($_->{name} => 1) }
              grep { $_->{'service.name'} eq 'app' && $_->{kind} eq 'server' }
              values %sent;
is_deeply($j->{data},
          [map { { name => $_, spanKind => 'server' } } sort keys %app_srv],
          '/api/operations?spanKind=server');
($status, $j) = $s->get('/api/dependencies?endTs='
                        . int(time() * 1000 + 60000) . '&lookback=3600000');
is_deeply($j->{data}, [{ parent => 'edge', child => 'app', callCount => 2,
                         errorCount => 0 }],
          '/api/dependencies: edge -> app, twice');

# the same pair with its rates and the quantiles of the caller's spans
# (the edge's client spans), from the histogram of the dependency rows
my @calls = grep { $_->{'service.name'} eq 'edge' && $_->{kind} eq 'client' }
            values %sent;
($status, $j) = $s->get('/api/edgetrace/dependencies?endTs='
                        . int(time() * 1000 + 60000) . '&lookback=3600000');
is_deeply($j->{data}, [{ parent => 'edge', child => 'app', callCount => 2,
                         errorCount => 0, errorRate => 0, callRate => 2 / 60,
                         durationCount => 2,
                         p50 => bucket_quantile(0.50, @calls),
                         p95 => bucket_quantile(0.95, @calls),
                         p99 => bucket_quantile(0.99, @calls) }],
          '/api/edgetrace/dependencies: edge -> app, its rates and the '
          . 'p50/p95/p99 of the edge\'s client spans');

# --- searches

sub traces {
    my ($q) = @_;
    my ($st, $r) = $s->get("/api/traces?$q");
    return $st == 200 ? [sort map { $_->{traceID} } @{ $r->{data} }]
                      : "status $st";
}
is_deeply(traces('service=app'), [sort $t1, $t2], 'by service');
is_deeply(traces('service=edge&limit=1'), [$t2], 'limit=1: the latest');
is_deeply(traces('service=nobody'), [], 'an unknown service: none');
my ($edge_srv) = grep { $_->{kind} eq 'server'
                        && $_->{'service.name'} eq 'edge' } @s1;
is_deeply(traces('service=edge&operation='
                 . join('', map { sprintf '%%%02X', ord } split //,
                        $edge_srv->{name})), [sort $t1, $t2],
          'by operation');
is_deeply(traces('service=edge&tags=%7B%22url.path%22%3A%22%2Forders%2F42%22%7D'),
          [$t1], 'by tags={"url.path":"/orders/42"}');
is_deeply(traces('service=edge&tag=url.path:/orders/42'), [$t1],
          'by tag=url.path:/orders/42');
is_deeply(traces('service=edge&tag=http.response.status_code:200'
                 . '&tag=url.path:/nowhere'), [], 'every tag must match');
is_deeply(traces('service=edge&tags=%7B%22error%22%3A%22true%22%7D'), [],
          'error=true: none failed');
is_deeply(traces('service=edge&minDuration=1h'), [], 'minDuration=1h: none');
is_deeply(traces('service=edge&maxDuration=1h'), [sort $t1, $t2],
          'maxDuration=1h: both');
is_deeply(traces('service=edge&start=1&end=2'), [], 'a window in 1970: none');

($status, $j) = $s->get('/api/edgetrace/search?q=orders%2042');
is($status, 200, 'keyword search');
is_deeply([sort { $a cmp $b } keys %{ { map { ($_->{traceID} => 1) }
                                        @{ $j->{data} } } }], [$t1],
          'q="orders 42": the spans of the first trace');
($status, $j) = $s->get('/api/edgetrace/search?q=%3Cscript%3E%20alert');
ok((grep { $_->{traceID} eq $t2 } @{ $j->{data} }),
   'q="<script> alert" finds the second');
($status, $j) = $s->get('/api/edgetrace/search?q=%22%20OR%20*%20NEAR(');
is($status, 200, 'FTS5 syntax in q is only words: 200');

($status, $j) = $s->get("/api/edgetrace/spans/$edge_srv->{span_id}");
is($j->{data}[0]{traceID}, $t1, 'a trace found by one of its span ids');

# --- RED

($status, $j) = $s->get('/api/edgetrace/red?service=edge&endTs='
                        . int(time() * 1000 + 60000) . '&lookback=3600000');
is($status, 200, 'RED');
my %red = map { ($_->{operation} => $_) } @{ $j->{data} };
my %count;
$count{ $_->{name} }++ for grep { $_->{'service.name'} eq 'edge' }
                           values %sent;
is_deeply({ map { ($_ => $red{$_}{count}) } keys %red }, \%count,
          'a count per span name of edge');
is($red{ $edge_srv->{name} }{errors}, 0, 'no errors');
ok($red{ $edge_srv->{name} }{p99} > 0, 'a p99');
is(scalar @{ $red{ $edge_srv->{name} }{points} }, 1, 'a point a minute');

# --- a span delivered twice is stored once

my @dup = @{ $redis->client->xrange('edgetrace:spans', '-', '+') };
my ($first) = grep { my %h = @{ $_->[1] }; $h{span_id} eq $edge_srv->{span_id} }
              @dup;
$redis->client->xadd('edgetrace:spans', '*', @{ $first->[1] });
# (a module may write a span twice too: it delivers at least once)
my $xlen = $redis->client->xlen('edgetrace:spans');
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == 8
                         && $_[0]{counters}{duplicates} == $xlen - 8 }),
   'the copy counted as a duplicate, not stored')
    or diag(explain($s->wait_status(sub { 1 }), "xlen $xlen"));
($status, $j) = $s->get("/api/traces/$t1");
is(scalar @{ $j->{data}[0]{spans} }, 4, 'the trace still has four spans');
($status, $j) = $s->get('/api/dependencies?endTs='
                        . int(time() * 1000 + 60000) . '&lookback=3600000');
is($j->{data}[0]{callCount}, 2, 'the dependency still counted twice');

# --- acknowledged, and a clean stop

my $st = $s->wait_status(sub { 1 });
is($st->{ingestion}, 'running', 'status: ingestion running');
is($st->{redis}, 'up', 'status: Redis up');
ok(all_acked($redis->client),
   'every entry acknowledged');
is($s->stop, 0, 'SIGTERM: exit 0');
like($s->proc->err, qr/serve: $xlen spans stored in \d+ batch(es)?; 0 invalid/,
     'the counts on stderr: each entry, the copy too');

# --- a database made before the dependency rows had a histogram opens:
# its rows keep their calls, without durations, and new calls are timed

my $old = $s->dir . '/old.db';
my $minute = int(time() / 60);
system('sqlite3', $old, 'CREATE TABLE dependencies (minute INTEGER NOT NULL,'
       . ' parent BLOB NOT NULL, child BLOB NOT NULL, count INTEGER NOT NULL,'
       . ' errors INTEGER NOT NULL, PRIMARY KEY (minute, parent, child))'
       . " WITHOUT ROWID; INSERT INTO dependencies VALUES ($minute,"
       . " CAST('lb' AS BLOB), CAST('edge' AS BLOB), 3, 1);") == 0
    or die "sqlite3: $?";
my $o = start_serve($redis, db => $old);
($status, $j) = $o->get('/api/edgetrace/dependencies?endTs='
                        . int(time() * 1000 + 60000) . '&lookback=3600000');
is_deeply($j->{data}, [{ parent => 'lb', child => 'edge', callCount => 3,
                         errorCount => 1, errorRate => 1 / 3,
                         callRate => 3 / 60, durationCount => 0,
                         p50 => undef, p95 => undef, p99 => undef }],
          'a database of the previous schema: its pair, no quantiles');
like(`sqlite3 '$old' 'PRAGMA table_info(dependencies)'`, qr/\|h13\|INTEGER/,
     '... the histogram columns added');
is($o->stop, 0, '... and serve stopped cleanly');

done_testing();
