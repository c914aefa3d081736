#!/usr/bin/perl
# edgetrace serve through outages.  Redis stopped: the API answers from
# the database, /api/edgetrace/status and /metrics say ingestion is
# paused; Redis back: serve reads on.  The database refusing batches (a
# write lock held by another process): nothing is acknowledged, status
# says the store fails; the lock gone: the batch is stored.  serve killed
# with SIGKILL while its batch was refused: a new run stores that batch,
# each span once.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Handle;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(start_stack request);
use Edgetrace::Serve qw(start_serve all_acked);

my ($redis, $b, $ngx) = start_stack();
my $port = $redis->port;

my @t = map { request($redis, $ngx, "/api/before$_") } 1 .. 3;
my $s = start_serve($redis);
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == 6 }),
   'six spans stored');

sub trace_spans_served {
    my ($id) = @_;
    my ($st, $j) = $s->get("/api/traces/$id");
    return $st == 200 ? scalar @{ $j->{data}[0]{spans} } : "status $st";
}

sub metric {
    my ($name) = @_;
    my (undef, undef, $body) = $s->get('/metrics');
    return $body =~ /^\Q$name\E (\S+)$/m ? $1 : undef;
}

# --- Redis stopped, then back

$redis->stop;
my $st = $s->wait_status(sub { $_[0]{ingestion} eq 'paused' });
ok($st, 'Redis stopped: ingestion paused');
is($st->{redis}, 'down', 'status: Redis down');
is($st->{counters}{redisLost}, 1, 'status: Redis lost once');
is(metric('edgetrace_serve_ingestion_paused'), 1, '/metrics: paused');
is(metric('edgetrace_serve_redis_lost_total'), 1, '/metrics: lost once');
is(trace_spans_served($t[0]), 2, 'the API answers from the database');
my ($code, $j) = $s->get('/api/services');
is_deeply($j->{data}, ['edge'], '/api/services too');

$redis = Edgetrace::Test::start_redis(port => $port);
$st = $s->wait_status(sub { $_[0]{ingestion} eq 'running' }, 30);
ok($st, 'Redis back: ingestion running');
is($st->{redis}, 'up', 'status: Redis up');
is(metric('edgetrace_serve_ingestion_paused'), 0, '/metrics: not paused');
my $after = request($redis, $ngx, '/api/after', spans => 2);
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == 8 }),
   'a trace written after the restart is stored');
is(trace_spans_served($after), 2, '... and served');
like($s->proc->err, qr/serve: Redis at redis:\/\/127\.0\.0\.1:$port: .*reconnecting/,
     'the outage said once on stderr');
like($s->proc->err, qr/serve: Redis at \S+ is back/, 'and its end');

# --- the database refuses: a write lock held by another process

sub lock_db {
    my $pid = open(my $h, '|-', 'sqlite3', $s->db) // die "sqlite3: $!";
    $h->autoflush(1);
    print $h "BEGIN EXCLUSIVE;\n";
    return $h;
}

my $lock = lock_db();
sleep 1;
my $held = request($redis, $ngx, '/api/held', spans => 2);
$st = $s->wait_status(sub { $_[0]{store} eq 'failing' }, 30);
ok($st, 'the database locked: the store fails');
is($st->{ingestion}, 'paused', 'status: ingestion paused');
like($st->{storeError}, qr/locked/, 'status: why');
cmp_ok($st->{counters}{storeFailures}, '>=', 1, 'a failure counted');
cmp_ok($redis->client->xpending('edgetrace:spans', 'edgetrace-serve')->[0],
       '>=', 1, 'the batch is pending, not acknowledged');
is(trace_spans_served($held), 'status 404', 'the trace is not stored');
print $lock "COMMIT;\n";
close $lock;
$st = $s->wait_status(sub { $_[0]{store} eq 'ok'
                            && $_[0]{counters}{spansStored} == 10 }, 30);
ok($st, 'the lock gone: stored');
ok(all_acked($redis->client),
   'and acknowledged');
is(trace_spans_served($held), 2, 'the trace is served');
like($s->proc->err, qr/serve: \S+: database is locked; nothing acknowledged, retrying/,
     'the failure said on stderr');

# --- SIGKILL while a batch is refused: the next run stores it

$lock = lock_db();
sleep 1;
my $killed = request($redis, $ngx, '/api/killed', spans => 2);
ok($s->wait_status(sub { $_[0]{store} eq 'failing' }, 30),
   'a batch refused');
$s->proc->kill('KILL');
is($s->proc->wait(5), 128 + 9, 'serve killed with SIGKILL');
cmp_ok($redis->client->xpending('edgetrace:spans', 'edgetrace-serve')->[0],
       '>=', 1, 'its batch pending');
print $lock "COMMIT;\n";
close $lock;

$s = start_serve($redis, db => $s->db, dir => $s->dir);
ok($s->wait_status(sub { $_[0]{counters}{spansStored} >= 2 }),
   'the new run stored the pending batch');
is(trace_spans_served($killed), 2, 'the trace is served, its spans once');
ok(all_acked($redis->client),
   'nothing pending');
is(trace_spans_served($t[1]), 2, 'what the first run stored is there');
is($s->stop, 0, 'exit 0');

done_testing();
