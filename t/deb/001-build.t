#!/usr/bin/perl
# make deb's packages (scripts/deb, debian/): what each holds, what it
# depends on, its version, and lintian: no error, and no warning that
# debian/*.lintian-overrides does not justify.  The build is done once:
# 002 and 003 reuse it (scripts/deb's stamp).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use File::Temp ();
use Test::More;
use Edgetrace::Deb qw(:all);

deb_plan(allow_installed => 1);

my $debs = build_debs();
is_deeply [sort keys %$debs], [sort { $a cmp $b } PACKAGES],
          'three packages built';

sub contents {
    my ($deb) = @_;
    my ($rc, $out) = run('dpkg-deb', '-c', $deb);
    return map { (split ' ', $_, 6)[5] =~ s{^\.}{}r } split /\n/, $out;
}

sub field {
    my ($deb, $f) = @_;
    my ($rc, $out) = run('dpkg-deb', '-f', $deb, $f);
    chomp $out;
    return $out;
}

my %want = (
    'libnginx-mod-http-edgetrace' => [qw(
        /usr/lib/nginx/modules/ngx_http_edgetrace_module.so
        /usr/share/nginx/modules-available/mod-http-edgetrace.conf)],
    'libapache2-mod-edgetrace' => [qw(
        /usr/lib/apache2/modules/mod_edgetrace.so
        /etc/apache2/mods-available/edgetrace.load
        /etc/apache2/mods-available/edgetrace.conf)],
    'edgetrace-tools' => [qw(
        /usr/bin/edgetrace /usr/share/man/man1/edgetrace.1.gz
        /usr/lib/systemd/system/edgetrace-export.service
        /usr/lib/systemd/system/edgetrace-serve.service
        /etc/default/edgetrace)],
);
for my $p (sort keys %want) {
    # debhelper puts the units in /lib/systemd/system on Debian 12, in
    # /usr/lib/systemd/system from Debian 13 on: one directory on a
    # merged /usr, as both have
    my %in = map { s{^/lib/systemd/}{/usr/lib/systemd/}r => 1 }
             contents($debs->{$p});
    ok !(grep { !$in{$_} } @{ $want{$p} }), "$p holds @{ $want{$p} }"
        or diag join "\n", sort keys %in;
}

