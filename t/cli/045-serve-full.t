#!/usr/bin/perl
# edgetrace serve when the disk is full, simulated with a file size limit
# (RLIMIT_FSIZE, set on the running process with prlimit): the batch that
# does not fit is rolled back and nothing of it acknowledged, the status
# says the store fails and why, the failure is logged once; with the
# limit lifted, the same batch is stored and acknowledged.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Serve qw(start_serve all_acked);

my $redis = start_redis();
my $rc = $redis->client;

sub spans {
    my ($n, $size) = @_;
    for (1 .. $n) {
        $rc->xadd('edgetrace:spans', '*', v => 1, trace_id => new_trace_id(),
                  span_id => new_span_id(), name => 'GET /big',
                  kind => 'server', start_ns => '1765000000000000000',
                  end_ns => '1765000000001000000', status => 'unset',
                  'service.name' => 'edge',
                  'user_agent.original' => 'x' x $size);
    }
}

spans(10, 100);
my $s = start_serve($redis);
ok($s->wait_status(sub { $_[0]{counters}{spansStored} == 10 }),
   'ten spans stored');

# the files as they are, plus 64 kB: the next megabyte cannot fit
my $max = 0;
for my $f ($s->db, $s->db . '-wal') {
    $max = -s $f if -e $f && -s $f > $max;
}
my $limit = $max + 65536;
is(system('prlimit', '--pid', $s->proc->pid, "--fsize=$limit:"), 0,
   "a file size limit of $limit bytes set");

# each span over the 64 kB by itself: not even a batch of one fits
spans(250, 70000);
my $st = $s->wait_status(sub { $_[0]{store} eq 'failing' }, 30);
ok($st, 'the batch does not fit: the store fails');
is($st->{ingestion}, 'paused', 'status: ingestion paused');
like($st->{storeError}, qr/full|I\/O/i, "status: why ($st->{storeError})");
is($st->{counters}{spansStored}, 10, 'nothing of it counted as stored');
cmp_ok($rc->xpending('edgetrace:spans', 'edgetrace-serve')->[0], '>=', 1,
       'its entries pending, not acknowledged');
sleep 2;
my @said = $s->proc->err =~ /nothing acknowledged, retrying/g;
is(scalar @said, 1, 'said once, however often retried');
cmp_ok($s->wait_status(sub { 1 })->{counters}{storeFailures}, '>=', 2,
       'the retries counted');
my ($code, $j) = $s->get('/api/services');
is_deeply($j->{data}, ['edge'], 'the API answers meanwhile');

is(system('prlimit', '--pid', $s->proc->pid, '--fsize=unlimited:'), 0,
   'the limit lifted');
$st = $s->wait_status(sub { $_[0]{counters}{spansStored} == 260 }, 60);
ok($st, 'every span stored');
is($st->{store}, 'ok', 'status: the store is ok');
is($st->{ingestion}, 'running', 'status: ingestion running');
ok(all_acked($rc),
   'and acknowledged');
like($s->proc->err, qr/serve: \S+ stores again/, 'the end said');
is($s->stop, 0, 'exit 0');

done_testing();
