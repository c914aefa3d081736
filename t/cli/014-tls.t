#!/usr/bin/perl
# The command over TLS (docs/cli.md "TLS"): show, tail, top and export on
# rediss://, their output the same as on the plain port of the same
# Redis; certificates refused (wrong CA, the system's store, expired, a
# wrong name) with the reason and exit status 1, never plaintext; mutual
# TLS with and without the client's certificate; AUTH over TLS; a Redis
# restarted under tail with a new certificate; the options' and
# variables' usage errors (exit status 2); no thread, memory or
# descriptor left behind (valgrind).  Certificates are made now, with
# openssl (t/lib/Edgetrace/Tls.pm).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Select ();
use POSIX ();
use IO::Socket::INET ();
use Time::HiRes ();
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli start_cli start_stack request);
use Edgetrace::Sink qw(start_sink);
use Edgetrace::Tls qw(make_pki redis_tls_args);

my $pki = make_pki();
my $tp = free_port();

# nginx writes to the plain port; the command reads the TLS one
my ($redis, $be, $ngx) = start_stack(
    redis_args => [redis_tls_args($pki, port => $tp)]);
my $url = "rediss://127.0.0.1:$tp";
my @ca = ('--cacert', $pki->{ca});

sub tls { run_cli(undef, '--redis', $url, @ca, @_) }

# a Redis with a TLS port as "o" says; returns the TLS port
sub tls_redis {
    my (%o) = @_;
    my $port = free_port();
    my $args = delete $o{args} || [];
    my $r = start_redis(args => [redis_tls_args($pki, port => $port, %o),
                                 @$args]);
    return wantarray ? ($port, $r) : $port;
}

# a span written by hand through the plain port
sub hand {
    my ($r) = @_;
    my $t = new_trace_id();
    my $start = int(Time::HiRes::time() * 1e6) . '000';
    $r->client->xadd('edgetrace:spans', '*', v => 1, trace_id => $t,
                     span_id => new_span_id(), name => 'work',
                     kind => 'server', start_ns => $start,
                     end_ns => $start + 1_000_000, status => 'unset',
                     'service.name' => 'app');
    return $t;
}

# --- show, top, export over TLS: what the plain port gives

my $t1 = request($redis, $ngx, '/api/tls?x=1');
my $t2 = request($redis, $ngx, '/fail');

my $r = tls('show', $t1);
is($r->{rc}, 0, 'show over rediss://: exit 0');
like($r->{out}, qr/^trace $t1: 2 spans, 1 service, 0 errors/,
     'show over rediss://: the trace');
is($r->{out}, run_cli($redis, 'show', $t1)->{out},
   'show over rediss://: as on the plain port');
is($r->{err}, '', 'show over rediss://: nothing on stderr');

$r = run_cli(undef, '--redis', $url, '--cacert', $pki->{ca}, '--sni',
             'localhost', 'show', $t2);
is($r->{rc}, 0, '--sni localhost: its DNS name checked, exit 0');
like($r->{out}, qr/^trace $t2: 1 span/, '--sni localhost: the trace');

{
    local $ENV{EDGETRACE_CACERT} = $pki->{ca};
    $r = run_cli(undef, '--redis', $url, 'show', $t1);
    is($r->{rc}, 0, '$EDGETRACE_CACERT: exit 0');
    like($r->{out}, qr/^trace $t1: 2 spans/, '$EDGETRACE_CACERT: the trace');

    local $ENV{EDGETRACE_CACERT} = $pki->{other_ca};
    $r = run_cli(undef, '--redis', $url, @ca, 'show', $t1);
    is($r->{rc}, 0, '--cacert wins over $EDGETRACE_CACERT');
}

# top's output without its RATE/s column: with --since 0 the rates are
# over the time since the stream's first entry, which grows between the
# two runs (past 1 s, on a loaded machine)
sub sans_rates {
    my ($out) = @_;
    return $out =~ s/ +\d+\.\d\d( +\d+\.\d%)/ RATE$1/gr;
}

$r = tls('top', '--since', '0');
is($r->{rc}, 0, 'top over rediss://: exit 0');
like($r->{out}, qr/^edgetrace:spans: 3 spans\n/,
     'top over rediss://: every span');
