#!/usr/bin/perl
# edgetrace serve --retain: the spans that started longer ago are deleted
# in the background with everything that refers to them: their
# attributes (a search by tags finds them no more), their words in the
# full-text index (FTS5's own vocabulary, read with fts5vocab, has none
# of them left), the per-minute RED and dependency rows of their
# minutes.  What is newer stays.  A database of an earlier serve, with
# a table of tags, opens without it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli);
use Edgetrace::Serve qw(start_serve);

my $redis = start_redis();
my $rc = $redis->client;
my $now = int(time());

# a trace of two services, $ago seconds ago, its words in url.path
sub trace {
    my ($ago, $word) = @_;
    my $t = new_trace_id();
    my ($root, $child) = (new_span_id(), new_span_id());
    my $start = ($now - $ago) . '000000000';
    my $end = ($now - $ago) . '005000000';
    $rc->xadd('edgetrace:spans', '*', v => 1, trace_id => $t,
              span_id => $root, name => "GET /$word", kind => 'server',
              start_ns => $start, end_ns => $end, status => 'unset',
              'service.name' => 'edge', 'url.path' => "/$word/needle");
    $rc->xadd('edgetrace:spans', '*', v => 1, trace_id => $t,
              span_id => $child, parent_id => $root, name => "GET /$word",
              kind => 'server', start_ns => $start, end_ns => $end,
              status => 'error', 'service.name' => 'app',
              'url.path' => "/$word/needle",
              'event.0' => "upstream.try peer=$word status=502");
    return $t;
}

my $old = trace(7200, 'yesteryear');
my $new = trace(60, 'lately');

sub vocab {
    my ($db, $term) = @_;
    my $out = `sqlite3 '$db' "CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, span_text, 'row'); SELECT doc FROM v WHERE term = '$term';"`;
    chomp $out;
    return $out eq '' ? 0 : $out;
}

# a first run keeps everything
my $s = start_serve($redis);
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == 4 }), 'stored');
my ($st, $j) = $s->get('/api/edgetrace/search?q=needle&start=0');
is(scalar @{ $j->{data} }, 4, 'without --retain: every span found');
is(vocab($s->db, 'yesteryear'), 2, 'the old words indexed, twice');
is($s->stop, 0, 'stopped');

# --retain 1h: the trace of two hours ago goes
$s = start_serve($redis, db => $s->db, dir => $s->dir,
                 args => ['--retain', '1h']);
my $status = $s->wait_status(sub { $_[0]{counters}{spansTrimmed} == 2 });
ok($status, '--retain 1h: the two old spans trimmed');
is($status->{retainSeconds}, 3600, 'status: retainSeconds');
is(($s->get("/api/traces/$old"))[0], 404, 'the old trace: 404');
($st, $j) = $s->get("/api/traces/$new");
is(scalar @{ $j->{data}[0]{spans} }, 2, 'the new trace kept, whole');
($st, $j) = $s->get('/api/edgetrace/search?q=needle&start=0');
is_deeply([sort map { $_->{traceID} } @{ $j->{data} }], [$new, $new],
          'the keyword finds the new spans only');
is(vocab($s->db, 'yesteryear'), 0, 'the old words gone from FTS5');
is(vocab($s->db, 'lately'), 2, 'the new ones there');
is(vocab($s->db, 'needle'), 2, 'a word of both: the new spans\' only');
($st, $j) = $s->get('/api/traces?service=edge&start=0'
                    . '&tag=url.path:/yesteryear/needle');
is_deeply($j->{data}, [], 'the old tags gone');
($st, $j) = $s->get('/api/traces?service=app&start=0'
                    . '&tag=url.path:/lately/needle');
is_deeply([map { $_->{traceID} } @{ $j->{data} }], [$new],
          'the new tags found');
my $end = ($now + 60) * 1000;
($st, $j) = $s->get("/api/dependencies?endTs=$end&lookback=86400000");
is_deeply($j->{data}, [{ parent => 'edge', child => 'app', callCount => 1,
                         errorCount => 1 }],
          'the old minute\'s dependency gone');
($st, $j) = $s->get("/api/edgetrace/red?endTs=$end&lookback=86400000"
                    . '&step=3600000');
is_deeply([sort map { "$_->{service} $_->{operation} $_->{count}" }
           @{ $j->{data} }], ['app GET /lately 1', 'edge GET /lately 1'],
          'the old minute\'s RED rows gone');
my (undef, undef, $m) = $s->get('/metrics');
like($m, qr/^edgetrace_serve_spans_trimmed_total 2$/m, '/metrics: trimmed');
is($s->stop, 0, 'exit 0');

# a database of an earlier serve, with its table of a row per attribute:
# the table is dropped when serve opens it, and a search by tags finds
# the spans by their own attributes, exactly (docs/serve.md, "Storage")
my $db = $s->db;
`sqlite3 '$db' "CREATE TABLE tags (key BLOB NOT NULL, value BLOB NOT NULL, span INTEGER NOT NULL, PRIMARY KEY (key, value, span)) WITHOUT ROWID; INSERT INTO tags SELECT CAST('url.path' AS BLOB), CAST(CAST('/lately/needle' AS TEXT) AS BLOB), id FROM spans;"`;
is(`sqlite3 '$db' "SELECT COUNT(*) FROM tags"` + 0, 2,
   'an earlier database: a row per attribute');
$s = start_serve($redis, db => $db, dir => $s->dir);
ok($s->wait_status(sub { 1 }), 'serve opens it');
is(`sqlite3 '$db' "SELECT COUNT(*) FROM sqlite_master WHERE name = 'tags'"`
   + 0, 0, 'its table of tags dropped');

sub tagged {
    my ($service, $tag) = @_;
    my ($code, $r) = $s->get("/api/traces?service=$service&start=0&$tag");
    return [map { $_->{traceID} } @{ $r->{data} || [] }];
}

is_deeply(tagged('edge', 'tag=url.path:/lately/needle'), [$new],
          'its spans found by a tag');
is_deeply(tagged('edge', 'tags=%7B%22url.path%22%3A%22%2Flately%2Fneedle'
                         . '%22%2C%22service.name%22%3A%22edge%22%7D'), [],
          'service.name is no tag');
is_deeply(tagged('edge', 'tag=url.path:/lately'), [],
          'a prefix of the value: no match');
is_deeply(tagged('edge', 'tag=url.path:/lately/needle/'), [],
          'a longer value: no match');
is_deeply(tagged('edge', 'tag=url.path:/lately/needlE'), [],
          'the value\'s bytes exactly');
is_deeply(tagged('edge', 'tag=URL.path:/lately/needle'), [],
          'the key\'s bytes exactly');
is_deeply(tagged('app', 'tag=event.0:upstream.try%20peer%3Dlately'
                        . '%20status%3D502'), [],
          'an event is no tag');
is($s->stop, 0, 'exit 0');

my $r = run_cli($redis, 'serve', '--retain', '10ms');
is($r->{rc}, 2, '--retain below 1s: exit 2');
like($r->{err}, qr/--retain must be at least 1s/, '... said');

done_testing();
