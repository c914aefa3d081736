#!/usr/bin/perl
# edgetrace serve --max-size: under continuous ingest of several times the
# bound, the database and its WAL on disk stay under it (plus the margin
# docs/serve.md gives) at every sample, the oldest traces go first and the
# newest stay, the spans trimmed are counted (spansTrimmedBySize, apart
# from --retain's spansTrimmed) and are exactly those no longer stored,
# and ingestion never stops.  A bound lowered: the file shrinks to it.
# Without --max-size, FTS5 merges by itself again.  The newest batch alone
# over the bound is kept, and said.  A database made before auto_vacuum
# keeps its pages in use under the bound.  Bad sizes are refused.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use POSIX ();
use Time::HiRes ();
use File::Copy ();
use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli);
use Edgetrace::Serve qw(start_serve all_acked);

my $redis = start_redis();
my $rc = $redis->client;
my $now = int(time()) - 600;

sub trace_id { sprintf('%08x%024x', $_[1], $_[0]) }

# $n traces of two spans, ~1.3 kB each (or $pad bytes more), started in
# the order sent (a millisecond apart), at about $rate spans a second,
# from a child process
sub produce {
    my ($tag, $n, $rate, $pad, $key) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    my $c = Edgetrace::Test::redis($redis->port);
    my $t0 = Time::HiRes::time();
    for my $i (1 .. $n) {
        my $t = trace_id($i, $tag);
        my $root = sprintf('%016x', 2 * $i);
        my $start = ($now + 60 * $tag) * 1000 + $i;
        my $words = join(' ', map { "w${i}x$_" } 1 .. 40);
        my @common = (v => 1, trace_id => $t, kind => 'server',
                      start_ns => "${start}000000",
                      end_ns => ($start + 3) . '000000', status => 'unset',
                      'url.path' => "/item/$i",
                      'user_agent.original' => $words . (' ' x 10)
                                               . ('ab' x 200)
                                               . ('x' x ($pad || 0)));
        $c->xadd($key // 'edgetrace:spans', '*', @common, span_id => $root,
                 name => 'GET /item', 'service.name' => 'edge');
        $c->xadd($key // 'edgetrace:spans', '*', @common,
                 span_id => sprintf('%016x', 2 * $i + 1),
                 parent_id => $root, name => 'GET /item',
                 'service.name' => 'app');
        my $ahead = 2 * $i / $rate - (Time::HiRes::time() - $t0);
        Time::HiRes::sleep($ahead) if $ahead > 0;
    }
    POSIX::_exit(0);
}

sub disk {
    my ($db) = @_;
    my $n = 0;
    for my $f ($db, "$db-wal") {
        $n += -s $f if -e $f;
    }
    return $n;
}

sub sql {
    my ($db, $q) = @_;
    my $out = `sqlite3 '$db' "$q"`;
    chomp $out;
    return $out;
}

# the bytes of the pages in use, as --max-size counts them
sub used {
    my ($db) = @_;
    return sql($db, 'SELECT page_count - freelist_count FROM '
                    . 'pragma_page_count(), pragma_freelist_count()')
           * sql($db, 'PRAGMA page_size');
}

my $max = 4 << 20;
my $margin = $max / 8;  # docs/serve.md: one batch and a checkpoint's WAL
my $traces = 7000;      # 14000 spans, ~18 MB: four times the bound

# a batch (50 spans, ~170 kB of pages) well under the WAL's share (1/16)
my $s = start_serve($redis, args => ['--max-size', '4m', '--batch', 50]);
my $producer = produce(1, $traces, 2500);
my ($peak_db, $peak_wal, $store_failed) = (0, 0, 0);
my ($samples, $over, $peak, $paused, $stalls, $last, $slowest) =
    (0, 0, 0, 0, 0, -1, 0);