like($r->{out}, qr/^edge +server +GET \/api +1 /m, 'top: a line per name');
is(sans_rates($r->{out}),
   sans_rates(run_cli($redis, 'top', '--since', '0')->{out}),
   'top over rediss://: as on the plain port');

my $sink = start_sink();
$r = tls('export', '--otlp', $sink->url('/v1/traces'), '--once');
is($r->{rc}, 0, 'export over rediss://: exit 0');
like($r->{err}, qr/^edgetrace: export: 3 spans exported in 1 batch;/m,
     'export over rediss://: every span sent');
is(scalar($sink->spans), 3, 'the collector has the three spans');
is_deeply([$sink->problems], [], 'valid OTLP');

# --- volume: replies many times the pump's buffers, a page at a time

my $rc = $redis->client;
my $pad = 'x' x 400;
for my $k (1 .. 4000) {
    $rc->xadd('big', '*', v => 1, trace_id => new_trace_id(),
              span_id => new_span_id(), name => 'n' . ($k % 7),
              kind => 'server', start_ns => 1000000,
              end_ns => 1000000 + $k * 1000, status => 'unset',
              'service.name' => 'bulk', 'app.pad' => $pad, sub {});
}
$rc->wait_all_responses;
$r = tls('--stream', 'big', 'top', '--since', '0');
is($r->{rc}, 0, 'top over 2 MB over rediss://: exit 0');
like($r->{out}, qr/^big: 4000 spans\n/, 'top: every span, 4 pages');
is(sans_rates($r->{out}),
   sans_rates(run_cli($redis, '--stream', 'big', 'top', '--since', '0')->{out}),
   'top over 2 MB over rediss://: as on the plain port');

# --- tail over TLS

my $p = start_cli(undef, '--redis', $url, @ca, 'tail');
ok(wait_until(sub { $p->err =~ /following edgetrace:spans/ }, 10),
   'tail over rediss:// ready');
like($p->err, qr/^edgetrace: tail: following edgetrace:spans at \Q$url\E /m,
     'tail names the rediss:// URL');
my $t3 = request($redis, $ngx, '/api/live');
ok(wait_until(sub { $p->out =~ /$t3 .*\n.*$t3 /s }, 10),
   'tail over rediss://: both spans of a new trace');
ok($p->alive, 'tail keeps running');
is($p->kill('TERM'), 128 + 15, 'tail stopped by SIGTERM');

# --- refused: the reason, exit status 1, never plaintext

my $verify = 'TLS: certificate verify failed';

sub refused {
    my ($r, $why, $name, $u) = @_;
    $u //= $url;
    is($r->{rc}, 1, "$name: exit 1");
    like($r->{err}, qr/\Aedgetrace: cannot connect to Redis at \Q$u\E: $why\n\z/,
         "$name: the reason");
    is($r->{out}, '', "$name: nothing on stdout");
}

refused(tls('--cacert', $pki->{other_ca}, 'show', $t1),
        qr/\Q$verify\E: \S.*/, 'a CA that signed nothing here');
refused(run_cli(undef, '--redis', $url, 'show', $t1),
        qr/\Q$verify\E: \S.*/, "the system's store (no --cacert)");

# export, a forwarder, waits for a certificate that verifies as for a
# Redis that is down, and says why once
$p = start_cli(undef, '--redis', $url, '--cacert', $pki->{other_ca},
               'export', '--otlp', $sink->url('/v1/traces'));
ok(wait_until(sub { $p->err =~ /retrying/ }, 10), 'export: refused');
like($p->err, qr/\Aedgetrace: export: cannot connect to Redis at \Q$url\E: \Q$verify\E: \S.*; retrying\n\z/,
     'export: the reason, once');
is($p->kill('TERM'), 0, 'export: SIGTERM, exit 0');

my $port = tls_redis(cert => 'foreign');
refused(run_cli(undef, '--redis', "rediss://127.0.0.1:$port", @ca, 'show',
                $t1), qr/\Q$verify\E: \S.*/,
        'a certificate of another CA', "rediss://127.0.0.1:$port");

$port = tls_redis(cert => 'expired');
refused(run_cli(undef, '--redis', "rediss://127.0.0.1:$port", @ca, 'top'),
        qr/\Q$verify\E: certificate has expired/, 'an expired certificate',
        "rediss://127.0.0.1:$port");

