package Edgetrace::TlsCases;

# The cases nginx's edgetrace_redis_ssl_* and httpd's EdgeTraceRedisSSL*
# share (docs/nginx.md "edgetrace_redis_ssl_trusted_certificate"): spans
# exported over rediss://, certificates refused, mutual TLS, Redis
# restarted with new certificates while connected.  The server's part is a
# function that starts it:
#
#   tls_cases(start => sub { my (%c) = @_; ...; return $server },
#             metrics => '/metrics');
#
# %c: url (rediss://...), ca, cert, key, name (files or undef), stream (a
# stream key of the case's own).  The server traces /x, answers 200 there,
# serves its counters at "metrics" untraced, and flushes every 20ms.

use strict;
use warnings;

use Exporter 'import';
use Test::More;

use Edgetrace::Test qw(:all);
use Edgetrace::Tls qw(make_pki redis_tls_args);

our @EXPORT_OK = qw(tls_cases);

my $qf = 'edgetrace_spans_dropped_total{reason="queue_full"}';
my $re = 'edgetrace_spans_dropped_total{reason="redis_error"}';

# a redis-server with a plain port (returned's port, to read back) and a
# TLS port (tls_port)
sub _redis {
    my ($pki, %o) = @_;
    my $tls = $o{tls_port} || free_port();
    my $r = start_redis($o{port} ? (port => $o{port}) : (),
                        args => [redis_tls_args($pki, %o, port => $tls)]);
    $r->{tls_port} = $tls;
    return $r;
}

sub _traffic {
    my ($server, $n) = @_;
    my $bad = 0;
    for (1 .. $n) {
        my $r = http_get($server->port, '/x');
        $bad++ unless $r->{status} == 200;
    }
    return $bad;
}

sub _xlen {
    my ($redis, $key) = @_;
    return redis($redis->port)->xlen($key);
}

# every span counted exported, the stream holding them, no error
sub _exported {
    my ($what, $server, $redis, $key, $metrics) = @_;
    is(_traffic($server, 20), 0, "$what: 20 requests answered");
    my $m;
    ok(wait_until(sub {
           $m = metrics($server->port, $metrics);
           $m->{edgetrace_spans_exported_total} >= 20;
       }, 10), "$what: 20 spans exported over TLS")
        or diag explain $m, $server->error_log;
    is(_xlen($redis, $key), $m->{edgetrace_spans_exported_total},
       "$what: the stream holds them");
    is($m->{edgetrace_redis_errors_total}, 0, "$what: no redis error");
    unlike($server->error_log, qr/cannot connect to redis/,
           "$what: no connect failure logged");
    return $m;
}

# refused: the reason logged with the address, each attempt counted,
# nothing exported, nothing in Redis, the counters adding up
sub _refused {
    my ($what, $server, $redis, $key, $metrics, $want) = @_;
    is(_traffic($server, 5), 0, "$what: requests answered all the same");
    my $addr = qr/cannot connect to redis at 127\.0\.0\.1:$redis->{tls_port}: /;
    ok(wait_until(sub { $server->error_log =~ /$addr\Q$want\E/ }, 10),
       "$what: logged \"$want\" with the address")
        or diag $server->error_log;
    my $m;
    ok(wait_until(sub {
           $m = metrics($server->port, $metrics);
           $m->{edgetrace_redis_errors_total} >= 2;
       }, 10), "$what: each attempt counted in edgetrace_redis_errors_total")
        or diag explain $m;
    is($m->{edgetrace_redis_connected}, 0, "$what: not connected");
    is($m->{edgetrace_spans_exported_total}, 0, "$what: nothing exported");
    is($m->{edgetrace_spans_total},
       $m->{$qf} + $m->{$re} + $m->{edgetrace_spans_queued},
       "$what: spans = dropped + queued");
    is(_xlen($redis, $key), 0, "$what: nothing reached Redis");
    unlike($server->error_log, qr/connected to redis/,
           "$what: never connected, never in plaintext");
}

# no crash, no sanitizer report (make test SANITIZE=1), then stopped
sub _stop {
    my ($server, $what) = @_;
    is(join('', $server->crashes), '', "$what: no crash");
    $server->stop;
}

