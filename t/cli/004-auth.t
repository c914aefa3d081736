#!/usr/bin/perl
# The command's connection as the modules' (et_redis_handshake): AUTH and
# SELECT from the URL; a wrong password is a clear error that never shows
# the password.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli);

my $redis = start_redis(args => ['--requirepass', 's3cret word']);
my $port = $redis->port;
my $id = 'ab' x 16;

my $r = run_cli(undef, '--redis', "redis://:s3cret%20word\@127.0.0.1:$port/3",
                'show', $id);
is($r->{rc}, 1, 'right password: connected, the trace is unknown');
like($r->{err}, qr/not found/, 'right password: "not found"');

$r = run_cli(undef, '--redis', "redis://:xyzzy42\@127.0.0.1:$port", 'show',
             $id);
is($r->{rc}, 1, 'wrong password: an error');
like($r->{err}, qr/AUTH failed/, 'wrong password: AUTH failed, said');
unlike($r->{err} . $r->{out}, qr/xyzzy42/, "the password is never shown");

$r = run_cli(undef, '--redis', "redis://127.0.0.1:$port", 'show', $id);
is($r->{rc}, 1, 'no password: an error');
like($r->{err}, qr/NOAUTH|AUTH|authentication/i, 'no password: said why');

done_testing();