$port = tls_redis(cert => 'wrong_name');
refused(run_cli(undef, '--redis', "rediss://127.0.0.1:$port", @ca, 'top'),
        qr/\Q$verify\E: IP address mismatch \(name checked: "127\.0\.0\.1"\)/,
        'a certificate of another name', "rediss://127.0.0.1:$port");
$r = run_cli(undef, '--redis', "rediss://127.0.0.1:$port", @ca, '--sni',
             'other.example', 'top');
is($r->{rc}, 0, '--sni other.example: the name the certificate has');

refused(tls('--sni', 'other.example', 'top'),
        qr/\Q$verify\E: hostname mismatch \(name checked: "other\.example"\)/,
        '--sni a name the certificate has not');

# rediss:// to the plain port: Redis waits for the end of a command it
# cannot read (the handshake times out), or answers an error to one it
# found in the random bytes of the hello (the handshake fails); nothing
# goes in plaintext
$r = run_cli(undef, '--redis', 'rediss://127.0.0.1:' . $redis->port, @ca,
             '--timeout', '1s', 'show', $t1);
is($r->{rc}, 1, 'rediss:// to a plaintext port: exit 1');
like($r->{err}, qr/\Aedgetrace: cannot connect to Redis at rediss:\/\/127\.0\.0\.1:\d+: TLS: handshake (?:timed out after \d+ ms|failed: \S.*)\n\z/,
     'rediss:// to a plaintext port: no handshake');

# --- mutual TLS

my ($mport, $mutual) = tls_redis(auth_clients => 'yes');
my $murl = "rediss://127.0.0.1:$mport";
my $mt = hand($mutual);
my @client = ('--cert', $pki->{client}, '--key', $pki->{client_key});

$r = run_cli(undef, '--redis', $murl, @ca, @client, 'show', $mt);
is($r->{rc}, 0, 'mutual TLS with the client certificate: exit 0');
like($r->{out}, qr/^trace $mt: 1 span/, 'mutual TLS: the trace');

{
    local $ENV{EDGETRACE_CERT} = $pki->{client};
    local $ENV{EDGETRACE_KEY} = $pki->{client_key};
    $r = run_cli(undef, '--redis', $murl, @ca, 'show', $mt);
    is($r->{rc}, 0, '$EDGETRACE_CERT and $EDGETRACE_KEY: exit 0');
}

refused(run_cli(undef, '--redis', $murl, @ca, 'show', $mt),
        qr/PING failed: TLS: read failed: \S.*certificate required/,
        'mutual TLS without a client certificate', $murl);

# --- AUTH over TLS

my $aport = tls_redis(args => ['--requirepass', 'tls pass']);
$r = run_cli(undef, '--redis', "rediss://:tls%20pass\@127.0.0.1:$aport", @ca,
             'top');
is($r->{rc}, 0, 'AUTH over TLS: exit 0');
$r = run_cli(undef, '--redis', "rediss://:nope42\@127.0.0.1:$aport", @ca,
             'top');
is($r->{rc}, 1, 'a wrong password over TLS: exit 1');
like($r->{err}, qr/^edgetrace: cannot connect to Redis at rediss:\/\/:\*\*\*\@127\.0\.0\.1:$aport: AUTH failed/,
     'a wrong password over TLS: AUTH failed, the password hidden');
unlike($r->{err}, qr/nope42/, 'the password is never shown');

# --- Redis restarted under tail, with a renewed certificate

my ($rport, $r2) = tls_redis();
my $plain2 = $r2->port;
$p = start_cli(undef, '--redis', "rediss://127.0.0.1:$rport", @ca, 'tail');
ok(wait_until(sub { $p->err =~ /following/ }, 10), 'tail on a second Redis');
my $before = hand($r2);
ok(wait_until(sub { $p->out =~ /$before/ }, 10), 'its span shown');
$r2->stop;
ok(wait_until(sub { $p->err =~ /lost Redis/ }, 10), 'Redis gone: noticed');
$r2 = start_redis(port => $plain2,
                  args => [redis_tls_args($pki, port => $rport,
                                          cert => 'renewed')]);