sub tls_cases {
    my (%o) = @_;
    my $start = $o{start};
    my $metrics = $o{metrics};
    my $pki = make_pki();
    my $n = 0;

    my $good = _redis($pki);
    my $expired = _redis($pki, cert => 'expired');
    my $misnamed = _redis($pki, cert => 'wrong_name');
    my $mutual = _redis($pki, auth_clients => 'yes');

    my $url = sub { "rediss://127.0.0.1:$_[0]{tls_port}" };

    # --- a valid CA, by IP address and by host name
    for my $c (['IP', $url->($good), undef],
               ['name', "rediss://localhost:$good->{tls_port}", undef],
               ['edgetrace_redis_ssl_name', $url->($good), 'localhost'])
    {
        my $key = 'tls:' . ++$n;
        my $s = $start->(url => $c->[1], ca => $pki->{ca}, name => $c->[2],
                         stream => $key);
        _exported("valid CA ($c->[0])", $s, $good, $key, $metrics);
        _stop($s, "valid CA ($c->[0])");
    }

    # --- refused, with the reason
    for my $c (['wrong CA', $good, $pki->{other_ca}, undef,
                'TLS: certificate verify failed: self-signed certificate '
                . 'in certificate chain'],
               ['expired', $expired, $pki->{ca}, undef,
                'TLS: certificate verify failed: certificate has expired'],
               ['wrong IP', $misnamed, $pki->{ca}, undef,
                'TLS: certificate verify failed: IP address mismatch '
                . '(name checked: "127.0.0.1")'],
               ['wrong name', $good, $pki->{ca}, 'redis.example',
                'TLS: certificate verify failed: hostname mismatch '
                . '(name checked: "redis.example")'],
               ['mutual TLS without a client certificate', $mutual,
                $pki->{ca}, undef,
                'PING failed: TLS: read failed: tlsv13 alert certificate '
                . 'required'])
    {
        my ($what, $redis, $ca, $name, $want) = @$c;
        my $key = 'tls:' . ++$n;
        my $s = $start->(url => $url->($redis), ca => $ca, name => $name,
                         stream => $key);
        _refused($what, $s, $redis, $key, $metrics, $want);
        _stop($s, $what);
    }

    # --- mutual TLS with the client certificate
    {
        my $key = 'tls:' . ++$n;
        my $s = $start->(url => $url->($mutual), ca => $pki->{ca},
                         cert => $pki->{client}, key => $pki->{client_key},
                         stream => $key);
        _exported('mutual TLS', $s, $mutual, $key, $metrics);
        _stop($s, 'mutual TLS');
    }

    # --- Redis restarted while connected: first with an expired
    # certificate (refused: verified again), then with a renewed one
    {
        my $key = 'tls:' . ++$n;
        my $redis = _redis($pki);
        my ($port, $tls) = ($redis->port, $redis->{tls_port});
        my $s = $start->(url => $url->($redis), ca => $pki->{ca},
                         stream => $key);
        my $m = _exported('before the restart', $s, $redis, $key, $metrics);
        my $reconnects = $m->{edgetrace_redis_reconnects_total};
        my $errors = $m->{edgetrace_redis_errors_total};

        $m = Edgetrace::Test::counters_match_redis($s, $redis,
                 what => 'before the restart', key => $key,
                 path => $metrics);

        Edgetrace::Test::stop_pid($redis->pid);
        $redis = _redis($pki, port => $port, tls_port => $tls,
                        cert => 'expired');
        is(_traffic($s, 10), 0, 'expired after the restart: answered');
        my $line = "127.0.0.1:$tls: TLS: certificate verify failed: "
                   . 'certificate has expired';
        ok(wait_until(sub { $s->error_log =~ /\Q$line\E/ }, 15),
           'expired after the restart: refused, verified again')
            or diag $s->error_log;
        my $m2 = metrics($s->port, $metrics);
        ok($m2->{edgetrace_redis_errors_total} > $errors,
           'expired after the restart: counted');
        is(_xlen($redis, $key), 0, 'expired after the restart: nothing '
                                   . 'reached that Redis');

        Edgetrace::Test::stop_pid($redis->pid);
        $redis = _redis($pki, port => $port, tls_port => $tls,
                        cert => 'renewed');
        is(_traffic($s, 10), 0, 'renewed: answered');
        ok(wait_until(sub {
               $m2 = metrics($s->port, $metrics);
               $m2->{edgetrace_redis_connected} >= 1
                   && $m2->{edgetrace_redis_reconnects_total} > $reconnects;
           }, 15), 'renewed: reconnected, the reconnect counted')
            or diag explain $m2;
        is(_traffic($s, 10), 0, 'renewed: answered');
        Edgetrace::Test::counters_match_redis($s, $redis,
            what => 'after the restarts', key => $key, path => $metrics,
            base => $m);
        ok(_xlen($redis, $key) >= 10, 'renewed: spans in the new Redis');
        _stop($s, 'restarts');
    }
}

1;
