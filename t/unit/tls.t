#!/usr/bin/perl
# t/unit/test_tls against redis-servers with TLS ports, each beside a plain
# port: certificates valid, expired, for another name, from another CA;
# one asking for client certificates; one with a password.  The
# certificates are made now, with openssl (t/lib/Edgetrace/Tls.pm).

use strict;
use warnings;

use lib 't/lib';
use Edgetrace::Test qw(start_redis free_port);
use Edgetrace::Tls qw(make_pki redis_tls_args);

# interrupted, the harness's END still stops the servers it started
$SIG{INT} = $SIG{TERM} = $SIG{HUP} = sub { exit 1 };

my $bin = ($ENV{EDGETRACE_BUILD} || 'build') . '/unit/test_tls';
die "$bin is missing: run make\n" unless -x $bin;

my $pki = make_pki();
my $password = 'tls-pa$s word';

# a TLS port (its number returned) on a redis-server of its own
sub tls_redis {
    my (%o) = @_;
    my $port = free_port();
    start_redis(args => [redis_tls_args($pki, port => $port, %o),
                         @{ $o{args} || [] }]);
    return $port;
}

my $port = free_port();
my $good = start_redis(args => [redis_tls_args($pki, port => $port)]);

$ENV{ET_TLS_DIR} = $pki->{dir};
$ENV{ET_TLS_PORT} = $port;
$ENV{ET_TLS_PLAIN_PORT} = $good->port;
$ENV{ET_TLS_EXPIRED_PORT} = tls_redis(cert => 'expired');
$ENV{ET_TLS_WRONG_NAME_PORT} = tls_redis(cert => 'wrong_name');
$ENV{ET_TLS_FOREIGN_PORT} = tls_redis(cert => 'foreign');
$ENV{ET_TLS_MUTUAL_PORT} = tls_redis(auth_clients => 'yes');
$ENV{ET_TLS_AUTH_PORT} = tls_redis(args => ['--requirepass', $password]);
$ENV{ET_TLS_PASSWORD} = $password;

system($ENV{ET_TLS_WRAP} ? (split(' ', $ENV{ET_TLS_WRAP}), $bin) : $bin);

exit($? == 0 ? 0 : ($? >> 8) || 1);
