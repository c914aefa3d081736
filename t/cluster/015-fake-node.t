#!/usr/bin/perl
# The replies a real cluster gives only now and then, from a scripted node
# (Edgetrace::Cluster::fake_node): TRYAGAIN, LOADING, MASTERDOWN and
# CLUSTERDOWN are backed off and the span sent again, counted exactly
# (docs/counters.md "Redis Cluster"); MOVED and ASK are followed and
# counted in edgetrace_redis_redirects_total; a node answering an array
# header of two billion elements to CLUSTER SLOTS is refused by the
# reader's guard (et_cluster_guard), which says so.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use IO::Socket::INET;
use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cluster qw(:all);

my $N = 5;

sub nginx_on {
    my ($seeds, $more) = @_;
    $more //= '';
    return start_nginx(conf => <<"EOF");
    $more
    edgetrace_redis redis://$seeds cluster;
    edgetrace_stream spans shards=2;
    edgetrace_flush_interval 20ms;
    edgetrace_redis_connect_timeout 300ms;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { return 200 "ok\\n"; }
        location = /metrics { edgetrace off; edgetrace_status; }
    }
EOF
}

sub settled {
    my ($ngx, $n) = @_;
    return wait_until(sub {
        my $x = metrics($ngx->port);
        $x->{edgetrace_spans_exported_total} == $n
            && $x->{edgetrace_spans_queued} == 0;
    }, 10);
}

# connected, $n requests, all of their spans exported: the counters then
sub exported {
    my ($ngx, $name, $n) = @_;
    ok(wait_until(sub { metrics($ngx->port)->{edgetrace_redis_connected}
                        == 1 }, 10), "$name: connected")
        or diag $ngx->error_log;
    http_get($ngx->port, "/$_") for 1 .. $n;
    ok(settled($ngx, $n), "$name: all $n exported")
        or diag explain(metrics($ngx->port)), $ngx->error_log;
    my $x = metrics($ngx->port);
    is(spans_accounted($x), $n, "$name: the counters add up");
    return $x;
}

# --- backed off, sent again, nothing lost
for my $err ('TRYAGAIN Multiple keys request during rehashing of slot',
             'LOADING Redis is loading the dataset in memory',
             'MASTERDOWN Link with MASTER is down and '
             . 'replica-serve-stale-data is set to \'no\'.',
             'CLUSTERDOWN The cluster is down')
{
    my ($word) = $err =~ /^(\w+)/;
    my $f = fake_node(xadd => ["-$err\r\n", "-$err\r\n"]);
    my $ngx = nginx_on("127.0.0.1:$f->{port}");
    my $node = "{node=\"127.0.0.1:$f->{port}\"}";

    my $x = exported($ngx, $word, $N);
    is($x->{'edgetrace_spans_dropped_total{reason="redis_error"}'}, 0,
       "$word: nothing dropped");
    is($x->{edgetrace_redis_errors_total}, 0, "$word: not an error");
    is($x->{"edgetrace_redis_node_errors_total$node"}, 0,
       "$word: not the node's error");
    is($x->{"edgetrace_redis_node_connected$node"}, 1,
       "$word: the node on the page, connected");

    my @log = $f->log;
    my @xadd = grep { $_->[0] eq 'XADD' } @log;
    is(scalar @xadd, $N + 2, "$word: two spans sent twice");

    # each refused span sent again, the same bytes, after the backoff
    # (100 ms at first); the spans after it may be written meanwhile
    my @waited;
    for my $i (0, 1) {
        my ($again) = grep { $_->[2] eq $xadd[$i][2] }
                      @xadd[$i + 1 .. $#xadd];
        push @waited, $again ? $again->[1] - $xadd[$i][1] : -1;
    }
    ok(!grep({ $_ < 0.09 } @waited), "$word: sent again after a backoff")
        or diag join ' ', map { sprintf '%.3f s', $_ } @waited;
    my $refused = $xadd[1][1];

    if ($word ne 'TRYAGAIN') {
        ok((grep { $_->[0] eq 'CLUSTER' && $_->[1] > $refused } @log),
           "$word: the slot map asked again");
    }

    like($ngx->error_log,
         qr/redis cluster node 127\.0\.0\.1:$f->{port}: "\Q$word\E[^"]*": sent again later/,
         "$word: logged with the node's address");
    is_deeply([$ngx->crashes], [], "$word: no worker crashed");
    $ngx->stop;
}

