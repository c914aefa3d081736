#!/usr/bin/perl
use strict; use warnings;
exec((($ENV{EDGETRACE_BUILD} || 'build') . '/unit/test_redis_url'))
    or die "cannot run: $!";