my $since = Time::HiRes::time();
while (waitpid($producer, POSIX::WNOHANG()) == 0) {
    my $size = disk($s->db);
    ($peak, $peak_db) = ($size, -s $s->db) if $size > $peak;
    my $wal = -s ($s->db . '-wal') || 0;
    $peak_wal = $wal if $wal > $peak_wal;
    $over++ if $size > $max + $margin;
    my $t = Time::HiRes::time();
    my ($code, $j) = $s->get('/api/edgetrace/status');
    my $took = Time::HiRes::time() - $t;
    $slowest = $took if $took > $slowest;
    $samples++;
    # "starting" until Redis is first tried
    $paused++ if $j->{data}{ingestion} eq 'paused';
    $store_failed++ if $j->{data}{store} ne 'ok';
    # stored goes on growing: never a second without a commit
    if ($j->{data}{counters}{spansStored} > $last) {
        $last = $j->{data}{counters}{spansStored};
        $since = Time::HiRes::time();
    } elsif (Time::HiRes::time() - $since > 1) {
        $stalls++;
        $since = Time::HiRes::time();
    }
    Time::HiRes::sleep(0.05);
}
is($?, 0, 'the producer sent every span');
my $sent = 2 * $traces;
my $st = $s->wait_status(sub { $_[0]{counters}{spansStored}
                               + $_[0]{counters}{duplicates} >= $sent }, 60);
ok($st, 'every span ingested');
ok(all_acked($rc), 'and acknowledged');
my $size = disk($s->db);
$peak = $size if $size > $peak;
$over++ if $size > $max + $margin;
diag(sprintf('%d samples, peak %.2f MB (%.2f MB the database, the WAL at '
             . 'most %.2f MB) of %.2f + %.2f, the slowest status %.0f ms',
             $samples, $peak / 1048576, $peak_db / 1048576,
             $peak_wal / 1048576, $max / 1048576,
             $margin / 1048576, $slowest * 1000));
cmp_ok($samples, '>=', 20, "sampled $samples times while spans came");
is($over, 0, 'the files never over --max-size and its margin');
is($paused, 0, 'ingestion never paused');
is($store_failed, 0, 'the store never failed');
is($stalls, 0, 'never a second without a commit');
cmp_ok($slowest, '<', 1, 'the API answered within a second throughout');

$st = $s->wait_status(sub { 1 });
my $stored = sql($s->db, 'SELECT COUNT(*) FROM spans');
cmp_ok($stored, '<', $sent / 2, "$stored spans of $sent kept");
cmp_ok($stored, '>', 0, '... some');
is($st->{counters}{spansTrimmedBySize},
   $sent - $stored - $st->{counters}{duplicates},
   'spansTrimmedBySize: every span no longer stored');
is($st->{counters}{spansTrimmed}, 0, '--retain\'s counter apart');
is($st->{maxSizeBytes}, $max, 'status: maxSizeBytes');
is(($s->get('/api/traces/' . trace_id(1, 1)))[0], 404,
   'the oldest trace is gone');
my ($code, $j) = $s->get('/api/traces/' . trace_id($traces, 1));
is(scalar @{ $j->{data}[0]{spans} || [] }, 2, 'the newest is there, whole');
($code, $j) = $s->get("/api/edgetrace/search?q=w${traces}x7&start=0");
is(scalar @{ $j->{data} }, 2, 'its words found');
($code, $j) = $s->get('/api/edgetrace/search?q=w1x7&start=0');
is(scalar @{ $j->{data} }, 0, 'the oldest\'s words not');
is(sql($s->db, 'SELECT MIN(minute) FROM red'),
   int(sql($s->db, 'SELECT MIN(start_us) FROM spans') / 60000000),
   'no RED row of a minute before the spans kept');
my (undef, undef, $m) = $s->get('/metrics');
like($m, qr/^edgetrace_serve_spans_trimmed_by_size_total
            [ ] \Q$st->{counters}{spansTrimmedBySize}\E$/mx,
     '/metrics: counted');