# --- MOVED and ASK: followed, counted
my $b = fake_node();
my $a = fake_node(xadd => ["-MOVED 1 127.0.0.1:$b->{port}\r\n",
                           "-ASK 2 127.0.0.1:$b->{port}\r\n"]);
my $ngx = nginx_on("127.0.0.1:$a->{port}");
my $x = exported($ngx, 'redirections', $N);
is($x->{'edgetrace_redis_redirects_total{kind="moved"}'}, 1,
   'redirections: one MOVED counted');
is($x->{'edgetrace_redis_redirects_total{kind="ask"}'}, 1,
   'redirections: one ASK counted');
my @cmds = map { $_->[0] } grep { $_->[0] ne 'CLUSTER' } $b->log;
ok(join(' ', @cmds) =~ /ASKING XADD/,
   'redirections: ASKING, then the span, to the node ASK named')
    or diag "@cmds";
is(scalar(grep { $_->[0] eq 'XADD' } $a->log, $b->log), $N + 2,
   'redirections: the two spans sent twice in all');
is_deeply([$ngx->crashes], [], 'redirections: no worker crashed');
$ngx->stop;

# --- a node that stops reading: the sockets fill up, a span is written in
# pieces, and each reaches it whole, once
sub burst {
    my ($port, $n, $path) = @_;
    my ($s, $ok) = (undef, 0);
    for (my $i = 0; $i < $n; $i += 100) {
        # nginx closes a keepalive connection after 1000 requests
        $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
            or die "connect: $!" if $i % 500 == 0;
        $s->autoflush(1);
        my $k = $n - $i < 100 ? $n - $i : 100;
        print $s "GET $path?$_ HTTP/1.1\r\nHost: t\r\n\r\n" for 1 .. $k;
        my ($buf, $got) = ('', 0);
        while ($got < $k) {
            sysread($s, $buf, 65536, length $buf) or last;
            $got = () = $buf =~ m{HTTP/1\.1 200}g;
        }
        $ok += $got;
    }
    return $ok;
}

my $S = 5000;
my $slow = fake_node(stall => 1.5);
$ngx = nginx_on("127.0.0.1:$slow->{port}", 'edgetrace_queue_size 32m;');
# the first span answered, then the node stalls
exported($ngx, 'stalled', 1);
# spans of about 1.7 KB: 8 MB, more than the sockets hold
is(burst($ngx->port, $S, '/' . ('p' x 1000)), $S, "stalled: $S requests");
ok(settled($ngx, $S + 1), 'stalled: all exported once it reads again')
    or diag explain(metrics($ngx->port)), $ngx->error_log;
my @x = grep { $_->[0] eq 'XADD' } $slow->log;
is(scalar @x, $S + 1, 'stalled: each span reached it once, whole');
ok($x[-1][1] - $x[0][1] >= 1.4, 'stalled: for 1.5 s');
is(spans_accounted(metrics($ngx->port)), $S + 1,
   'stalled: the counters add up');
is_deeply([$ngx->crashes], [], 'stalled: no worker crashed');
$ngx->stop;

# --- an array header of two billion elements, refused by the guard
my ($gport) = garbage_seed();
$ngx = nginx_on("127.0.0.1:$gport");
ok(wait_until(sub { $ngx->error_log =~ /no node gave the slot map/ }, 10),
   'garbage: no slot map')
    or diag $ngx->error_log;
like($ngx->error_log,
     qr/no node gave the slot map: 127\.0\.0\.1:$gport: CLUSTER SLOTS failed: a reply of more than 1048576 array elements, refused/,
     'garbage: the guard refused it, and says so');
is_deeply([$ngx->crashes], [], 'garbage: no worker crashed');

done_testing();
