#!/usr/bin/perl
# EdgeTraceSampleLimit (docs/httpd.md), under each MPM: a burst of new
# roots at 100/s over 2 s exports at most 100 + 100 a second, over every
# child and thread sharing the bucket; parents that arrive sampled pass; a
# limited request is unsampled (the backend gets sampled=0,
# EDGETRACE_SAMPLING is "limited") and EdgeTraceKeep still keeps it by its
# outcome; the counters add up.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);
use Edgetrace::Keep qw(:all);

my $b = start_backend();

my $conf = <<'EOF';
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTraceQueueSize 16m
EdgeTrace On
EdgeTraceSampleLimit %%LIMIT%%/s
EdgeTraceKeep status=5xx
Header always set X-Trace-Id "%{EDGETRACE_TRACE_ID}e"
Header always set X-Sampling "%{EDGETRACE_SAMPLING}e"

ProxyPass /api/ http://127.0.0.1:%%BACKEND%%/

<Location /edgetrace-status>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>
EOF

(my $c100 = $conf) =~ s/%%LIMIT%%/100/;
(my $c1 = $conf) =~ s/%%LIMIT%%/1/;

for my $mpm (mpms()) {
    my $redis = start_redis();
    my $redis1 = start_redis();
    my $h = start_httpd(mpm => $mpm, redis => $redis, conf => $c100,
                        files => { ok => "ok\n", barrier => "ok\n" });
    my $one = start_httpd(mpm => $mpm, redis => $redis1, conf => $c1,
                          files => { ok => "ok\n", barrier => "ok\n" });

    case "$mpm: a burst of new roots at 100/s: at most 100 + 100 a second"
        => sub {
        limit_burst_case(port => $h->port, redis => $redis,
                         metrics => '/edgetrace-status');
    };

    case "$mpm: parents that arrive sampled pass the limit" => sub {
        sampled_parents_case(port => $h->port,
                             metrics => '/edgetrace-status');
    };

    case "$mpm: a limited request: unsampled backend, kept by its outcome"
        => sub {
        limited_case(port => $one->port, redis => $redis1, backend => $b,
                     api => '/api/');
    };

    case "$mpm: counters add up" => sub {
        limit_counters_case(servers => [[$h, $redis], [$one, $redis1]],
                            metrics => '/edgetrace-status');
    };

    is(scalar $h->crashes, 0, "$mpm: no child crashed");
    $h->stop;
    $one->stop;
}

done_testing();
