#!/usr/bin/perl
# edgetrace serve's credentials and HTTPS (docs/serve.md, "Security"):
# beyond loopback only with --auth-file or --token-file; with them every
# path (the API, /metrics, the page) answers 401 and WWW-Authenticate
# without valid credentials, and counts the refusal; hostile
# Authorization headers get a 401, never a crash.  --tls-cert and
# --tls-key serve HTTPS, which curl verifies against the test CA; plain
# HTTP to that port gets nothing.  Every file that cannot be used stops
# serve at the start (exit 2) with the reason.  serve listens on 0.0.0.0
# on a harness-picked port; the tests connect to 127.0.0.1.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Temp ();
use MIME::Base64 qw(encode_base64);
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli);
use Edgetrace::Serve qw(start_serve);
use Edgetrace::Tls qw(make_pki);

my $dir = File::Temp::tempdir('et-auth-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub write_file {
    my ($name, $text) = @_;
    open my $fh, '>', "$dir/$name" or die "$dir/$name: $!\n";
    print $fh $text;
    close $fh or die "$dir/$name: $!\n";
    return "$dir/$name";
}

# a bcrypt line as `htpasswd -B` makes it, or as Perl's crypt() does
sub bcrypt_line {
    my ($user, $pass) = @_;
    my $out = `htpasswd -B -b -n '$user' '$pass' 2>/dev/null`;
    return (split /\n/, $out)[0] if $? == 0 && $out =~ /^\Q$user\E:\$2y\$/;
    my @c = ('.', '/', 'A' .. 'Z', 'a' .. 'z', '0' .. '9');
    my $salt = join '', map { $c[rand @c] } 1 .. 22;
    my $h = crypt($pass, "\$2b\$05\$$salt");
    die "no bcrypt here: neither htpasswd nor crypt()\n"
        unless $h && length $h == 60;
    return "$user:$h";
}

my $users = write_file('htpasswd', "# the test's users\n\n"
                                   . bcrypt_line('alice', 's3cret pass')
                                   . "\n" . bcrypt_line('bob', 'other')
                                   . "\n");
my $token = 'tok_' . join('', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 40);
my $token_file = write_file('token', "$token\n");

my $redis = start_redis();

sub basic { [['Authorization', 'Basic ' . encode_base64($_[0], '')]] }
my $alice = basic('alice:s3cret pass');

# --- beyond loopback: refused without credentials

my $port = free_port();
my $res = run_cli($redis, 'serve', '--db', "$dir/refused.db",
                  '--listen', "0.0.0.0:$port");
is($res->{rc}, 2, '0.0.0.0 without credentials: exit 2');
like($res->{err}, qr/without --auth-file or --token-file.*loopback/,
     '... naming the options');

# --- basic auth, on 0.0.0.0

my $s = start_serve($redis, port => $port, dir => $dir,
                    args => ['--listen', "0.0.0.0:$port",
                             '--auth-file', $users]);
like($s->proc->err, qr/listens on http:.*credentials required/,
     'serve listens on 0.0.0.0, credentials required');

my $refused = 0;
for my $path ('/api/services', '/metrics', '/', '/ui/ui.js',
              '/api/edgetrace/status') {
    my ($st, $j, $body, $r) = $s->get($path, headers => $alice);
    is($st, 200, "$path: good credentials, 200");
    ($st, $j, $body, $r) = $s->get($path);
    is($st, 401, "$path: none, 401");
    is($r->{headers}{'www-authenticate'}, 'Basic realm="edgetrace", '
       . 'charset="UTF-8"', '... WWW-Authenticate: Basic');
    unlike($body, qr/<html|edgetrace_serve_|spansStored/i, '... no data');
    is($j && $j->{errors}[0]{code}, 401, '... the 401 in Jaeger\'s errors');
    ($st) = $s->get($path, headers => basic('alice:wrong'));
    is($st, 401, "$path: a wrong password, 401");
    ($st) = $s->get($path, headers => basic('carol:s3cret pass'));
    is($st, 401, "$path: an unknown user, 401");
    $refused += 3;
}

my ($st) = $s->get('/api/services', headers => basic('bob:other'));
is($st, 200, 'the second user of the file');
($st) = $s->get('/api/services', headers => basic('bob:s3cret pass'));
is($st, 401, 'a password of another user, 401');
($st) = $s->get('/api/services', headers =>
                [['Authorization', 'basic ' . encode_base64('alice:s3cret pass', '')]]);