# the stream idle: the steps go on merging FTS5's segments
my $fts;
ok(wait_until(sub { $fts = sql($s->db, "SELECT SUM(pgsize) FROM dbstat"
                                       . " WHERE name LIKE 'span_text%'");
                    $fts < $max / 2 }, 30),
   'the full-text index merged in the steps, the stream idle: its delete '
   . 'markers do not pile up') or diag("$fts bytes");
is($s->stop, 0, 'exit 0');
is(sql($s->db, "SELECT v FROM span_text_config WHERE k = 'automerge'"), 0,
   'FTS5 merges in the steps, not by itself');

# with --retain too: its trimmer's own connection leaves FTS5's merging
# to the steps
$s = start_serve($redis, db => $s->db, dir => $s->dir,
                 args => ['--max-size', '4m', '--retain', '7d']);
ok($s->wait_status(sub { 1 }), '--max-size and --retain');
# the trimmer's thread opens its connection as it starts: long done
Time::HiRes::sleep(1.5);
is(sql($s->db, "SELECT v FROM span_text_config WHERE k = 'automerge'"), 0,
   '... FTS5 merges in the steps still, the trimmer started');
is($s->stop, 0, 'exit 0');

# a bound lowered, and no span coming: trimmed while the stream is idle
# (the bound 0.6 of the pages in use: over it whatever the trimming left),
# on a database of its own, from a stream of its own, filled without a bound
my $copy = $s->dir . '/idle.db';
my @idle_stream = (global => ['--stream', 'idle:spans']);
my $main_s = $s;
$s = start_serve($redis, db => $copy, dir => $s->dir, @idle_stream);
waitpid(produce(9, 1500, 5000, 0, 'idle:spans'), 0);
all_acked($rc, 'idle:spans') or die "idle.db: not all stored\n";
$s->stop == 0 or die "idle.db: serve failed\n";
# the words in one FTS5 segment: the delete markers of the trimming go
# only with a merge into it, which a level of few segments never asks for
sql($copy, "INSERT INTO span_text (span_text) VALUES ('optimize')");
my $before_idle = used($copy);
my $idle = int($before_idle * 0.6 / 1024) << 10;
$s = start_serve($redis, db => $copy, dir => $s->dir, @idle_stream,
                 args => ['--max-size', ($idle >> 10) . 'k', '--batch', 20]);
my $idle_st;
ok(wait_until(sub {
       $idle_st = $s->wait_status(sub { 1 });
       $idle_st->{counters}{spansTrimmedBySize} > 0
       && used($s->db) <= $idle && disk($s->db) <= $idle * 9 / 8 }, 30),
   "a bound lowered to 0.6 of the pages in use ($before_idle bytes), no "
   . 'span coming: spans trimmed, the pages in use and the files under it')
    or diag(used($s->db) . ' bytes in use, ' . disk($s->db) . ' on disk');
$st = $idle_st;
is($st->{counters}{spansStored}, 0, 'none came');
is($s->stop, 0, 'exit 0');

# the least bound, under what the spans' words took: only merging the
# delete markers into the one segment brings the pages in use under it (the
# file follows at the next checkpoint)
$s = start_serve($redis, db => $copy, dir => $s->dir, @idle_stream,
                 args => ['--max-size', '1m', '--batch', 20]);
ok(wait_until(sub { used($s->db) <= 1 << 20 }, 30),
   'a bound of 1m, no span coming: the pages in use under it')
    or diag(used($s->db) . ' bytes in use');
is($s->stop, 0, 'exit 0');
$s = $main_s;

# a bound lowered: the file shrinks to it as spans come in
my $before = -s $s->db;
$s = start_serve($redis, db => $s->db, dir => $s->dir,
                 args => ['--max-size', '2m', '--batch', 20]);
