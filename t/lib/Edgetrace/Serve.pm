package Edgetrace::Serve;

# edgetrace serve from the tests: the command on a free loopback port,
# with its database in a temporary directory, and its API read over HTTP.
#
#   my $s = start_serve($redis, args => ['--batch', 10]);
#   my ($status, $json, $body) = $s->get('/api/services');
#   $s->wait_status(sub { $_[0]{counters}{spansStored} >= 4 });
#   $s->port; $s->db; $s->proc (an Edgetrace::Cli process); $s->stop
#   ok(all_acked($redis->client, $key));  # nothing pending, within 10s
#   bucket_quantile(0.95, @spans);  # what serve answers as their p95
#
# The demo chain the serve tests store: an nginx edge proxies every path
# to an httpd app tier, which proxies /orders, /status and /slow to the
# harness's backend (/status/NNN answers NNN, /slow/MS sleeps).
#
#   my $c = start_chain();
#   my ($trace_id, $status, @spans) = $c->request('/orders/42');
#   $c->redis; $c->edge; $c->app

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();
use JSON::PP ();

use Edgetrace::Test ();
use Edgetrace::Cli ();
use Edgetrace::Httpd ();

our @EXPORT_OK = qw(start_serve all_acked bucket_quantile start_chain);


sub start_serve {
    my ($redis, %o) = @_;
    my $port = $o{port} || Edgetrace::Test::free_port();
    my $dir = $o{dir} || File::Temp::tempdir('et-serve-XXXXXX', TMPDIR => 1,
                                             CLEANUP => !$ENV{EDGETRACE_KEEP});
    my $db = $o{db} || "$dir/spans.db";
    my $p = Edgetrace::Cli::start_cli($redis, @{ $o{global} || [] }, 'serve',
                                      '--db', $db, '--listen',
                                      "127.0.0.1:$port",
                                      @{ $o{args} || [] });
    Edgetrace::Test::wait_port($port, 10, $p->pid);
    # the port accepts before serve writes where it listens: tests read
    # that line
    Edgetrace::Test::wait_until(sub { $p->err =~ /the API listens on/ }, 10)
        or die "serve listens on $port but has not said so\n";
    return bless { port => $port, db => $db, dir => $dir, proc => $p },
                 'Edgetrace::Serve::Process';
}

# serve's group has nothing pending on $key (default edgetrace:spans): a
# commit is counted before its XACK, so this waits for it
sub all_acked {
    my ($client, $key) = @_;
    return Edgetrace::Test::wait_until(sub {
        !$client->xpending($key // 'edgetrace:spans', 'edgetrace-serve')->[0];
    }, 10);
}

# the upper end of the histogram bucket (docs/serve.md, "Storage") that
# holds the quantile $p of the spans' durations, in us; -1 past 10 s
sub bucket_quantile {
    my ($p, @spans) = @_;
    my @bounds = (1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
                  500000, 1000000, 2500000, 5000000, 10000000);
    my @us = sort { $a <=> $b }
             map { int(($_->{end_ns} - $_->{start_ns}) / 1000) } @spans;
    my $want = int(@us * $p + 0.999999);
    my $d = $us[$want - 1];
    for (@bounds) {
        return $_ if $d <= $_;
    }
    return -1;
}


sub start_chain {
    my $redis = Edgetrace::Test::start_redis();
    my $be = Edgetrace::Test::start_backend();
    my $app = Edgetrace::Httpd::start_httpd(mpm => 'event', redis => $redis,
                                            conf => <<'EOF');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTraceServiceName app
EdgeTrace On
ProxyPass /orders http://127.0.0.1:%%BACKEND%%/orders
ProxyPass /status http://127.0.0.1:%%BACKEND%%/status
ProxyPass /slow http://127.0.0.1:%%BACKEND%%/slow
EOF
    my $edge = Edgetrace::Test::start_nginx(redis => $redis,
                                            ports => { APP => $app->port },
                                            conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 20ms;
    edgetrace_service_name edge;
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Trace-Id $edgetrace_trace_id always;
        location / {
            proxy_pass http://127.0.0.1:%%APP%%;
        }
    }
EOF
    return bless { redis => $redis, backend => $be, app => $app,
                   edge => $edge }, 'Edgetrace::Serve::Chain';
}


package Edgetrace::Serve::Chain;

sub redis   { $_[0]{redis} }
sub backend { $_[0]{backend} }
sub app     { $_[0]{app} }
sub edge  { $_[0]{edge} }

# a request through the chain: its trace id, status and four spans
sub request {
    my ($self, $path) = @_;
    my $r = Edgetrace::Test::http_get($self->{edge}->port, $path);
    my $t = $r->{headers}{'x-trace-id'} or die "no trace id for $path\n";
    my @s = Edgetrace::Test::trace_spans($self->{redis}->port, $t,
                                         count => 4);
    die "$path: " . scalar(@s) . " spans, not 4\n" unless @s == 4;
    return ($t, $r->{status}, @s);
}


package Edgetrace::Serve::Process;

sub port { $_[0]{port} }
sub db   { $_[0]{db} }
sub dir  { $_[0]{dir} }
sub proc { $_[0]{proc} }
sub stop { $_[0]{proc}->kill('TERM') }

# GET (or another method): (status, the JSON decoded or undef, the body)
sub get {
    my ($self, $path, %o) = @_;
    my $r = Edgetrace::Test::http_get($self->{port}, $path, %o);
    my $json = eval { JSON::PP->new->utf8->decode($r->{body}) };
    return ($r->{status}, $json, $r->{body}, $r);
}

# /api/edgetrace/status's data, once $cond holds for it (undef after 15s)
sub wait_status {
    my ($self, $cond, $timeout) = @_;
    my $last;
    Edgetrace::Test::wait_until(sub {
        my ($st, $j) = $self->get('/api/edgetrace/status');
        $last = $j->{data} if $st == 200;
        $last && $cond->($last);
    }, $timeout || 15) or return undef;
    return $last;
}

1;
