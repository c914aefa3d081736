#!/usr/bin/perl
use strict;
use warnings;
exec((($ENV{EDGETRACE_BUILD} || 'build') . '/unit/test_exporter_conf')) or die "cannot run: $!";
