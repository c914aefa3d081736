#!/usr/bin/perl
use strict; use warnings;
exec((($ENV{EDGETRACE_BUILD} || 'build') . '/unit/test_cli_utf8'))
    or die "cannot run: $!";
