#!/usr/bin/perl
# edgetrace serve's store, batch by batch (docs/serve.md, "Storage" and
# "Performance"): a batch's spans are summed into their per-minute RED and
# dependency rows in memory and each row is written once, so the rows are
# the same whether the spans came in one batch or in many, and a copy
# changes none of them.  A database made by an earlier version has its
# old indexes replaced.  /api/traces gives the most recent traces, each
# once, stopping at its limit; the keyword search the last spans stored,
# newest first.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Serve qw(start_serve all_acked);

my $redis = start_redis();
my $rc = $redis->client;
my $now = int(time());
my $minute = $now - $now % 60 - 120;

sub span {
    $rc->xadd('edgetrace:spans', '*', v => 1, @_);
}

# 40 traces in one minute, trace $i starting $i seconds into it: an edge
# server span, its client span, the app's server span under it (every
# fifth one failed), of 1 to 40 ms
my (@traces, @app);
for my $i (0 .. 39) {
    my $t = new_trace_id();
    my ($r, $c, $a) = (new_span_id(), new_span_id(), new_span_id());
    my $start = ($minute + $i) * 1_000_000_000;
    my $d = (1 + $i) * 1_000_000;
    push @traces, $t;
    span(trace_id => $t, span_id => $r, name => 'GET /shop',
         kind => 'server', start_ns => $start,
         end_ns => $start + $d + 3_000_000, status => 'unset',
         'service.name' => 'edge',
         'url.path' => "/shop/item$i");
    span(trace_id => $t, span_id => $c, parent_id => $r, name => 'GET /shop',
         kind => 'client', start_ns => $start + 1_000_000,
         end_ns => $start + $d + 2_000_000, status => 'unset',
         'service.name' => 'edge');
    my @f = (trace_id => $t, span_id => $a, parent_id => $c,
             name => 'GET /shop', kind => 'server',
             start_ns => $start + 2_000_000,
             end_ns => $start + 2_000_000 + $d,
             status => $i % 5 ? 'unset' : 'error', 'service.name' => 'app');
    span(@f);
    push @app, \@f;
}

# a span that arrives last but started an hour before the others
my ($late, $late_span) = (new_trace_id(), new_span_id());
span(trace_id => $late, span_id => $late_span, name => 'GET /shop',
     kind => 'server', start_ns => ($minute - 3600) * 1_000_000_000,
     end_ns => ($minute - 3600) * 1_000_000_000 + 1_000_000,
     status => 'unset', 'service.name' => 'late',
     'url.path' => '/lateword');

sub sql {
    my ($db, $q) = @_;
    my $out = `sqlite3 '$db' "$q"`;
    chomp $out;
    return $out;
}

my $aggs = 'SELECT service, name, count, errors, duration_sum, duration_max,'
           . ' hex(histogram) FROM red ORDER BY 1, 2;'
           . ' SELECT parent, child, count, errors FROM dependencies;';

# every span in one batch (serve's default), then 7 a batch in a second
# group and database
my $one = start_serve($redis);
ok($one->wait_status(sub { $_[0]{counters}{spansStored} == 121 }),
   'one batch: the 121 spans stored')
    or diag(explain($one->wait_status(sub { 1 })));
my $many = start_serve($redis, args => ['--batch', 7, '--group', 'many']);
ok($many->wait_status(sub { $_[0]{counters}{spansStored} == 121 }),
   'batches of 7: the 121 spans stored');
ok($many->wait_status(sub { $_[0]{counters}{batches} >= 18 }),
   '... in 18 batches');

my $red = sql($one->db, $aggs);
is($red, sql($many->db, $aggs),
   'the RED and dependency rows: the same in one batch and in many');
my %rows = map { my @f = split /\|/; ("$f[0] $f[1]" => \@f) }
               split /\n/, sql($one->db, 'SELECT service, name, count,'
                               . ' errors, duration_max FROM red');
is_deeply([@{ $rows{'edge GET /shop'} }[2 .. 4]], [80, 0, 43000],
          'edge: 80 spans counted once each, no error, the longest 43 ms');
is_deeply([@{ $rows{'app GET /shop'} }[2 .. 4]], [40, 8, 40000],
          'app: 40 spans, 8 failed, the longest 40 ms');
is(sql($one->db, 'SELECT parent, child, count, errors FROM dependencies'),
   'edge|app|40|8', 'edge -> app: 40 calls, 8 failed, in one row');

# copies of ten app spans: counted as duplicates, the rows unchanged
span(@{ $app[$_] }) for 0 .. 9;
ok($one->wait_status(sub { $_[0]{counters}{duplicates} == 10 }),
   'ten copies: duplicates');
