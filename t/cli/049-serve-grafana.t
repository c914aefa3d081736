#!/usr/bin/perl
# edgetrace serve as Grafana's Jaeger data source sees it (docs/serve.md,
# "Grafana").  Grafana is not installed here: this test replays the
# requests its data source makes, with the parameters in the units it
# sends, against real nginx -> httpd -> backend traffic, and checks the
# fields it reads with the types its decoder demands.  The code quoted is
# github.com/grafana/grafana:
#
#   public/app/plugins/datasource/jaeger/   the data source in the browser
#     datasource.ts             testDatasource, query (trace id, search,
#                               dependencyGraph), metadataRequest
#     components/SearchForm.tsx services and operations of the form
#     util.ts                   convertTagsLogfmt: the tags as JSON
#     responseTransform.ts      createTraceFrame, createTableFrame
#     dependencyGraphTransform.ts  mapJaegerDependenciesResponse
#   pkg/tsdb/jaeger/            the same in Go (Grafana's backend)
#     client.go                 Services, Operations, Search, Trace,
#                               Dependencies: the requests
#     types/types.go            the structs the answers decode into: Go's
#                               json refuses a string for an int64
#     jaeger.go                 CheckHealth: Services() without error
#     querydata.go, utils/client_utils.go  what is read of them
#
# Jaeger UI's own client (github.com/jaegertracing/jaeger-ui,
# packages/jaeger-ui/src/api/jaeger.ts) asks the same paths; the
# differences it needs are at the end.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use B ();
use File::Temp ();
use JSON::PP ();
use Edgetrace::Test qw(:all);
use Edgetrace::Serve qw(start_serve start_chain);

my $c = start_chain();
my $redis = $c->redis;
sub chain { my ($t, $st, @s) = $c->request(@_); return ($t, @s) }

my $t0_us = int(time() * 1e6) - 1_000_000;
my ($t_ok, @s_ok) = chain('/orders/42');
my ($t_err) = chain('/status/500');
my ($t_slow) = chain('/slow/300');
my $t1_us = int(time() * 1e6) + 1_000_000;

my $token = join('', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 40);
my $dir = File::Temp::tempdir('et-grafana-XXXXXX', TMPDIR => 1,
                              CLEANUP => 1);
open my $fh, '>', "$dir/token" or die "$dir/token: $!\n";
print $fh "$token\n";
close $fh or die "$dir/token: $!\n";

my $s = start_serve($redis, args => ['--token-file', "$dir/token"]);

# Grafana's data source settings: URL http://127.0.0.1:PORT, and the
# token as a custom header "Authorization: Bearer ..." (basic auth is
# Grafana's "Basic auth" switch: t/cli/047)
sub grafana {
    my ($path) = @_;
    return $s->get($path, headers => [['Authorization', "Bearer $token"]]);
}

my $stored = 0;
wait_until(sub {
    my ($st, $j) = grafana('/api/edgetrace/status');
    $stored = $j->{data}{counters}{spansStored} if $st == 200;
    $stored == 12;
}, 15);
is($stored, 12, 'serve stored the twelve spans of three requests');

# Go's json: a number without a fraction into int64, never a string
sub is_int {
    my ($v) = @_;
    return 0 unless defined $v && !ref $v;
    my $f = B::svref_2object(\$v)->FLAGS;
    return ($f & B::SVp_IOK) && !($f & B::SVp_POK);
}
sub is_str { defined $_[0] && !ref $_[0] && !is_int($_[0]) }
sub is_list_of {
    my ($v, $ok) = @_;
    return ref $v eq 'ARRAY' && !grep { !$ok->($_) } @$v;
}
# types.go KeyValueType: {key string, type string, value any}
sub is_kv {
    my ($t) = @_;
    return ref $t eq 'HASH' && is_str($t->{key}) && is_str($t->{type})
           && exists $t->{value};
}

# --- testDatasource: GET /api/services, data.length > 0 (datasource.ts)
#     client.go Services: GET {url}/api/services into ServicesResponse

my ($st, $j, $body) = grafana('/api/services');
is($st, 200, 'testDatasource: /api/services 200');
ok(is_list_of($j->{data}, \&is_str) && @{ $j->{data} } > 0,
   '... data: a non-empty list of strings (ServicesResponse.Data []string)');
ok(is_int($j->{total}) && is_int($j->{limit}) && is_int($j->{offset}),
   '... total, limit, offset: ints (ServicesResponse)');
