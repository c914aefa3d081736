#!/usr/bin/perl
# The exporter's error log lines carry the time they were written: with
# Redis away and no traffic, the worker sleeps, and its cached time with it;
# the lines must not take that stale time.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use POSIX ();
use Time::HiRes ();
use Edgetrace::Test qw(:all);

my $ngx = start_nginx(redis => dead_port(), conf => <<'EOF2');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace_redis_connect_timeout 100ms;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;
        location / { return 200 "ok\n"; }
    }
EOF2

# the error log's "cannot connect" lines: [epoch seconds, text]
sub exporter_lines {
    my @out;
    for (split /\n/, $ngx->error_log) {
        next unless /edgetrace: cannot connect to redis/;
        my ($y, $mo, $d, $h, $mi, $s) =
            m{^(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) } or next;
        # nginx writes local time, as mktime reads it
        push @out, [POSIX::mktime($s, $mi, $h, $d, $mo - 1, $y - 1900), $_];
    }
    return @out;
}

my $t0 = time;
is(http_get($ngx->port, '/')->{status}, 200, 'a request, then none');

# watch the log without traffic: each new line's time against the clock
# when it showed up (the exporter retries with a backoff up to 5s and logs
# at most once a second); the lines already there are not judged, their
# writing time is not known
my (%seen, @late);
my $seen = () = exporter_lines();
my $until = Time::HiRes::time() + 20;
while (Time::HiRes::time() < $until) {
    my @l = exporter_lines();
    for my $i ($seen .. $#l) {
        my $now = time;
        push @late, "$l[$i][1] (seen at "
                    . POSIX::strftime('%T', localtime $now) . ")"
            if $l[$i][0] < $now - 3 || $l[$i][0] > $now + 1;
        $seen{ $l[$i][0] }++;
    }
    $seen = @l;
    last if grep { $_ >= $t0 + 4 } keys %seen;
    Time::HiRes::sleep(0.1);
}

my @l = exporter_lines();
ok(@l >= 2, scalar(@l) . ' exporter lines');
ok((grep { $_ >= $t0 + 4 } keys %seen),
   'a line stamped 4s or more after the last request')
    or diag(join "\n", map { $_->[1] } @l);
is_deeply(\@late, [], 'every new line stamped within 3s of the wall clock');
my @times = map { $_->[0] } @l;
is_deeply(\@times, [sort { $a <=> $b } @times], 'times never go back');

# the exporter's last words, said in its thread while the worker exits,
# are written too, and in time
$ngx->quit;
my ($last) = grep { /edgetrace: exporter stopping: 1 span dropped at exit: / }
             split /\n/, $ngx->error_log;
ok($last, 'the line the exporter wrote at exit is there')
    or diag($ngx->error_log);
my ($y, $mo, $d, $h, $mi, $sec) =
    ($last // '') =~ m{^(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) };
ok(defined $y && POSIX::mktime($sec, $mi, $h, $d, $mo - 1, $y - 1900)
                 >= $times[-1],
   'stamped after the lines before it');
is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
