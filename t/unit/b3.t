#!/usr/bin/perl
use strict;
use warnings;
exec((($ENV{EDGETRACE_BUILD} || 'build') . '/unit/test_b3')) or die "cannot run: $!";
