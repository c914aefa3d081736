#!/usr/bin/perl
# The links between README.md and docs/*.md lead somewhere: every relative
# link names a file of the repository, and every #anchor a heading of that
# file, spelled as GitHub spells a heading's anchor.  Moving a section
# without its links fails here.

use strict;
use warnings;
use FindBin;

use Test::More;

my $root = "$FindBin::Bin/../..";
my @docs = ("README.md", map { s{^\Q$root\E/}{}r } glob("$root/docs/*.md"));

sub slurp {
    my ($file) = @_;
    open my $fh, '<', "$root/$file" or return undef;
    return do { local $/; <$fh> };
}

# GitHub: lower case, punctuation but "-" and "_" dropped, spaces to "-"
sub anchors {
    my ($text) = @_;
    $text =~ s/^```.*?^```\s*$//msg;
    my %a;
    for my $h ($text =~ /^#{1,6}\s+(.*?)\s*$/mg) {
        my $s = lc $h;
        $s =~ s/[^\w\- ]//g;
        $s =~ tr/ /-/;
        $a{$s} = 1;
    }
    return \%a;
}

my $links = 0;
for my $file (@docs) {
    my $text = slurp($file);
    (my $dir = $file) =~ s{[^/]*$}{};
    (my $prose = $text) =~ s/^```.*?^```\s*$//msg;
    for my $target ($prose =~ /\]\(([^)\s]+)\)/g) {
        next if $target =~ m{^[a-z]+://};
        my ($path, $anchor) = $target =~ /^([^#]*)(?:#(.*))?$/;
        my $to = $path eq '' ? $file : "$dir$path";
        1 while $to =~ s{(^|/)[^/.][^/]*/\.\./}{$1};
        my $what = "$file: ($target)";
        ok(-e "$root/$to", "$what: $to exists") or next;
        $links++;
        next unless defined $anchor;
        my $t = slurp($to);
        ok(defined $t && anchors($t)->{$anchor},
           "$what: $to has a heading for #$anchor");
    }
}
cmp_ok($links, '>=', 20, 'the links were found');

done_testing();