my $after = hand($r2);
ok(wait_until(sub { $p->out =~ /$after/ }, 20),
   'Redis back with a renewed certificate: verified, new spans shown');
like($p->err, qr/^edgetrace: tail: lost Redis at rediss:\/\/127\.0\.0\.1:$rport: .*; reconnecting\nedgetrace: tail: Redis at rediss:\/\/127\.0\.0\.1:$rport is back;/m,
     'reported once each way');
$p->kill('TERM');

# --- a TLS error while connected: its reason, and tail goes on

# a TCP relay to the second Redis that, on SIGUSR1, sends each client a
# record that cannot be decrypted (as a tampered stream would)
sub start_relay {
    my ($to) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 8, ReuseAddr => 1)
        or die "relay: $!\n";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # the child never returns into the test (its END would stop the
        # servers the test started)
        eval { _relay($l, $to) };
        POSIX::_exit(0);
    }
    my $port = $l->sockport;
    close $l;
    Edgetrace::Test::register_pid($pid, 'relay');
    return ($pid, $port);
}

sub _relay {
    my ($l, $to) = @_;
    my $bad = 0;
    $SIG{USR1} = sub { $bad = 1 };
    my $sel = IO::Select->new($l);
    my (%peer, %client);
    while (1) {
        my @ready = $sel->can_read(0.05);
        if ($bad) {
            $bad = 0;
            syswrite($_, "\x17\x03\x03\x00\x20" . ("\xa5" x 32))
                for values %client;
        }
        for my $s (@ready) {
            if ($s == $l) {
                my $c = $l->accept or next;
                my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                              PeerPort => $to)
                    or do { close $c; next };
                @peer{$c, $u} = ($u, $c);
                $client{$c} = $c;
                $sel->add($c, $u);
                next;
            }
            # closed with its peer earlier in this round
            my $o = $peer{$s} or next;
            my $n = sysread($s, my $buf, 65536);
            if (!$n) {
                $sel->remove($s, $o);
                delete @peer{$s, $o};
                delete @client{$s, $o};
                close $s;
                close $o;
                next;
            }
            syswrite($o, $buf);
        }
    }
}

my ($relay, $rlport) = start_relay($rport);
$p = start_cli(undef, '--redis', "rediss://127.0.0.1:$rlport", @ca, 'tail');
ok(wait_until(sub { $p->err =~ /following/ }, 10), 'tail through the relay');
kill 'USR1', $relay;
ok(wait_until(sub { $p->err =~ /lost Redis/ }, 10),
   'a record that cannot be decrypted: Redis lost');
like($p->err, qr/^edgetrace: tail: lost Redis at rediss:\/\/127\.0\.0\.1:$rlport: TLS: read failed: \S.*; reconnecting$/m,
     'the TLS reason said');
my $again = hand($r2);
ok(wait_until(sub { $p->out =~ /$again/ }, 20),
   'tail connected again, new spans shown');
$p->kill('TERM');

# --- usage errors: exit 2 with the reason, before any connection

sub usage {
    my ($r, $why, $name) = @_;
    is($r->{rc}, 2, "$name: exit 2");
    like($r->{err}, $why, "$name: the reason");
}

usage(tls('--cacert', '/nonexistent/ca.pem', 'top'),
      qr/^edgetrace: TLS: cannot load the CA file "\/nonexistent\/ca\.pem": No such file or directory$/m,
      'a missing CA file');
usage(tls('--cert', $pki->{client}, '--key', '/nonexistent/k', 'top'),
      qr/^edgetrace: TLS: cannot load the key "\/nonexistent\/k": /m,
      'a missing key file');
usage(tls('--cert', $pki->{client}, '--key', $pki->{server_key}, 'top'),
      qr/^edgetrace: TLS: cannot load the key .*: key values mismatch$/m,
      'the key of another certificate');
usage(tls('--cacert', "$pki->{dir}/ca.key", 'top'),
      qr/^edgetrace: TLS: cannot load the CA file /m, 'a CA file of no CA');
usage(tls('--key', $pki->{client_key}, 'top'),
      qr/^edgetrace: --key needs its certificate, --cert /m,
      '--key without --cert');
