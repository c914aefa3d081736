#!/usr/bin/perl
# A worker's memory under sustained traffic: 48000 traced requests (half
# proxied, half answered by nginx itself) with Redis up; after a warm-up the
# worker's resident set stays within 2 MB.  Anything the module kept per
# request (a few hundred bytes at least) would be megabytes by the end.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();
use Edgetrace::Test qw(:all);

my $total = 48_000;
my $warmup = 8_000;
my $clients = 2;
my $budget = 50;    # seconds for the whole load, however loaded the machine

# under the sanitizers the allocator keeps freed memory in quarantine: the
# resident set says nothing there, and requests are slower
my $sanitized = $ENV{EDGETRACE_NGINX_PRELOAD} ? 1 : 0;
($total, $warmup) = (4_000, 1_000) if $sanitized;

my $redis = start_redis();
my $ngx = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace_queue_size 2m;
    edgetrace on;

    upstream self {
        server 127.0.0.1:%%PORT2%%;
        keepalive 4;
    }

    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 100000;

        location /p {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://self;
        }
        location /r {
            return 200 "r\n";
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        keepalive_requests 100000;

        location / {
            return 200 "p\n";
        }
    }
EOF

my ($worker) = $ngx->worker_pids;

# $n requests over one keepalive connection (a new one when nginx closes
# it), alternating the paths, until $until; returns (answered, not 200)
sub keepalive_load {
    my ($n, $until) = @_;
    my ($done, $wrong, $s, $buf) = (0, 0, undef, '');
    my @paths = ('/p', '/r');

    while ($done < $n && Time::HiRes::time() < $until) {
        $s ||= IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                     Proto => 'tcp', Timeout => 5)
            or die "connect: $!\n";
        my $req = "GET $paths[$done % 2] HTTP/1.1\r\nHost: t\r\n\r\n";
        syswrite($s, $req) == length $req or die "write: $!\n";

        my $end;
        $buf = '';
        while (($end = index($buf, "\r\n\r\n")) < 0) {
            sysread($s, $buf, 65536, length $buf) or die "read: $!\n";
        }
        my $head = substr($buf, 0, $end + 4, '');
        my ($status) = $head =~ m{^HTTP/1\.1 (\d{3})};
        my ($len) = $head =~ /\r\nContent-Length: (\d+)\r\n/i;
        die "no Content-Length:\n$head" unless defined $len;
        while (length $buf < $len) {
            sysread($s, $buf, 65536, length $buf) or die "read: $!\n";
        }
        $wrong++ unless ($status // 0) == 200;
        $done++;
        undef $s if $head =~ /\r\nConnection: close\r\n/i;
    }
    return ($done, $wrong);
}

# $n requests shared by the clients, each in its own process; returns
# (answered, not 200)
sub load {
    my ($n, $until) = @_;
    my @kids;
    for my $i (1 .. $clients) {
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $rd;
            my @r = eval { keepalive_load(int($n / $clients), $until) };
            print $wr @r ? "@r\n" : "0 0 $@";
            close $wr;
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    my ($done, $wrong) = (0, 0);
    for my $k (@kids) {
        my $line = readline($k->[1]) // '0 0';
        waitpid($k->[0], 0);
        my ($d, $w, $err) = split / /, $line, 3;
        diag("client: $err") if $err;
        $done += $d;
        $wrong += $w;
    }
    return ($done, $wrong);
}

sub rss { $ngx->proc_state($worker)->{rss} }

my $t0 = Time::HiRes::time();
my $until = $t0 + $budget;

my ($done, $wrong) = load($warmup, $until);
is($done, $warmup, "warm-up: $warmup requests answered");
my $before = rss();

my ($done2, $wrong2) = load($total - $warmup, $until);
$done += $done2;
$wrong += $wrong2;
my $after = rss();
my $took = Time::HiRes::time() - $t0;
note(sprintf "%d requests in %.1f s", $done, $took);

# the budget is for a machine loaded beyond reason: fewer requests then,
# still enough for any per-request leak to show
ok($done2 >= ($total - $warmup) / 4,
   "measured $done2 requests after the warm-up");
is($wrong, 0, 'every request answered 200');
is(($ngx->worker_pids)[0], $worker, 'the same worker throughout');

if ($sanitized) {
    note("worker RSS under the sanitizers: $before kB after the warm-up, "
         . "$after kB at the end (not asserted)");
} else {
    ok($after - $before < 2048,
       "worker RSS: $before kB after the warm-up, $after kB at the end");
}

# the traffic was traced: three spans a proxied request (the server span,
# its client span, and the upstream's server span), one a returned one
my $want = $done / 2 * 3 + $done / 2;
ok(wait_until(sub { stream_len($redis->port) >= $want }, 10),
   "the spans reached Redis ($want)");

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
