#!/usr/bin/perl
# et_slot.c, checked against a real redis-server's CLUSTER KEYSLOT
use strict; use warnings;
use lib 't/lib';
use Edgetrace::Test qw(start_redis build_dir);

my $redis = start_redis(cluster => 1);
$ENV{ET_REDIS_PORT} = $redis->{port};

system(build_dir() . '/unit/test_slot');
die "cannot run " . build_dir() . "/unit/test_slot: $!\n" if $? == -1;
exit($? & 127 ? 1 : $? >> 8);