$producer = produce(3, 1500, 5000);
waitpid($producer, 0);
$st = $s->wait_status(sub { $_[0]{counters}{spansStored} >= 3000 }, 60);
ok($st, 'a bound lowered to 2m: every span ingested');
ok(all_acked($rc), 'and acknowledged');
$size = disk($s->db);
cmp_ok($size, '<=', (2 << 20) * 9 / 8, "the files under it: $size bytes");
cmp_ok(-s $s->db, '<=', 2 << 20,
       "the database file shrank to it, from $before bytes");
is(($s->get('/api/traces/' . trace_id(1500, 3)))[0], 200,
   'the newest trace there');
is(($s->get('/api/traces/' . trace_id($traces, 1)))[0], 404,
   'the newest of before gone');
is($s->stop, 0, 'exit 0');

# without --max-size, FTS5 merges by itself again
$s = start_serve($redis, db => $s->db, dir => $s->dir);
ok($s->wait_status(sub { 1 }), 'without --max-size');
is(sql($s->db, "SELECT v FROM span_text_config WHERE k = 'automerge'"), 16,
   'FTS5\'s automerge back, 16 segments a level');
is($s->stop, 0, 'exit 0');

# the newest batch alone over the bound: kept, and said
$rc->del('edgetrace:spans');
$s = start_serve($redis, db => $s->dir . '/over.db', dir => $s->dir,
                 args => ['--max-size', '1m']);
$producer = produce(4, 500, 5000, 3000);
waitpid($producer, 0);
$st = $s->wait_status(sub { $_[0]{counters}{spansStored} >= 1000 }, 60);
ok($st, 'spans of 4 kB, batches of 500: every span ingested');
ok(Edgetrace::Test::wait_until(sub {
    $s->proc->err =~ /the newest spans alone take \d+ bytes, over --max-size; kept/
}, 10), 'said: over, kept');
cmp_ok(sql($s->db, 'SELECT COUNT(*) FROM spans'), '>=', 500,
       'the newest batch kept whole');
is(($s->get('/api/traces/' . trace_id(500, 4)))[0], 200,
   'the newest trace there');
is($s->stop, 0, 'exit 0');

# a database made without auto_vacuum (before --max-size): it opens, it is
# said, its pages in use stay under the bound, its file does not shrink
my $dir = $s->dir;
my $old = "$dir/old.db";
sql($old, 'PRAGMA auto_vacuum = NONE; CREATE TABLE t (x)');
$rc->del('edgetrace:spans');
$s = start_serve($redis, db => $old, dir => $dir,
                 args => ['--max-size', '2m', '--batch', 20]);
$producer = produce(2, 2500, 5000);
waitpid($producer, 0);
$st = $s->wait_status(sub { $_[0]{counters}{spansStored} >= 5000 }, 60);
ok($st, 'an older database: every span ingested');
like($s->proc->err, qr/created without auto_vacuum/, 'said at the start');
is(sql($old, 'PRAGMA auto_vacuum'), 0, 'still without auto_vacuum');
cmp_ok($st->{counters}{spansTrimmedBySize}, '>', 0, 'trimmed by size');
my $used = used($old);
cmp_ok($used, '<=', (2 << 20) + (2 << 20) / 8, "its pages in use: $used");
is($s->stop, 0, 'exit 0');

for my $bad (['10x', qr/invalid --max-size "10x": a size is a number/],
             ['1.5g', qr/invalid --max-size "1\.5g"/],
             ['10gb', qr/invalid --max-size "10gb"/],
             ['', qr/invalid --max-size ""/],
             ['-1m', qr/invalid --max-size "-1m"/],
             ['99999999999g', qr/size too big/],
             ['512k', qr/--max-size must be at least 1m/]) {
    my $r = run_cli($redis, 'serve', '--max-size', $bad->[0]);
    is($r->{rc}, 2, "--max-size '$bad->[0]': exit 2");
    like($r->{err}, $bad->[1], '... said');
}

done_testing();