usage(tls('--cert', $pki->{client}, 'top'),
      qr/^edgetrace: --cert needs its key, --key /m, '--cert without --key');
{
    local $ENV{EDGETRACE_KEY} = $pki->{client_key};
    usage(tls('top'), qr/^edgetrace: \$EDGETRACE_KEY needs its certificate/m,
          '$EDGETRACE_KEY without a certificate');
}
usage(run_cli($redis, '--cacert', $pki->{ca}, 'top'),
      qr/^edgetrace: --cacert is for TLS: it needs a rediss:\/\/ URL, and Redis is at redis:\/\/127\.0\.0\.1:\d+$/m,
      '--cacert with a redis:// URL');
usage(run_cli($redis, '--sni', 'localhost', 'top'),
      qr/^edgetrace: --sni is for TLS: it needs a rediss:\/\/ URL/m,
      '--sni with a redis:// URL');
usage(run_cli(undef, '--redis', 'unix:/tmp/x.sock', @client, 'top'),
      qr/^edgetrace: --cert is for TLS: it needs a rediss:\/\/ URL, and Redis is at unix:\/tmp\/x\.sock$/m,
      '--cert with a unix: URL');
{
    local $ENV{EDGETRACE_CACERT} = $pki->{ca};
    usage(run_cli($redis, 'top'),
          qr/^edgetrace: \$EDGETRACE_CACERT is for TLS: it needs a rediss:\/\/ URL/m,
          '$EDGETRACE_CACERT with a redis:// URL');
    local $ENV{EDGETRACE_CACERT} = '';
    $r = run_cli($redis, 'top');
    is($r->{rc}, 0, 'an empty $EDGETRACE_CACERT is unset');
}
usage(tls('--cacert=', 'top'), qr/^edgetrace: --cacert: the value is empty$/m,
      'an empty --cacert');
usage(run_cli(undef, '--redis', $url, '--key'),
      qr/^edgetrace: option --key needs a value/m, '--key without a value');

# --- nothing left behind: threads, memory, descriptors

SKIP: {
    my ($vg) = grep { -x } map { "$_/valgrind" } split(/:/, $ENV{PATH} || '');
    skip('valgrind is not installed', 8) unless $vg;
    skip('a sanitizer build: valgrind cannot run it', 8)
        if Edgetrace::Test::build_dir() =~ m{(^|/)san(/|$)};

    local @Edgetrace::Cli::WRAP = ($vg, '-q', '--error-exitcode=99',
        '--leak-check=full', '--show-leak-kinds=all',
        '--errors-for-leak-kinds=all', '--track-fds=yes');

    # descriptors open at exit that the command did not inherit
    my $leaked = sub {
        my ($err) = @_;
        my @open = $err =~ /^==\d+== Open (?:file descriptor|AF_\w+ socket) (\d+):.*\n(?!==\d+==\s+<inherited)/mg;
        return join(',', grep { $_ > 2 } @open);
    };

    $r = tls('show', $t1, { timeout => 120 });
    is($r->{rc}, 0, 'valgrind: show over TLS, clean');
    like($r->{out}, qr/^trace $t1: 2 spans/, 'valgrind: the trace');
    is($leaked->($r->{err}), '', 'valgrind: show leaves no descriptor')
        or diag($r->{err});

    # export keeps its connection; Redis goes away under it and comes back
    my ($xport, $x) = tls_redis();
    my $xplain = $x->port;
    my $xt = hand($x);
    $p = start_cli(undef, '--redis', "rediss://127.0.0.1:$xport", @ca,
                   'export', '--otlp', $sink->url('/v1/traces'));
    ok(wait_until(sub { grep { $_->{traceId} eq $xt } $sink->spans }, 60),
       'valgrind: export over TLS delivers');
    $x->stop;
    ok(wait_until(sub { $p->err =~ /reconnecting/ }, 30),
       'valgrind: export noticed Redis gone');
    $x = start_redis(port => $xplain,
                     args => [redis_tls_args($pki, port => $xport)]);
    ok(wait_until(sub { $p->err =~ /is back/ }, 60),
       'valgrind: export reconnected');
    is($p->kill('TERM'), 0, 'valgrind: export ends clean on SIGTERM')
        or diag($p->err);
    is($leaked->($p->err), '', 'valgrind: export leaves no descriptor')
        or diag($p->err);
}

done_testing();
