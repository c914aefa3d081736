#!/usr/bin/perl
# et_stream.c and et_span.c, with a round trip through a real redis-server
use strict; use warnings;
use lib 't/lib';
use Edgetrace::Test qw(start_redis build_dir);

my $redis = start_redis();
$ENV{ET_REDIS_PORT} = $redis->{port};

system(build_dir() . '/unit/test_stream');
die "cannot run " . build_dir() . "/unit/test_stream: $!\n" if $? == -1;
exit($? & 127 ? 1 : $? >> 8);