ok(all_acked($rc), '... acknowledged');
is(sql($one->db, $aggs), $red, '... and the aggregates unchanged');

# /api/traces: the three most recent traces of edge (two matching spans
# each), each once, newest first
my ($st, $j) = $one->get("/api/traces?service=edge&limit=3&start=0");
is($st, 200, '/api/traces?limit=3');
is_deeply([map { $_->{traceID} } @{ $j->{data} }], [@traces[39, 38, 37]],
          '... the three most recent traces, each once, newest first');
($st, $j) = $one->get("/api/traces?service=app&limit=100&start=0"
                      . "&tags=%7B%22error%22%3A%22true%22%7D");
is_deeply([map { $_->{traceID} } @{ $j->{data} }],
          [@traces[35, 30, 25, 20, 15, 10, 5, 0]],
          '... the eight traces with a failed app span, newest first');

# the keyword search: the last two spans stored, newest first
($st, $j) = $one->get('/api/edgetrace/search?q=shop&limit=2&start=0');
is_deeply([map { $_->{traceID} } @{ $j->{data} }], [$traces[39], $late],
          'search: the two spans stored last, the newest first');

# the full-text index keeps no row a span of its size (columnsize = 0:
# for ranking, which the search does not do); FTS5 merges 16 segments a
# level (docs/serve.md, "Storage")
is(sql($one->db, "SELECT COUNT(*) FROM sqlite_master"
                 . " WHERE name = 'span_text_docsize'"), 0,
   'no span_text_docsize table');
is(sql($one->db, "SELECT v FROM span_text_config WHERE k = 'automerge'"),
   16, 'automerge 16');

$one->stop;
$many->stop;

# --- a database of an earlier version: its indexes replaced

my $db = $one->db;
sql($db, 'CREATE INDEX spans_parent ON spans (trace_id, parent_id);'
         . ' CREATE INDEX spans_service ON spans (service, start_us);'
         . ' CREATE INDEX spans_duration ON spans (duration_us);'
         . ' CREATE INDEX spans_status ON spans (error, start_us);'
         . ' DROP INDEX spans_window;');
my $again = start_serve($redis, db => $db);
ok($again->wait_status(sub { $_[0]{counters}{spansStored} == 0 }),
   'serve on a database of an earlier version');
is(sql($db, "SELECT group_concat(name, ' ') FROM (SELECT name FROM"
            . " sqlite_master WHERE type = 'index' AND tbl_name = 'spans'"
            . " AND name LIKE 'spans_%' ORDER BY name)"),
   'spans_operation spans_start spans_trace spans_window',
   '... its indexes are those of this one');
($st, $j) = $again->get("/api/traces?service=edge&limit=1&start=0");
is($j->{data}[0]{traceID}, $traces[39], '... and it answers');
$again->stop;

# --- a span's id among its words (format 1): found by its id, by the
# keyword search too, gone with the span; a database of before (format 0)
# keeps its span id index, and words without the id (docs/serve.md)

my %a7 = @{ $app[7] };
my $sid = $a7{span_id};
is(sql($db, 'PRAGMA user_version'), 1, 'a new database: format 1');
is(sql($db, "SELECT COUNT(*) FROM span_text WHERE span_text MATCH"
            . " '\"$sid\"'"), 1, 'a span\'s id is among its words');
$again = start_serve($redis, db => $db, args => ['--retain', '1h']);
($st, $j) = $again->get("/api/edgetrace/spans/$sid");
is_deeply([$st, $j->{data}[0]{traceID}], [200, $traces[7]],
          '/api/edgetrace/spans/{id}: its trace');
($st, $j) = $again->get("/api/edgetrace/search?q=$sid&start=0");
is_deeply([map { $_->{spanID} } @{ $j->{data} }], [$sid],
          'the keyword search finds a span by its id');
is(($again->get('/api/edgetrace/spans/' . substr($sid, 0, 15) . 'x'))[0],
   400, 'not an id: 400');
is(($again->get('/api/edgetrace/spans/' . ('7' x 16)))[0], 404,
   'an id no span has: 404');
ok(wait_until(sub { sql($db, "SELECT COUNT(*) FROM spans"
                             . " WHERE trace_id = '$late'") == 0 }, 30),
   '--retain 1h: the span of an hour ago trimmed');
is(sql($db, "SELECT COUNT(*) FROM span_text WHERE span_text MATCH"
            . " '\"$late_span\" OR lateword'"), 0,
   '... its words, its id among them, gone from the index');
is(($again->get("/api/edgetrace/spans/$late_span"))[0], 404,
   '... not found by its id');
$again->stop;