is_deeply([sort @{ $j->{data} }], [qw(app edge)], '... edge and app');
# jaeger.go CheckHealth only decodes Services()'s body, whatever the
# status: a 401 must still be the envelope, with data null
($st, $j) = $s->get('/api/services');
is($st, 401, 'without the token: 401 (the browser shows the status)');
ok(exists $j->{data} && !defined $j->{data}
   && $j->{errors}[0]{code} == 401,
   '... in the envelope: data null, errors [{code: 401}]');

# --- SearchForm: the operations of a service, as strings that it sorts
#     (values.sort().map(option => ({label: option, value: option})));
#     client.go Operations: url.JoinPath(url, "/api/services/", s,
#     "/operations") into ServicesResponse

($st, $j) = grafana('/api/services/edge/operations');
is($st, 200, '/api/services/edge/operations');
ok(is_list_of($j->{data}, \&is_str) && @{ $j->{data} },
   '... data: a list of strings, not objects');
my %edge_ops = map { ($_ => 1) } @{ $j->{data} };
my ($edge_srv) = grep { $_->{'service.name'} eq 'edge'
                        && $_->{kind} eq 'server' } @s_ok;
ok($edge_ops{ $edge_srv->{name} }, "... with the edge's server span name");

# --- query by trace id: GET /api/traces/{encodeURIComponent(id)}, and
#     with "Enable Time Parameters" (jsonData.traceIdTimeParams) on,
#     ?start=&end= (datasource.ts: us;
#     client.go Trace: q.TimeRange.From.UnixMilli(), ms).  A trace id
#     names one trace: the window, in either unit, must not hide it.

for my $q ('', "?start=$t0_us&end=$t1_us",
           '?start=' . int($t0_us / 1000) . '&end=' . int($t1_us / 1000))
{
    ($st, $j) = grafana("/api/traces/$t_ok$q");
    is($st, 200, "/api/traces/{id}$q: 200");
    is(scalar @{ $j->{data} || [] }, 1, '... response.data.data[0]');
}
($st, $j) = grafana('/api/traces/' . uc $t_ok);
is($j->{data}[0]{traceID}, $t_ok, 'a trace id pasted in capitals');

($st, $j) = grafana("/api/traces/$t_ok");
my $tr = $j->{data}[0];
is($tr->{traceID}, $t_ok, 'TraceResponse.TraceID');
ok(ref $tr->{processes} eq 'HASH', 'TraceResponse.Processes: an object');
for my $pid (sort keys %{ $tr->{processes} }) {
    my $p = $tr->{processes}{$pid};
    ok(is_str($p->{serviceName}), "process $pid: serviceName a string");
    ok(!defined $p->{tags} || is_list_of($p->{tags}, \&is_kv),
       "process $pid: tags, [{key, type, value}] (serviceTags)");
}
ok(!defined $tr->{warnings} || is_list_of($tr->{warnings}, \&is_str),
   'TraceResponse.Warnings: null or strings');
is(scalar @{ $tr->{spans} }, 4, 'four spans');

my %by_id = map { ($_->{spanID} => $_) } @{ $tr->{spans} };
for my $sp (@{ $tr->{spans} }) {
    my $what = "span $sp->{spanID}";
    ok(is_str($sp->{traceID}) && is_str($sp->{spanID})
       && is_str($sp->{operationName}), "$what: ids and operationName");
    # responseTransform.ts toSpanRow: startTime / 1000, duration / 1000
    ok(is_int($sp->{startTime}) && is_int($sp->{duration}),
       "$what: startTime and duration, integers (us)");
    ok($sp->{startTime} >= $t0_us && $sp->{startTime} <= $t1_us,
       "$what: startTime in microseconds of now");
    # processes[span.processID].serviceName
    ok($tr->{processes}{ $sp->{processID} }, "$what: processID a process");
    # span.references?.find(r => r.refType === 'CHILD_OF')?.spanID
    ok(is_list_of($sp->{references}, sub {
           ref $_[0] eq 'HASH' && is_str($_[0]{refType})
           && is_str($_[0]{spanID}) && is_str($_[0]{traceID}) }),
       "$what: references [{refType, spanID, traceID}]");
    my ($parent) = grep { $_->{refType} eq 'CHILD_OF' }
                   @{ $sp->{references} };
    ok(!$parent || $by_id{ $parent->{spanID} },
       "$what: its CHILD_OF parent is in the trace");
    # span.logs.map(...): an array, never absent
    ok(is_list_of($sp->{logs}, sub {
           ref $_[0] eq 'HASH' && is_int($_[0]{timestamp})
           && is_list_of($_[0]{fields}, \&is_kv) }),
       "$what: logs [{timestamp int, fields}]");
    ok(is_list_of($sp->{tags}, \&is_kv), "$what: tags [{key, type, value}]");
    ok(!exists $sp->{flags} || is_int($sp->{flags}), "$what: flags an int");
    ok(!defined $sp->{warnings} || is_list_of($sp->{warnings}, \&is_str),
       "$what: warnings null or strings");
}
is(scalar(grep { !grep { $_->{refType} eq 'CHILD_OF' } @{ $_->{references} } }
          @{ $tr->{spans} }), 1, 'one root: parentSpanID undefined');