is($st, 200, 'the scheme in lower case');
($st) = $s->get('/api/services', headers =>
                [['Authorization', "Bearer $token"]]);
is($st, 401, 'a bearer token where only basic is asked, 401');
$refused += 2;

# --- hostile Authorization headers: 401, serve still answers

my @hostile = (
    [ 'oversized',        'Basic ' . ('QUFB' x 2000) ],
    [ 'bad base64',       'Basic !!!*%%$' ],
    [ 'bad padding',      'Basic YWxpY2U6=a==' ],
    [ 'base64 not /4',    'Basic YWxpY2U6c' ],
    [ 'no colon',         'Basic ' . encode_base64('alices3cret pass', '') ],
    [ 'no user',          'Basic ' . encode_base64(':s3cret pass', '') ],
    [ 'a NUL in it',      'Basic ' . encode_base64("alice:s3cret pass\0x", '') ],
    [ 'empty',            '' ],
    [ 'scheme only',      'Basic' ],
    [ 'scheme and space', 'Basic ' ],
    [ 'unknown scheme',   'Digest username="alice"' ],
    [ 'bytes',            "Basic \xff\xfe\x01" ],
);
for my $h (@hostile) {
    ($st) = $s->get('/api/services',
                    headers => [['Authorization', $h->[1]]]);
    is($st, 401, "Authorization $h->[0]: 401");
    $refused++;
}
my $r = http_get($s->port, '/api/services',
                 headers => [['Authorization', 'Basic ' . ('A' x 70000)]]);
ok($r->{status} != 200, "a 70 kB Authorization: refused ($r->{status})");
ok($s->proc->alive, 'serve still runs');

my ($sst, $sj) = $s->get('/api/edgetrace/status', headers => $alice);
is($sj->{data}{counters}{authFailures}, $refused,
   'status: every 401 counted in authFailures');
my (undef, undef, $metrics) = $s->get('/metrics', headers => $alice);
like($metrics, qr/^edgetrace_serve_auth_failures_total $refused$/m,
     '/metrics: edgetrace_serve_auth_failures_total');
is($s->stop, 0, 'exit 0');

# --- a bearer token, with basic beside it

$port = free_port();
$s = start_serve($redis, port => $port, dir => $dir,
                 args => ['--listen', "0.0.0.0:$port",
                          '--token-file', $token_file]);
($st) = $s->get('/api/services', headers => [['Authorization',
                                              "Bearer $token"]]);
is($st, 200, 'the token: 200');
for my $bad (["the token and more", "Bearer ${token}x"],
             ["a prefix of it", 'Bearer ' . substr($token, 0, -1)],
             ["another", 'Bearer ' . ('x' x length $token)],
             ["empty", 'Bearer '],
             ["basic", 'Basic ' . encode_base64('alice:s3cret pass', '')]) {
    ($st) = $s->get('/api/services',
                    headers => [['Authorization', $bad->[1]]]);
    is($st, 401, "a bearer token, $bad->[0]: 401");
}
my (undef, undef, undef, $rr) = $s->get('/metrics');
is($rr->{headers}{'www-authenticate'}, 'Bearer realm="edgetrace"',
   'WWW-Authenticate: Bearer');
$s->stop;

$s = start_serve($redis, dir => $dir,
                 args => ['--token-file', $token_file,
                          '--auth-file', $users]);
($st) = $s->get('/api/services', headers => $alice);
is($st, 200, 'both, on loopback: basic 200');
($st) = $s->get('/api/services', headers => [['Authorization',
                                              "Bearer $token"]]);
is($st, 200, '... the token 200');
(undef, undef, undef, $rr) = $s->get('/');
is($rr->{status}, 401, '... nothing: 401');
is_deeply([sort map { $_->[1] } grep { lc $_->[0] eq 'www-authenticate' }
           @{ $rr->{header_list} }],
          ['Basic realm="edgetrace", charset="UTF-8"',
           'Bearer realm="edgetrace"'],
          '... WWW-Authenticate: Basic and Bearer');
$s->stop;

# --- HTTPS

my $pki = make_pki();
$port = free_port();
$s = start_serve($redis, port => $port, dir => $dir,
                 args => ['--listen', "0.0.0.0:$port",
                          '--auth-file', $users,
                          '--tls-cert', $pki->{server},
                          '--tls-key', $pki->{server_key}]);