my $zero = $one->dir . '/format0.db';
sql($zero, 'CREATE TABLE spans (id INTEGER PRIMARY KEY, trace_id TEXT NOT'
           . ' NULL, span_id TEXT NOT NULL, parent_id TEXT, service BLOB'
           . ' NOT NULL, name BLOB NOT NULL, kind INTEGER NOT NULL,'
           . ' start_us INTEGER NOT NULL, duration_us INTEGER NOT NULL,'
           . ' error INTEGER NOT NULL, tracestate BLOB, fields BLOB NOT'
           . ' NULL)');
my $old = start_serve($redis, db => $zero,
                      args => ['--group', 'zero', '--retain', '1h']);
ok($old->wait_status(sub { $_[0]{counters}{spansStored} == 121 }),
   'a database of before: every span stored');
is(sql($zero, 'PRAGMA user_version'), 0, '... format 0');
is(sql($zero, "SELECT COUNT(*) FROM sqlite_master WHERE name ="
              . " 'spans_span'"), 1, '... its span id index made');
is(sql($zero, "SELECT COUNT(*) FROM span_text WHERE span_text MATCH"
              . " '\"$sid\"'"), 0, '... ids not among the words');
($st, $j) = $old->get("/api/edgetrace/spans/$sid");
is_deeply([$st, $j->{data}[0]{traceID}], [200, $traces[7]],
          '... a span found by its id, through the index');
ok(wait_until(sub { sql($zero, "SELECT COUNT(*) FROM spans"
                               . " WHERE trace_id = '$late'") == 0 }, 30),
   '... --retain 1h trims');
is(sql($zero, "SELECT COUNT(*) FROM span_text WHERE span_text MATCH"
              . " 'lateword'"), 0, '... and the trimmed span\'s words go');
is(sql($zero, "SELECT COUNT(*) FROM span_text WHERE span_text MATCH"
              . " 'shop'"), 120, '... the others\' stay');
$old->stop;

# --- a search by tags through the spans with the tags' words, when few
# have them: the same answers as through the window's spans (docs/serve.md)

$rc->del('edgetrace:spans');
my %tagged;
for my $t (['a', 'app.user' => 'alice smith'],
           ['b', 'app.note' => 'alice smith'],
           ['c', 'app.user' => 'Alice Smith'],
           ['d', 'app.q' => "say \"hi\" \x{c3}\x{bc}n\x{c3}\x{af}code"],
           ['e', 'app.dash' => '--'],
           ['f', 'app.raw' => "ab\xffcd x"]) {
    my ($k, @attr) = @$t;
    $tagged{$k} = new_trace_id();
    span(trace_id => $tagged{$k}, span_id => new_span_id(), name => 'GET /t',
         kind => 'server', start_ns => ($minute + 5) * 1_000_000_000,
         end_ns => ($minute + 5) * 1_000_000_000 + 1_000_000,
         status => 'unset', 'service.name' => 'tagged', @attr);
}
my $tg = start_serve($redis, args => ['--group', 'tags']);
ok($tg->wait_status(sub { $_[0]{counters}{spansStored} == 6 }),
   'six tagged spans stored');
sub tagged {
    my ($json) = @_;
    (my $q = $json) =~ s/([^A-Za-z0-9._~-])/sprintf('%%%02X', ord $1)/ge;
    my ($code, $r) = $tg->get("/api/traces?service=tagged&start=0&tags=$q");
    my %by = reverse %tagged;
    return $code == 200 ? join(',', sort map { $by{ $_->{traceID} } }
                                         @{ $r->{data} })
                        : "status $code";
}
is(tagged('{"app.user":"alice smith"}'), 'a',
   'a tag\'s value: its words in another key\'s value, or in other case,'
   . ' do not match');
is(tagged('{"app.user":"Alice Smith"}'), 'c', '... byte for byte');
is(tagged('{"app.q":"say \\"hi\\" \u00fcn\u00efcode"}'), 'd',
   'quotes and accents in the value');
is(tagged('{"app.dash":"--"}'), 'e', 'a value without a word');
is(tagged('{"app.raw":"ab\\u00ffcd x"}'), '',
   'a value of other bytes than stored: none');
my ($fcode, $fj) = $tg->get('/api/traces?service=tagged&start=0'
                            . '&tag=app.raw:ab%FFcd%20x');
is_deeply([$fcode, [map { $_->{traceID} } @{ $fj->{data} }]],
          [200, [$tagged{f}]], 'a value with a byte that is not UTF-8');
is(tagged('{"app.user":"alice smith","app.note":"alice smith"}'), '',
   'two tags: both on one span');
$tg->stop;

done_testing();
