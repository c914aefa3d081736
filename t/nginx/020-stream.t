#!/usr/bin/perl
# edgetrace_stream KEY maxlen=N: the key, and XADD's approximate trimming
# (maxlen=0: none); the entry's fields hold whatever bytes a client sent
# without splitting.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

# small stream nodes, so that approximate trimming (whole nodes) shows
my $redis = start_redis(args => ['--stream-node-max-entries', '5']);

my $conf = <<'EOF';
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;
    %%STREAM%%

    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            return 200 "ok\n";
        }
        location = /metrics {
            edgetrace off;
            edgetrace_status;
        }
    }
EOF

sub nginx_with {
    my ($stream) = @_;
    (my $c = $conf) =~ s/%%STREAM%%/$stream/;
    return start_nginx(redis => $redis, conf => $c);
}

# --- a key of our own, trimmed to about 10
my $ngx = nginx_with('edgetrace_stream app:traces maxlen=10;');
http_get($ngx->port, "/t$_") for 1 .. 60;
ok(wait_until(sub { metrics_ok($ngx) }, 3), 'maxlen=10: every span exported');
my $len = stream_len($redis->port, 'app:traces');
ok($len >= 10 && $len <= 20, "maxlen=10: trimmed to about 10 ($len)");
is(stream_len($redis->port, 'edgetrace:spans'), 0, 'the default key unused');
my @e = stream_entries($redis->port, 'app:traces', count => $len);
is($e[-1]{'url.path'}, '/t60', 'the newest entries are kept');
$ngx->stop;

# --- maxlen=0: no trimming
$ngx = nginx_with('edgetrace_stream untrimmed maxlen=0;');
http_get($ngx->port, "/u$_") for 1 .. 60;
ok(wait_until(sub { stream_len($redis->port, 'untrimmed') == 60 }, 3),
   'maxlen=0: every entry kept');
$ngx->stop;

# --- a client's bytes stay inside their field
$ngx = nginx_with('edgetrace_stream bytes;');
my $evil = "%0d%0a*3%0d%0a\$4%0d%0aXADD";
http_get($ngx->port, "/b?v=$evil",
         headers => [['User-Agent', "a\x01b\x7f \$5 *1 :2 -ERR +OK"]]);
@e = stream_entries($redis->port, 'bytes', count => 1);
is(scalar @e, 1, 'one entry');
is($e[0]{'user_agent.original'}, "a\x01b\x7f \$5 *1 :2 -ERR +OK",
   'RESP-looking bytes kept in their field');
is($e[0]{'url.query'}, "v=$evil", 'url.query as sent');
my %f = @{ $e[0]{_fields} };
is(scalar(keys %f), scalar(@{ $e[0]{_fields} }) / 2, 'no duplicate fields');
is($e[0]{v}, '1', 'still a version 1 entry');

sub metrics_ok {
    my ($n) = @_;
    my $m = metrics($n->port);
    return $m->{edgetrace_spans_exported_total} == 60;
}

is(scalar $ngx->crashes, 0, 'no worker crashed');

done_testing;
