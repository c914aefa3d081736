#!/usr/bin/perl
use strict; use warnings;
exec((($ENV{EDGETRACE_BUILD} || 'build') . '/unit/test_cli_span'))
    or die "cannot run: $!";
