#!/usr/bin/perl
use strict; use warnings;
exec((($ENV{EDGETRACE_BUILD} || 'build') . '/unit/test_keep')) or die "cannot run: $!";
