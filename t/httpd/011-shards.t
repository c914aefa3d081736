#!/usr/bin/perl
# EdgeTraceStream KEY shards=N (docs/stream.md, "Sharded streams"), under
# each MPM: each span goes to the shard of its trace, named KEY:i{j}, and
# the lengths of the shards add up to the spans exported.  Behind an nginx
# edge with the same option, the edge's and the app's spans of a trace
# share one shard.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);

my $redis = start_redis();
my $b = start_backend();

my @shards = map { shard_key('et:sh', $_, 4) } 0 .. 3;

sub clear_shards { $redis->client->del($_) for @shards, 'et:sh' }

# trace id => { key => spans }, over every shard
sub where {
    my %where;
    for my $key (@shards) {
        $where{$_->{trace_id}}{$key}++
            for stream_entries($redis->port, $key, count => 0, timeout => 0);
    }
    return \%where;
}

for my $mpm (mpms()) {
    case "$mpm: each trace in its own shard" => sub {
        clear_shards();

        my $h = start_httpd(mpm => $mpm, redis => $redis, conf => <<'EOF');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTraceStream et:sh shards=4 maxlen=0
EdgeTrace On
<Location /api>
    ProxyPass http://127.0.0.1:%%BACKEND%%/api
</Location>
<Location /metrics>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>
EOF

        my %want;
        for (1 .. 12) {
            my $trace = new_trace_id();
            for my $i (1 .. 2) {
                http_get($h->port, "/api/$i",
                         headers => [['traceparent',
                                      new_traceparent($trace)]]);
                $want{$trace} += 2;
            }
        }

        my $total = 0;
        $total += $_ for values %want;

        my $m;
        ok(wait_until(sub {
               $m = metrics($h->port, '/metrics');
               ($m->{edgetrace_spans_exported_total} // 0) >= $total;
           }, 5), "the $total spans exported");

        my $where = where();
        for my $trace (sort keys %want) {
            my $key = shard_key('et:sh', trace_shard($trace, 4), 4);
            is_deeply($where->{$trace}, { $key => $want{$trace} },
                      "trace $trace: its $want{$trace} spans in $key");
        }

        my $sum = 0;
        $sum += stream_len($redis->port, $_) for @shards;
        is($sum, $m->{edgetrace_spans_exported_total},
           "XLEN of the 4 shards: $sum, the spans exported");
        is($m->{edgetrace_spans_total}, $m->{edgetrace_spans_exported_total},
           'every span counted is exported');
        is(stream_len($redis->port, 'et:sh'), 0, 'nothing in the key itself');

        $h->stop;
        is_deeply([$h->crashes], [], 'no crash');
    };

    case "$mpm: nginx edge and httpd app in one shard" => sub {
        clear_shards();

        my $app = start_httpd(mpm => $mpm, redis => $redis, conf => <<'EOF');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTraceServiceName app
EdgeTraceStream et:sh shards=4
EdgeTrace On
ProxyPass /orders http://127.0.0.1:%%BACKEND%%/orders
EOF

        my $edge = start_nginx(redis => $redis,
                               ports => { APP => $app->port },
                               conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 20ms;
    edgetrace_service_name edge;
    edgetrace_stream et:sh shards=4;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /orders {
            proxy_pass http://127.0.0.1:%%APP%%;
        }
    }
EOF

        my @traces = map { new_trace_id() } 1 .. 8;
        for my $trace (@traces) {
            my $r = http_get($edge->port, '/orders/42',
                             headers => [['traceparent',
                                          new_traceparent($trace)]]);
            is($r->{status}, 200, "trace $trace: answered through the chain");
        }

        my $where;
        wait_until(sub {
            $where = where();
            my $n = 0;
            $n += $_ for map { values %{ $where->{$_} || {} } } @traces;
            $n >= 4 * @traces;
        }, 5);

        for my $trace (@traces) {
            my $key = shard_key('et:sh', trace_shard($trace, 4), 4);
            is_deeply($where->{$trace}, { $key => 4 },
                      "trace $trace: edge server and client, app server and "
                      . "client, all 4 in $key");
            my %svc;
            $svc{$_->{'service.name'}}++
                for stream_entries($redis->port, $key, count => 0,
                                   timeout => 0);
            ok($svc{edge} && $svc{app}, "$key: spans of both servers");
        }

        $edge->stop;
        $app->stop;
        is_deeply([$app->crashes, $edge->crashes], [], 'no crash');
    };
}

done_testing();
