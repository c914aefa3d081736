#!/usr/bin/perl
# The replies to the CLI's stream reads are built in an arena of 1 MB
# blocks, kept from one read to the next (cli/et_cli_redis.c,
# docs/performance.md "edgetrace serve"): a read of several MB fills
# several blocks, one value larger than a block has a block of its own,
# and the next read reuses them.  Every byte of every entry must come out
# as Redis sent it, read after read, through serve into its store and
# through tail to its output.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Digest::MD5 qw(md5_hex);
use Edgetrace::Test qw(:all);
use Edgetrace::Serve qw(start_serve all_acked);
use Edgetrace::Cli qw(start_cli);

my $redis = start_redis();
my $rc = $redis->client;
my $now = int(time());

# a value of "n" bytes, different for each "seed", every byte printable
sub value {
    my ($seed, $n) = @_;
    my $v = '';
    my $i = 0;
    $v .= md5_hex("$seed/" . $i++) while length($v) < $n;
    return substr($v, 0, $n);
}

# "n" traces of one span, each with an attribute of "size" bytes
sub produce {
    my ($round, $n, $size, $big) = @_;
    my %want;
    for my $i (0 .. $n - 1) {
        my $t = new_trace_id();
        my $blob = value("$round/$i", $i == 0 && $big ? $big : $size);
        $want{$t} = md5_hex($blob);
        my $start = ($now - 60 + $i % 50) * 1_000_000_000;
        $rc->xadd('edgetrace:spans', '*', v => 1, trace_id => $t,
                  span_id => new_span_id(), name => "GET /r$round",
                  kind => 'server', start_ns => $start,
                  end_ns => $start + 1_000_000, status => 'unset',
                  'service.name' => 'edge', 'app.blob' => $blob,
                  'url.path' => "/r$round/$i");
    }
    return \%want;
}

# the blob of each trace's span, as serve stored it
sub stored {
    my ($s, $want) = @_;
    my ($ok, $bad) = (0, '');
    for my $t (sort keys %$want) {
        my ($code, $j) = $s->get("/api/traces/$t");
        my ($tag) = $code == 200
                    ? grep { $_->{key} eq 'app.blob' }
                           @{ $j->{data}[0]{spans}[0]{tags} }
                    : ();
        if ($tag && md5_hex($tag->{value}) eq $want->{$t}) {
            $ok++;
        } else {
            $bad ||= "$t: status $code, "
                     . ($tag ? length($tag->{value}) . ' bytes' : 'no tag');
        }
    }
    return ($ok, $bad);
}

# round 1: 200 spans of 30 KB (6 MB, one read of --batch 500, six blocks
# or more) and one of 1.5 MB (a block of its own)
my $want = produce(1, 200, 30_000, 1_500_000);
my $s = start_serve($redis, args => ['--batch', 500]);
my $st = $s->wait_status(sub { $_[0]{counters}{spansStored} >= 200 }, 60);
ok($st, 'round 1: 200 spans of 30 KB and 1.5 MB stored');
my ($ok, $bad) = stored($s, $want);
is($ok, 200, 'round 1: every attribute stored byte for byte') or diag $bad;

# round 2: the blocks of round 1 reused, for other bytes
my $want2 = produce(2, 300, 20_000, 0);
$st = $s->wait_status(sub { $_[0]{counters}{spansStored} >= 500 }, 60);
ok($st, 'round 2: 300 more spans stored');
($ok, $bad) = stored($s, $want2);
is($ok, 300, 'round 2: every attribute stored byte for byte') or diag $bad;
($ok, $bad) = stored($s, $want);
is($ok, 200, 'round 1\'s still as they were') or diag $bad;
ok(all_acked($rc), 'every entry acknowledged');
is($st->{counters}{spansStored}, 500, 'exactly 500 stored');
is($st->{counters}{duplicates}, 0, 'none twice');
unlike($s->proc->err, qr/not a span|malformed/, 'none read as malformed');
is($s->stop, 0, 'serve: exit 0');

# tail: its XREADs in the arena too, 100 entries a read (4 MB), each
# printed with its path
my $tail = start_cli($redis, 'tail');
ok(wait_until(sub { $tail->err =~ /following edgetrace:spans/ }, 10),
   'tail ready');
produce(3, 250, 40_000, 0);
ok(wait_until(sub { (() = $tail->out =~ m{ /r3/\d+\b}g) >= 250 }, 60),
   'tail: the 250 spans of 40 KB of round 3');
$tail->kill('TERM');
my @paths = $tail->out =~ m{ /r3/(\d+)\b}g;
is(join(',', sort { $a <=> $b } @paths), join(',', 0 .. 249),
   'tail: each once, its path as sent');
is($tail->err =~ /malformed|not a span/ ? 1 : 0, 0, 'tail: nothing malformed')
    or diag $tail->err;

done_testing();
