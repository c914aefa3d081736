#!/usr/bin/perl
# What $edgetrace_traceparent (nginx) and EDGETRACE_TRACEPARENT (httpd)
# hold under "extract", as docs/nginx.md and docs/httpd.md say: the
# client's trace id and sampled flag with the id of the module's client
# span, while the upstream receives the client's header as it came; sent
# on by hand (proxy_set_header), it makes that client span the upstream's
# parent.  A request with no upstream gets a value with an id no exported
# span carries.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(start_httpd);

my $redis = start_redis();
my $b = start_backend();

my $T = new_trace_id();
my $P = new_span_id();
my $TP = "00-$T-$P-01";

sub upstream_traceparents {
    my @req = $b->wait_requests(1);
    return [Edgetrace::Test::Backend->header_values($req[0], 'traceparent')];
}

# the server span of this trace named $name, and its $count client spans
sub spans {
    my ($name, $count) = @_;
    my @s;
    my $server = sub {
        (grep { $_->{kind} eq 'server' && $_->{name} eq $name } @s)[0];
    };
    my $children = sub {
        my $srv = $server->() or return ();
        grep { ($_->{parent_id} // '') eq $srv->{span_id} } @s;
    };
    wait_until(sub {
        @s = trace_spans($redis->port, $T);
        $server->() && $children->() >= $count;
    }, 5);
    die "no server span named $name\n" unless $server->();
    return ($server->(), $children->());
}

my $ngx = start_nginx(redis => $redis, conf => <<'CONF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;
    edgetrace_context extract;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /as-came {
            add_header X-Traceparent $edgetrace_traceparent always;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /by-hand {
            proxy_set_header traceparent $edgetrace_traceparent;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /local {
            return 200 "$edgetrace_traceparent";
        }
    }
CONF

# --- nginx: the upstream gets the client's header, the variable ours
$b->clear;
my $r = http_get($ngx->port, '/as-came', headers => [['traceparent', $TP]]);
is($r->{status}, 200, 'nginx /as-came: answered');
is_deeply(upstream_traceparents(), [$TP],
          "nginx extract: the upstream gets the client's traceparent");
my ($server, $client) = spans('GET /as-came', 1);
is($server->{parent_id}, $P, "nginx extract: the client's trace continued");
is($r->{headers}{'x-traceparent'}, "00-$T-$client->{span_id}-01",
   'nginx extract: $edgetrace_traceparent is the trace id, the client'
   . " span's id and the flags");

# --- sent on by hand: the client span becomes the upstream's parent
$b->clear;
$r = http_get($ngx->port, '/by-hand', headers => [['traceparent', $TP]]);
is($r->{status}, 200, 'nginx /by-hand: answered');
my $got = upstream_traceparents();
($server, $client) = spans('GET /by-hand', 1);
is_deeply($got, ["00-$T-$client->{span_id}-01"],
          'nginx extract, proxy_set_header: the upstream gets ours, once');

# --- no upstream: a value, with an id no exported span carries
$r = http_get($ngx->port, '/local', headers => [['traceparent', $TP]]);
my (undef, $t, $s, $f) = parse_traceparent($r->{body});
is($t, $T, "nginx extract, no upstream: the client's trace id");
is($f, '01', "nginx extract, no upstream: the client's flags");
spans('GET /local', 0);
my @same = grep { $_->{span_id} eq ($s // '') }
           trace_spans($redis->port, $T);
is_deeply(\@same, [], 'nginx extract, no upstream: no span carries the id');
$ngx->stop;

# --- httpd: the same, through EDGETRACE_TRACEPARENT, in a trace of its own
$T = new_trace_id();
$TP = "00-$T-$P-01";
my $h = start_httpd(mpm => 'event', redis => $redis, conf => <<'CONF');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 50ms
EdgeTrace On
EdgeTraceContext extract
Header always set X-Traceparent "%{EDGETRACE_TRACEPARENT}e"
<Location /as-came>
    ProxyPass http://127.0.0.1:%%BACKEND%%/as-came
</Location>
CONF
$b->clear;
$r = http_get($h->port, '/as-came', headers => [['traceparent', $TP]]);
is($r->{status}, 200, 'httpd /as-came: answered');
is_deeply(upstream_traceparents(), [$TP],
          "httpd extract: the backend gets the client's traceparent");
($server, $client) = spans('GET /as-came', 1);
is($r->{headers}{'x-traceparent'}, "00-$T-$client->{span_id}-01",
   'httpd extract: EDGETRACE_TRACEPARENT is the trace id, the client'
   . " span's id and the flags");
$h->stop;

done_testing();
