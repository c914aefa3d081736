#!/usr/bin/perl
# The manual page edgetrace(1), docs/edgetrace.1: groff renders it without
# a warning, and it names every command and option the command's own
# --help does, so the two cannot drift apart.  Nothing is installed: the
# page is read in place, as `man -l docs/edgetrace.1` reads it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Cli qw(cli_path);

my $page = "$FindBin::Bin/../../docs/edgetrace.1";
ok(-f $page, 'docs/edgetrace.1 is there') or BAIL_OUT('no manual page');

sub run {
    my (@cmd) = @_;
    my $pid = open(my $out, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec @cmd or exit 127;
    }
    my $text = do { local $/; <$out> } // '';
    close $out;
    return ($? >> 8, $text);
}

# -ww: every warning groff knows; -z: no output, only the diagnostics
my ($rc, $warn) = run('groff', '-man', '-Tutf8', '-ww', '-z', $page);
is($rc, 0, 'groff -man renders it');
is($warn, '', 'without a warning') or diag($warn);

# the text a reader sees, unhyphenated and unjustified (the page says .nh)
local $ENV{LC_ALL} = 'C.UTF-8';
my ($mrc, $man) = run('groff', '-man', '-Tutf8', '-P', '-cbou', $page);
is($mrc, 0, 'groff renders it to text');
$man =~ s/\x{2010}|\xe2\x80\x90/-/g;    # groff's hyphen, should one appear

my $cli = cli_path();
my ($hrc, $help) = run($cli, '--help');
is($hrc, 0, 'edgetrace --help');
my @commands = $help =~ /^  (show|tail|top|export|serve)\b/mg;
is_deeply([sort @commands], [qw(export serve show tail top)],
          'the help lists the five commands');
my %want;
$want{$_} = 'edgetrace --help' for $help =~ /(--[a-z][a-z-]*)/g;
for my $c (@commands) {
    like($man, qr/^ {3}\Q$c\E\b/m, "the page has a section for $c");
    my ($crc, $ch) = run($cli, $c, '--help');
    is($crc, 0, "edgetrace $c --help");
    $want{$_} //= "edgetrace $c --help" for $ch =~ /(--[a-z][a-z-]*)/g;
}
cmp_ok(scalar(keys %want), '>=', 15, 'the helps name their options');
for my $o (sort keys %want) {
    like($man, qr/(?<![\w-])\Q$o\E(?![\w-])/,
         "the page names $o ($want{$o})");
}

# the exit statuses the help lists, each one described
my @status = $help =~ /(\d) (?:success|error|usage error|the collector)/g;
is_deeply(\@status, [0 .. 4], 'the help lists exit statuses 0 to 4');
for my $s (@status) {
    like($man, qr/^ {7}\Q$s\E {2,}\S/m,
         "the page describes exit status $s");
}

done_testing();
