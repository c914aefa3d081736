#!/usr/bin/perl
# edgetrace_stream KEY shards=N (docs/stream.md, "Sharded streams"): each
# span goes to the shard of its trace, named KEY:i{j}; every span of a
# trace, server and client, in one shard; the lengths of the shards add up
# to the spans exported.  shards=1 is the key itself.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();

# an nginx that answers every request itself, with these stream directives
sub nginx_stream {
    my ($directives) = @_;
    return start_nginx(redis => $redis, conf => <<"EOF");
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 20ms;
    $directives
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            return 200 "ok\n";
        }
    }
EOF
}

my $ngx = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 20ms;
    edgetrace_stream et:sh shards=4 maxlen=0;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            return 200 "ok\n";
        }
        location /p/ {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location = /metrics {
            edgetrace off;
            edgetrace_status;
        }
    }
EOF

my @shards = map { shard_key('et:sh', $_, 4) } 0 .. 3;

# every entry of every shard, each with the key it was found in
sub all_entries {
    my @all;
    for my $key (@shards) {
        push @all, map { { %$_, _key => $key } }
                   stream_entries($redis->port, $key, count => 0,
                                  timeout => 0);
    }
    return @all;
}

case 'each trace in its own shard' => sub {
    my %want;    # trace id => spans sent

    for (1 .. 16) {
        my $trace = new_trace_id();
        for my $i (1 .. 3) {
            my $path = $i == 3 ? "/p/$i" : "/r$i";
            http_get($ngx->port, $path,
                     headers => [['traceparent', new_traceparent($trace)]]);
            $want{$trace} += $path =~ m{^/p/} ? 2 : 1;
        }
    }

    my $total = 0;
    $total += $_ for values %want;

    ok(wait_until(sub {
           metrics($ngx->port)->{edgetrace_spans_exported_total} >= $total
       }, 5), "the $total spans exported");

    my %where;    # trace id => { key => spans }
    $where{$_->{trace_id}}{$_->{_key}}++ for all_entries();

    my %used;
    for my $trace (sort keys %want) {
        my $key = shard_key('et:sh', trace_shard($trace, 4), 4);
        is_deeply($where{$trace}, { $key => $want{$trace} },
                  "trace $trace: its $want{$trace} spans, server and client, "
                  . "all in $key");
        $used{$key}++;
    }

    ok(keys %used > 1, 'the traces spread over several shards ('
                       . join(', ', map { "$_: $used{$_}" } sort keys %used)
                       . ')');
};

case 'the shards add up to the spans counted' => sub {
    my $m = metrics($ngx->port);
    my $sum = 0;
    $sum += stream_len($redis->port, $_) for @shards;
    is($sum, $m->{edgetrace_spans_exported_total},
       "XLEN of the 4 shards: $sum, the spans exported");
    is($m->{edgetrace_spans_total}, $m->{edgetrace_spans_exported_total},
       'every span counted is exported');
    is(stream_len($redis->port, 'et:sh'), 0, 'nothing in the key itself');
    is(stream_len($redis->port, 'edgetrace:spans'), 0,
       'nothing in the default key');
    like($_, qr/^et:sh:[0-3]\{\d+\}$/, "shard $_: KEY:i{j}") for @shards;
    is_deeply([map { int(key_slot($_) * 4 / 16384) } @shards], [0 .. 3],
              'each shard on a slot of its quarter of the slots');
};

case 'a 64-bit B3 trace id: its shard from its random part' => sub {
    my $b3 = nginx_stream("edgetrace_stream et:b3 shards=8;\n"
                          . "    edgetrace_propagation b3;");
    my %used;
    for (1 .. 8) {
        my $short = new_span_id();    # 16 hex digits, as a 64-bit trace id
        my $trace = ('0' x 16) . $short;
        http_get($b3->port, '/b3',
                 headers => [['b3', "$short-" . new_span_id() . '-1']]);
        my $key = shard_key('et:b3', trace_shard($trace, 8), 8);
        my @s = trace_spans($redis->port, $trace, key => $key);
        is(scalar @s, 1, "trace $short: padded to $trace, in $key");
        $used{$key}++;
    }
    ok(keys %used > 1, 'the 64-bit traces spread over several shards');
    $b3->stop;
};

$ngx->stop;
is(scalar $ngx->crashes, 0, 'no worker crashed');

case 'shards=1 is the key itself' => sub {
    my $one = nginx_stream('edgetrace_stream et:one shards=1;');
    my $trace = new_trace_id();
    http_get($one->port, '/one',
             headers => [['traceparent', new_traceparent($trace)]]);
    my @s = trace_spans($redis->port, $trace, key => 'et:one');
    is(scalar @s, 1, 'the span is in et:one');
    is(stream_len($redis->port, shard_key('et:one', 0, 2)), 0,
       'no shard key');
    $one->stop;
    is(scalar $one->crashes, 0, 'no worker crashed');
};

done_testing;