# an unknown trace: client.go Trace checks StatusCode/100 != 2 before it
# reads data[0]; the browser reads data?.[0]
($st, $j) = grafana('/api/traces/0123456789abcdef0123456789abcdef');
is($st, 404, 'an unknown trace id: 404');
is($j->{errors}[0]{code}, 404, '... errors[0].code');
ok(is_str($j->{errors}[0]{msg}), '... errors[0].msg');

# --- search: GET /api/traces?service&operation&tags&minDuration&
#     maxDuration&limit&start&end(&lookback=custom): start and end in us
#     (datasource.ts getTime: valueOf() * 1000; client.go Search:
#     UnixMicro()), tags the logfmt of the form as JSON (util.ts
#     convertTagsLogfmt, client.go: logfmt.NewDecoder, json.Marshal),
#     durations as typed ("e.g. 1.2s, 100ms, 500us": AdvancedOptions.tsx)

sub enc {
    my ($v) = @_;
    utf8::encode($v);
    $v =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    return $v;
}
sub search {
    my (%p) = @_;
    my $q = join '&', map { "$_=" . enc($p{$_}) }
            sort keys %p;
    return grafana("/api/traces?$q&start=$t0_us&end=$t1_us");
}
sub found {
    my ($st, $j) = search(@_);
    return "status $st: " . ($j->{errors}[0]{msg} // '') unless $st == 200;
    return [sort map { $_->{traceID} } @{ $j->{data} }];
}

($st, $j) = search(service => 'edge', lookback => 'custom');
is($st, 200, 'search: service, start, end, lookback=custom');
ok(is_int($j->{total}) && is_int($j->{limit}),
   '... TracesResponse total, limit: ints');
is_deeply([sort map { $_->{traceID} } @{ $j->{data} }],
          [sort $t_ok, $t_err, $t_slow], '... the three traces');
# client_utils.go TransformSearchResponse sorts on Spans[0] before it
# checks the length: a trace with no span would panic it
ok(!grep({ !@{ $_->{spans} || [] } } @{ $j->{data} }),
   '... every trace has spans');
# transformTraceData / TransformSearchResponse: the earliest span,
# "service: operation", its duration
for my $t (@{ $j->{data} }) {
    my ($root) = sort { $a->{startTime} <=> $b->{startTime} }
                 @{ $t->{spans} };
    is($t->{processes}{ $root->{processID} }{serviceName}, 'edge',
       "trace $t->{traceID}: the root is edge's");
}

is_deeply(found(service => 'edge', operation => $edge_srv->{name},
                lookback => 'custom'), [sort $t_ok, $t_err, $t_slow],
          'operation');
is_deeply(found(service => 'edge', limit => 1), [$t_slow],
          'limit=1: the latest');
is_deeply(found(service => 'edge',
                tags => '{"http.response.status_code":"500"}'),
          [$t_err], 'tags {"http.response.status_code":"500"}, an int64 tag');
is_deeply(found(service => 'edge', tags => '{"error":"true"}'), [$t_err],
          'tags {"error":"true"} (the form\'s "error=true")');
is_deeply(found(service => 'edge',
                tags => '{"error":"true","url.path":"/status/500"}'),
          [$t_err], 'two tags');
is_deeply(found(service => 'edge', tags => '{"url.path":"/orders/42"}'),
          [$t_ok], 'tags {"url.path":"/orders/42"}');
is_deeply(found(service => 'edge', minDuration => '0.25s'), [$t_slow],
          'minDuration=0.25s');
is_deeply(found(service => 'edge', minDuration => '250ms',
                maxDuration => '1.2s'), [$t_slow],
          'minDuration=250ms, maxDuration=1.2s');
is_deeply(found(service => 'edge', maxDuration => '250000us'),
          [sort $t_ok, $t_err], 'maxDuration=250000us');
# Go's time.ParseDuration, which Jaeger uses, reads "µs" and "μs" too
is_deeply(found(service => 'edge', maxDuration => "250000\x{b5}s"),
          [sort $t_ok, $t_err], 'maxDuration=250000µs (U+00B5)');
is_deeply(found(service => 'edge', maxDuration => "250000\x{3bc}s"),
          [sort $t_ok, $t_err], 'maxDuration=250000μs (U+03BC)');
is_deeply(found(service => 'edge', minDuration => '1h15m'), [],
          'minDuration=1h15m: none');
($st, $j) = search(service => 'edge', minDuration => 'soon');
is($st, 400, 'a duration that is none: 400');
like($j->{errors}[0]{msg}, qr/minDuration/, '... errors[0].msg says which');

# --- dependencyGraph: GET /api/dependencies?endTs&lookback, both in ms
#     (datasource.ts: getTime(to) / 1000, endTs - getTime(from) / 1000;
#     client.go Dependencies: To.UnixMilli(), end - start).  The browser
#     takes a truthy "errors" for a failure (dependencyGraphTransform.ts:
#     if (errors)), Go a non-empty one: null on success.

my $end_ms = int($t1_us / 1000);
my $lookback = $end_ms - int($t0_us / 1000);
($st, $j, $body) = grafana("/api/dependencies?endTs=$end_ms"
                           . "&lookback=$lookback");
is($st, 200, "dependencyGraph: /api/dependencies?endTs&lookback (ms)");
like($body, qr/"errors":null/, '... errors: null, falsy for the browser');
ok(is_list_of($j->{data}, sub {
       is_str($_[0]{parent}) && is_str($_[0]{child})
       && is_int($_[0]{callCount}) }),
   '... data [{parent, child, callCount int}]');
is_deeply([map { [$_->{parent}, $_->{child}, $_->{callCount}] }
           @{ $j->{data} }], [['edge', 'app', 3]],
          '... edge -> app, three calls');
($st, $j) = grafana('/api/dependencies?endTs=now&lookback=1h');
is($st, 400, 'a bad endTs: 400');
ok(is_int($j->{errors}[0]{code}) && is_str($j->{errors}[0]{msg}),
   '... errors [{code int, msg}], which Grafana shows');

# --- Jaeger UI (jaeger.ts): the same paths; searchTraces adds
#     lookback=1h and start/end in us; fetchServiceOperations asks
#     /api/operations?service=&spanKind=, objects {name, spanKind}

($st, $j) = grafana("/api/traces?service=edge&lookback=1h&limit=20"
                    . "&start=$t0_us&end=$t1_us");
is(scalar @{ $j->{data} || [] }, 3, 'Jaeger UI search: lookback=1h');
($st, $j) = grafana('/api/operations?service=edge&spanKind=server');
ok(is_list_of($j->{data}, sub { is_str($_[0]{name})
                                && is_str($_[0]{spanKind}) })
   && @{ $j->{data} }, 'Jaeger UI: /api/operations, {name, spanKind}');

# its lookup of several ids and its trace comparison (TraceDiff) ask
# searchTraces({traceID: [...]}): traceID=a&traceID=b, no service; an id
# not found is an error {code, msg, traceID} beside the traces found
($st, $j) = grafana("/api/traces?traceID=$t_ok&traceID=" . uc $t_err);
is($st, 200, 'Jaeger UI: /api/traces?traceID=&traceID=, no service');
is_deeply([sort map { $_->{traceID} } @{ $j->{data} }],
          [sort $t_ok, $t_err], '... the two traces');
is($j->{errors}, undef, '... errors: null');
my $none = '0123456789abcdef0123456789abcdef';
($st, $j) = grafana("/api/traces?traceID=$t_ok&traceID=$none"
                    . '&service=nobody&lookback=1h');
is($st, 200, 'an unknown id among them: 200');
is_deeply([map { $_->{traceID} } @{ $j->{data} }], [$t_ok],
          '... the trace found (the other parameters are not read)');
is_deeply($j->{errors}, [{ code => 404, msg => 'trace not found',
                           traceID => $none }],
          '... and errors [{code: 404, msg, traceID}] for the other');
($st, $j) = grafana('/api/traces?traceID=xyz');
is($st, 400, 'traceID=xyz: 400');

is($s->stop, 0, 'SIGTERM: exit 0');

done_testing();