# the ABI the module was built for: nginx-dev's, which the installed nginx
# provides
my $abi = do {
    local (@ARGV) = ('/usr/share/nginx/src/debian/libnginx-mod.abisubstvars');
    my ($l) = grep { /^nginx:abi=/ } <>;
    ($l // '') =~ s/^nginx:abi=//r =~ s/\s+$//r;
};
like field($debs->{'libnginx-mod-http-edgetrace'}, 'Depends'),
     qr/(^|, )\Q$abi\E(,|$)/, "the nginx module depends on $abi";
like field($debs->{'libapache2-mod-edgetrace'}, 'Depends'),
     qr/(^|, )apache2-api-\d+/, 'the httpd module depends on apache2-api';

# dh_nginx's load file, enabled on install; the httpd module is not
my ($rc, $load) = run('sh', '-c', "dpkg-deb --fsys-tarfile "
    . "$debs->{'libnginx-mod-http-edgetrace'} | tar -xOf - "
    . "./usr/share/nginx/modules-available/mod-http-edgetrace.conf");
is $load, "load_module modules/ngx_http_edgetrace_module.so;\n",
   'mod-http-edgetrace.conf loads the module';
my %scripts;
for my $p (sort keys %$debs) {
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    run('dpkg-deb', '-e', $debs->{$p}, $dir);
    $scripts{$p}{$_} = Edgetrace::Test::_slurp("$dir/$_")
        for qw(preinst postinst prerm postrm);
}
# the units: never stopped while the packages unpack, restarted after an
# upgrade when they run, never started by an install
my $tools = $scripts{'edgetrace-tools'};
unlike $tools->{preinst}, qr/deb-systemd-invoke stop/,
       'edgetrace-tools: no unit stopped before an upgrade';
like $tools->{postinst}, qr/daemon-reload.*\n\s*deb-systemd-invoke\s+try-restart
                            \s+edgetrace-export\.service\s+\\?\s*
                            edgetrace-serve\.service/x,
     '... and those that run restarted after it, with the new units';
unlike $tools->{postinst}, qr/deb-systemd-invoke (?:re)?start/,
       '... and none started by an install';
like $tools->{prerm}, qr/"\$1"\s=\sremove\s.*\n\s*deb-systemd-invoke\s+stop
                       \s+edgetrace-export\.service/x,
     '... and stopped when the package is removed';
like $scripts{'libnginx-mod-http-edgetrace'}{postinst},
     qr{ln -sf /usr/share/nginx/modules-available/\$from}s,
     'the nginx module is enabled on install (dh_nginx)';
like $scripts{'libnginx-mod-http-edgetrace'}{postinst},
     qr{invoke-rc\.d nginx upgrade}, '... and nginx upgraded in place on '
     . 'an upgrade';
unlike $scripts{'libapache2-mod-edgetrace'}{postinst},
       qr/apache2_invoke enmod/, 'the httpd module waits for a2enmod';
like $scripts{'libapache2-mod-edgetrace'}{postrm},
     qr/apache2_invoke dismod/, '... and is disabled on purge';
like $scripts{'libapache2-mod-edgetrace'}{postinst},
     qr/^\s*apache2_reload reload$/m, '... and reloaded on an upgrade';

# the version: git describe, or the changelog's with date, count, hash
my $v = field($debs->{'edgetrace-tools'}, 'Version');
my ($t_rc, $tag) = run('git', '-C', "$FindBin::Bin/../..", 'describe',
                       '--tags', '--match', 'v[0-9]*');
if ($t_rc) {
    like $v, qr/^\d+\.\d+\.\d+\+git\d{8}\.\d+\.[0-9a-f]{7}(\+dirty)?$/,
         "version $v: no tag, the changelog's version+gitDATE.COUNT.HASH";
} else {
    like $v, qr/^\d+\.\d+\.\d+(\+\d+\.g[0-9a-f]+)?(\+dirty)?$/,
         "version $v from git describe $tag";
}
is field($debs->{$_}, 'Version'), $v, "$_ is $v" for sort keys %$debs;

# the builder is the Maintainer (DEBFULLNAME, DEBEMAIL), in the control
# field and the changelog entry; the license is Apache-2.0 (LICENSE)
for my $p (sort keys %$debs) {
    is field($debs->{$p}, 'Maintainer'), MAINTAINER, "$p: Maintainer";
    my ($c_rc, $copy) = run('sh', '-c', "dpkg-deb --fsys-tarfile "
        . "$debs->{$p} | tar -xOf - ./usr/share/doc/$p/copyright");
    like $copy, qr{^License: Apache-2\.0$}m, "$p: License: Apache-2.0";
    my ($g_rc, $log) = run('sh', '-c', "dpkg-deb --fsys-tarfile "
        . "$debs->{$p} | tar -xOf - ./usr/share/doc/$p/changelog.gz"
        . " | gunzip");
    like $log, qr/\A[^\n]*\n(?:[^\n]*\n)*? -- \Q${\MAINTAINER}\E  /,
         "$p: the changelog entry is signed by the builder";
}
# a DEBEMAIL that is not one address is refused before anything is built
for my $bad ("x", "a\@b\nX-Injected: 1", "a b\@example.org",
             "a\@b\@example.org") {
    my $tmp = File::Temp::tempdir(CLEANUP => 1);
    local $ENV{DEBEMAIL} = $bad;
    my ($b_rc, $text) = run("$FindBin::Bin/../../scripts/deb",
                            "$FindBin::Bin/../..", "$tmp/out");
    is $b_rc, 2, 'DEBEMAIL ' . ($bad =~ s/\n/\\n/r) . ': refused'
        or diag $text;
    like $text, qr/do not make a Maintainer field/, '... with the reason';
    ok !-e "$tmp/out/stamp", '... and nothing built';
}

# lintian on the .changes: every package, no error, every warning
# overridden in the packaging with its reason
my ($changes) = glob(($debs->{'edgetrace-tools'} =~ s{/[^/]+$}{}r)
                     . '/*.changes');
my ($l_rc, $lint) = run('lintian', '--fail-on', 'error', $changes);
is $l_rc, 0, 'lintian: no error' or diag $lint;
my @warn = grep { /^[EW]: / } split /\n/, $lint;
is_deeply \@warn, [], 'lintian: no warning left' or diag $lint;
for my $o (glob "$FindBin::Bin/../../debian/*.lintian-overrides") {
    my $text = Edgetrace::Test::_slurp($o);
    my @bare = grep { /^\S/ && !/^#/ } split /\n/, $text;
    my $comments = () = $text =~ /^#/mg;
    ok @bare && $comments >= @bare,
       ($o =~ s{.*/}{}r) . ": each override has its reason";
}

# the units as systemd reads them: the sandbox the packaging promises
for my $unit (glob "$FindBin::Bin/../../debian/*.service") {
    my $u = Edgetrace::Test::_slurp($unit);
    my ($name) = $unit =~ /edgetrace-(\w+)\.service$/;
    like $u, qr/^$_$/m, ($unit =~ s{.*/}{}r) . ": $_"
        for 'DynamicUser=yes', 'ProtectSystem=strict',
            "StateDirectory=edgetrace/$name", 'Restart=on-failure',
            'EnvironmentFile=/etc/default/edgetrace';
}

done_testing;
