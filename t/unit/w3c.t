#!/usr/bin/perl
use strict; use warnings;
exec((($ENV{EDGETRACE_BUILD} || 'build') . '/unit/test_w3c')) or die "cannot run: $!";
