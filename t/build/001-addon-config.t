#!/usr/bin/perl
# The nginx add-on script `config`: it lists exactly the files under
# common/ and nginx-module/ (a new file that is not listed fails here, a
# stray one is never compiled in), it finds hiredis with nginx's own
# auto/feature check, and OpenSSL likewise, and without either it stops
# with a clear error.
#
# The script runs as nginx's configure runs it (sourced, from a directory
# holding auto/feature), with auto/module replaced by a stub that prints
# what the script handed to it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Cwd ();
use File::Temp ();
use Test::More;
use Edgetrace::Test qw(build_dir);

my $root = Cwd::abs_path("$FindBin::Bin/../..");
my $feature = '/usr/share/nginx/src/auto/feature';
die "edgetrace: $feature is missing: apt-get install nginx-dev\n"
    unless -f $feature;

sub write_file {
    my ($path, $text, $mode) = @_;
    open my $fh, '>', $path or die "$path: $!\n";
    print $fh $text;
    close $fh;
    chmod $mode, $path if $mode;
}

# run_config(cc => CC): (exit status, output) of `. config`
sub run_config {
    my (%o) = @_;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    mkdir "$dir/auto";
    write_file("$dir/auto/feature", do {
        local (@ARGV, $/) = ($feature);
        <>;
    });
    write_file("$dir/auto/module", <<'SH');
echo "name=$ngx_module_name"
echo "libs=$ngx_module_libs"
for f in $ngx_module_srcs; do echo "src=$f"; done
for f in $ngx_module_deps; do echo "dep=$f"; done
SH
    my $cc = $o{cc} // 'cc';
    my $out = `cd $dir && ngx_addon_dir='$root' CC='$cc' ngx_n=-n ngx_c= \\
               NGX_AUTOCONF_ERR=$dir/autoconf.err NGX_AUTOTEST=$dir/autotest \\
               NGX_AUTO_CONFIG_H=$dir/config.h \\
               sh -c '. "\$ngx_addon_dir/config"' 2>&1`;
    return ($? >> 8, $out);
}

sub on_disk {
    my ($ext) = @_;
    return sort map { "$root/$_" }
                map { s{^\Q$root\E/}{}r }
                glob("$root/common/*.$ext $root/nginx-module/*.$ext");
}

# --- every source and header on disk is listed, and nothing else
my ($rc, $out) = run_config();
is($rc, 0, 'config succeeds with hiredis installed') or diag $out;
like($out, qr/^checking for hiredis library \.\.\. found$/m,
     'hiredis found by the feature check');
like($out, qr/^name=ngx_http_edgetrace_module$/m, 'the module name');
like($out, qr/^checking for OpenSSL library \.\.\. found$/m,
     'OpenSSL found by the feature check');
like($out, qr/^libs=-lhiredis -lssl -lcrypto -lpthread$/m,
     'linked with hiredis and OpenSSL');

my @srcs = sort $out =~ /^src=(.*)$/mg;
my @deps = sort $out =~ /^dep=(.*)$/mg;
is_deeply(\@srcs, [on_disk('c')],
          'ngx_module_srcs lists every .c under common/ and nginx-module/');
is_deeply(\@deps, [on_disk('h')],
          'ngx_module_deps lists every .h under common/ and nginx-module/');
ok(!grep({ !-f } @srcs, @deps), 'every listed file exists');

# --- without a library's headers: a compiler that cannot find them, and
# config stops naming the library and its Debian package
my $tmp = File::Temp::tempdir(CLEANUP => 1);

for my $lib (['hiredis', 'hiredis/hiredis.h', 'libhiredis-dev'],
             ['OpenSSL', 'openssl/ssl.h', 'libssl-dev'])
{
    my ($name, $header, $package) = @$lib;
    write_file("$tmp/cc", <<"SH", 0755);
#!/bin/sh
for a; do
    case \$a in
    *.c) if grep -q '$header' "\$a"; then
             echo "\$a: fatal error: $header: No such file" >&2
             exit 1
         fi ;;
    esac
done
exec cc "\$@"
SH
    ($rc, $out) = run_config(cc => "$tmp/cc");
    is($rc, 1, "no $name: config exits 1") or diag $out;
    like($out, qr/^checking for $name library \.\.\. not found$/m,
         "no $name: the feature check says not found");
    like($out, qr/error: the edgetrace module requires the $name library\.
You can install it with "apt-get install $package"\./,
         "no $name: the error names the library and the package");
    unlike($out, qr/^src=/m, "no $name: no module is added");
}

# --- nginx's own configure ran the same check for this build
my $log = build_dir() . '/nginx/configure.log';
open my $fh, '<', $log or die "$log: $!: run make\n";
my $text = do { local $/; <$fh> };
like($text, qr/^checking for hiredis library \.\.\. found$/m,
     "the build's configure found hiredis ($log)");

done_testing;
