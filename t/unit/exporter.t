#!/usr/bin/perl
# t/unit/test_exporter against real Redis servers: a plain one (TCP, unix
# socket and TLS), one with a password, and a port nobody listens on, where
# the test binary starts (and stops) a redis-server of its own to check
# that the exporter resumes.

use strict;
use warnings;

use lib 't/lib';
use File::Temp ();
use Edgetrace::Test qw(start_redis free_port);
use Edgetrace::Tls qw(make_pki redis_tls_args);

# interrupted, the harness's END still stops the servers it started
$SIG{INT} = $SIG{TERM} = $SIG{HUP} = sub { exit 1 };

my $bin = ($ENV{EDGETRACE_BUILD} || 'build') . '/unit/test_exporter';
die "$bin is missing: run make\n" unless -x $bin;

my $dir = File::Temp::tempdir('et-exporter-XXXXXX', TMPDIR => 1,
                              CLEANUP => 1);
my $password = 'pa%s$word';

# the plain one has a TLS port too (rediss://), with certificates made now
my $pki = make_pki();
my $tls_port = free_port();
my $plain = start_redis(dir => $dir,
                        args => ['--unixsocket', "$dir/redis.sock",
                                 '--unixsocketperm', '700',
                                 '--enable-debug-command', 'local',
                                 redis_tls_args($pki, port => $tls_port)]);
my $auth = start_redis(args => ['--requirepass', $password]);

my ($redis_server) = grep { -x } map { "$_/redis-server" }
                     split(/:/, $ENV{PATH} || ''), '/usr/bin', '/usr/sbin';

$ENV{ET_REDIS_PORT} = $plain->port;
$ENV{ET_REDIS_UNIX} = "$dir/redis.sock";
$ENV{ET_REDIS_AUTH_PORT} = $auth->port;
$ENV{ET_REDIS_PASSWORD} = $password;
$ENV{ET_REDIS_DEAD_PORT} = free_port();
$ENV{ET_REDIS_SERVER} = $redis_server;
$ENV{ET_REDIS_DIR} = $dir;
$ENV{ET_TLS_PORT} = $tls_port;
$ENV{ET_TLS_DIR} = $pki->{dir};

system($bin);

exit($? == 0 ? 0 : ($? >> 8) || 1);