like($s->proc->err, qr{listens on https://0\.0\.0\.0:$port/},
     'serve says https');
my $url = "https://127.0.0.1:$port/api/services";
my $out = `curl -sS --cacert '$pki->{ca}' -u 'alice:s3cret pass' -w '\n%{http_code}' '$url' 2>&1`;
like($out, qr/^\{"data":\[.*\n200$/s, 'HTTPS with curl --cacert: 200');
$out = `curl -sS --cacert '$pki->{ca}' -w '\n%{http_code}' '$url' 2>&1`;
like($out, qr/\n401$/, '... without credentials: 401');
$out = `curl -sS --cacert '$pki->{other_ca}' '$url' 2>&1`;
isnt($?, 0, '... another CA: curl refuses the certificate');
$out = `curl -sS --max-time 5 -u 'alice:s3cret pass' -w '\n%{http_code}' 'http://127.0.0.1:$port/api/services' 2>&1`;
isnt($?, 0, 'plain HTTP to the HTTPS port: no answer')
    or diag $out;
ok($s->proc->alive, 'serve still runs');
$s->stop;

# --- files and options that cannot be used: exit 2 and the reason

my $apr1 = `htpasswd -m -b -n mallory pw 2>/dev/null`;
$apr1 = 'mallory:$apr1$abcdefgh$0123456789abcdefghijkl' unless $apr1 =~ /\$apr1\$/;
chomp $apr1;
my $alice_line = bcrypt_line('alice', 'x');
my %bad = (
    'a missing --auth-file' =>
        [['--auth-file', "$dir/none"], qr/--auth-file \S+none: No such file/],
    'an MD5 (apr1) entry' =>
        [['--auth-file', write_file('apr1', "$alice_line\n$apr1\n")],
         qr/apr1:2: user "mallory": an MD5 \(\$apr1\$\) hash; only bcrypt/],
    'a plain password' =>
        [['--auth-file', write_file('plain', "eve:secret\n")],
         qr/plain:1: user "eve": a plain or crypt\(\) password/],
    'a SHA-1 entry' =>
        [['--auth-file', write_file('sha', "eve:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n")],
         qr/sha:1: user "eve": a SHA-1/],
    'a malformed bcrypt hash' =>
        [['--auth-file', write_file('short', "eve:\$2y\$05\$abc\n")],
         qr/short:1: user "eve": a malformed bcrypt hash/],
    'a line without a colon' =>
        [['--auth-file', write_file('nocolon', "# c\neve\n")],
         qr/nocolon:2: USER:HASH expected/],
    'a user twice' =>
        [['--auth-file', write_file('twice', "$alice_line\n$alice_line\n")],
         qr/twice:2: user "alice" again/],
    'no user' =>
        [['--auth-file', write_file('empty', "# nobody\n")],
         qr/empty: no user in it/],
    'a short token' =>
        [['--token-file', write_file('short_token', ('a' x 31) . "\n")],
         qr/shorter than 32 characters/],
    'a token of two lines' =>
        [['--token-file', write_file('two_lines', ('a' x 40) . "\n" . ('b' x 40) . "\n")],
         qr/one line of letters/],
    'a missing --token-file' =>
        [['--token-file', "$dir/none"], qr/--token-file \S+none: No such file/],
    '--tls-cert without --tls-key' =>
        [['--tls-cert', $pki->{server}], qr/--tls-cert and --tls-key go together/],
    'an unreadable --tls-cert' =>
        [['--tls-cert', "$dir/none", '--tls-key', $pki->{server_key}],
         qr/--tls-cert \S+none: No such file/],
    'a key for --tls-cert' =>
        [['--tls-cert', $pki->{server_key}, '--tls-key', $pki->{server_key}],
         qr/--tls-cert \S+: no PEM certificate/],
    'a certificate for --tls-key' =>
        [['--tls-cert', $pki->{server}, '--tls-key', $pki->{server}],
         qr/--tls-key \S+: no PEM private key/],
    'a key of another certificate' =>
        [['--tls-cert', $pki->{server}, '--tls-key', $pki->{renewed_key}],
         qr/--tls-key \S+ does not match the certificate of --tls-cert/],
);
for my $what (sort keys %bad) {
    my ($args, $why) = @{ $bad{$what} };
    $res = run_cli($redis, 'serve', '--db', "$dir/bad.db",
                   '--listen', '127.0.0.1:' . free_port(), @$args);
    is($res->{rc}, 2, "$what: exit 2");
    like($res->{err}, $why, '... the reason') or diag $res->{err};
}

$res = run_cli($redis, 'serve', '--help');
like($res->{out}, qr/--auth-file FILE.*--token-file FILE.*--tls-cert FILE/s,
     '--help names the options');

done_testing();
