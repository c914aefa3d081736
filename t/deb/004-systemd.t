#!/usr/bin/perl
# The packages under a real systemd: a Debian 12 root (debootstrap, built
# once and cached under the build directory: Edgetrace::Deb's
# systemd_root) booted by systemd-nspawn with a network of its own, its
# nginx on port 80 and apache2 on 8080, both serving through the modules
# into its own Redis, driven from here with nsenter.  What 002 and 003
# cannot see on a machine whose PID 1 is not systemd:
#
#   - the upgrade from the commit before HEAD's packages to this tree's,
#     under a stream of requests: none fails, nginx's master is a new
#     process mapping the new module (nginx's postinst upgrades it in
#     place) and systemd's MainPID follows it, a running edgetrace serve is
#     restarted on the new binary, a stopped export stays stopped;
#   - systemctl reload nginx and apache2 under requests, spans arriving;
#   - the units: systemd-analyze verify, serve as a dynamic user with its
#     database in /var/lib/private/edgetrace/serve, restarted after kill -9;
#   - apt-get remove stops serve, apt-get purge removes what it stored, and
#     nginx -t and apache2ctl -t still pass.
#
# The container is powered off when the test ends, however it ends, and
# its overlay goes with it (the cached root is not written); Edgetrace::Deb
# checks that no process of it and nothing mounted is left, and that this
# machine is as found.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use File::Copy ();
use File::Temp ();
use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(new_trace_id new_traceparent wait_until build_dir);
use Edgetrace::Deb qw(:all);

deb_plan();
for my $p (qw(debootstrap systemd-nspawn nsenter)) {
    next if grep { -x "$_/$p" } split(/:/, $ENV{PATH}), '/usr/sbin';
    die "edgetrace: no $p: scripts/deps test installs it\n";
}
my $t0 = Time::HiRes::time();
my $new = build_debs();
my $old = build_debs(commit => 'HEAD~1', out => build_dir() . '/deb-prev');
my $root = systemd_root();
guard();

my ($new_v, $old_v) = map { (run('dpkg-deb', '-f', $_, 'Version'))[1] }
                      $new->{'edgetrace-tools'}, $old->{'edgetrace-tools'};
chomp($new_v, $old_v);

# the packages, seen in the container as /debs/new and /debs/old
my $debs = File::Temp::tempdir('et-deb-004-XXXXXX', TMPDIR => 1,
                               CLEANUP => 1);
chmod 0755, $debs;
for my $set (['new', $new], ['old', $old]) {
    mkdir "$debs/$set->[0]";
    File::Copy::copy($_, "$debs/$set->[0]/") or die "copy $_: $!"
        for values %{ $set->[1] };
}

my $c = boot_container($root, bind => { $debs => '/debs' });
diag(sprintf 'the container booted in %.1f s (systemd %s)', $c->boot_time,
     $c->out('systemctl is-system-running'));

my $so = '/usr/lib/nginx/modules/ngx_http_edgetrace_module.so';
my $a2so = '/usr/lib/apache2/modules/mod_edgetrace.so';

sub apt {
    my ($what) = @_;
    return $c->sh("apt-get $what -y -q --no-install-recommends 2>&1", 300);
}

# what systemd says of a unit
sub unit {
    my ($u, $prop) = @_;
    return $c->out("systemctl show -p $prop --value $u");
}

sub active { $c->out("systemctl is-active $_[0]") }

# a request with a trace of its own through $url, then its span in the
# container's Redis (within 5 s): the number of its spans
sub traced {
    my ($url) = @_;
    my $tid = new_trace_id();
    my $tp = new_traceparent($tid);
    my $code = $c->out("curl -s -o /dev/null -m 5 -w '%{http_code}' "
                       . "-H 'traceparent: $tp' $url");
    return "status $code" unless $code eq '200';
    my $n = 0;
    wait_until(sub {
        $n = $c->out("redis-cli --raw XRANGE edgetrace:spans - + "
                     . "| grep -c -x $tid");
        $n > 0;
    }, 5);
    return $n;
}

# the inode process $pid maps $path from ("(deleted)" after it when the
# file was replaced), and the file's inode now
sub mapped {
    my ($pid, $path) = @_;
    my $m = $c->out("awk '\$6 == \"$path\" { print \$5, \$7; exit }' "
                    . "/proc/$pid/maps");
    $m =~ s/ $//;
    return ($m, $c->out("stat -c %i $path"));
}

sub no_failures {
    my ($what, $stop) = @_;
    my ($sent, @failed) = $stop->();
    ok $sent > 10 && !@failed,
       "$what: $sent requests, none failed"
        or diag join "\n", "$sent requests", @failed[0 .. ($#failed < 9
                                                       ? $#failed : 9)];
}

# ----------------------------------------- this commit's parent installed

my ($rc, $out) = apt('install /debs/old/*.deb');
is $rc, 0, "apt-get install the packages $old_v (HEAD~1)" or diag $out;
$c->sh(<<'SH');
cat > /etc/nginx/conf.d/edgetrace.conf <<C
edgetrace on;
edgetrace_redis redis://127.0.0.1:6379;
edgetrace_service_name deb-nginx;
C
sed -i -e 's/^#    /    /; s/^#$//' \
    -e 's/EdgeTraceServiceName httpd/EdgeTraceServiceName deb-httpd/' \
    /etc/apache2/mods-available/edgetrace.conf
SH
($rc, $out) = $c->sh('a2enmod -q edgetrace && systemctl restart apache2 '
                     . '&& systemctl reload nginx 2>&1');
is $rc, 0, 'a2enmod edgetrace, apache2 restarted, nginx reloaded'
    or diag $out;
($rc, $out) = $c->sh('systemctl enable --now edgetrace-serve 2>&1');
is $rc, 0, 'systemctl enable --now edgetrace-serve' or diag $out;
ok wait_until(sub { active('edgetrace-serve') eq 'active' }, 15),
   '... it runs';
is active('edgetrace-export'), 'inactive', 'edgetrace-export is stopped';
is traced('http://127.0.0.1/'), 1, "a span through nginx with $old_v";
is traced('http://127.0.0.1:8080/'), 1, "a span through apache2 with $old_v";

# ------------------------------------------- the upgrade, under requests

my $ngx0 = unit('nginx', 'MainPID');
my $a20 = unit('apache2', 'MainPID');
my $serve0 = unit('edgetrace-serve', 'MainPID');
my ($ino0) = mapped($ngx0, $so);
my $stop = $c->traffic('http://127.0.0.1/', 'http://127.0.0.1:8080/');
Time::HiRes::sleep(1);
($rc, $out) = apt('install /debs/new/*.deb');
is $rc, 0, "apt-get install the packages $new_v (this tree), serving"
    or diag $out;
Time::HiRes::sleep(1);
no_failures('nginx and apache2 during the upgrade', $stop);

is active('nginx'), 'active', 'nginx is active';
my $ngx1 = unit('nginx', 'MainPID');
isnt $ngx1, $ngx0, "nginx's master is a new process ($ngx0, now $ngx1)";
is $ngx1, $c->out('cat /run/nginx.pid'),
   "systemd's MainPID is the master nginx.pid names";
like $c->out("cat /proc/$ngx1/cmdline | tr '\\0' ' '"), qr/^nginx: master/,
     '... a master process';
my ($m, $ino) = mapped($ngx1, $so);
is $m, $ino, "the new master maps the new module (inode $ino)";
isnt $ino, $ino0, '... which the upgrade replaced';
my @w = split ' ', $c->out("grep -l '^PPid:[[:space:]]*$ngx1\$' "
                           . '/proc/[0-9]*/status | cut -d/ -f3');
ok @w >= 1, "nginx's master has workers (@w)";
is_deeply [map { (mapped($_, $so))[0] } @w], [map { $ino } @w],
          '... mapping the new module';
my $a21 = unit('apache2', 'MainPID');
is active('apache2'), 'active', 'apache2 is active';
($m, $ino) = mapped($a21, $a2so);
is $m, $ino, 'apache2 runs the new mod_edgetrace';

is active('edgetrace-serve'), 'active', 'edgetrace-serve runs';
my $serve1 = unit('edgetrace-serve', 'MainPID');
isnt $serve1, $serve0, "... restarted ($serve0, now $serve1)";
is $c->out("readlink /proc/$serve1/exe"), '/usr/bin/edgetrace',
   '... on the new binary (not a deleted one)';
is active('edgetrace-export'), 'inactive', 'edgetrace-export stays stopped';
for my $p (PACKAGES) {
    is $c->out("dpkg-query -W -f='\${Version}' $p"), $new_v,
       "$p $new_v is installed";
}
is traced('http://127.0.0.1/'), 1, "a span through nginx with $new_v";
is traced('http://127.0.0.1:8080/'), 1, "a span through apache2 with $new_v";

# ---------------------------------------------- reloads, under requests

for my $s (['nginx', 'http://127.0.0.1/'],
           ['apache2', 'http://127.0.0.1:8080/']) {
    my ($name, $url) = @$s;
    my $pid = unit($name, 'MainPID');
    $stop = $c->traffic($url);
    Time::HiRes::sleep(1);
    ($rc, $out) = $c->sh("systemctl reload $name 2>&1");
    is $rc, 0, "systemctl reload $name" or diag $out;
    Time::HiRes::sleep(1);
    no_failures("$name during the reload", $stop);
    is active($name), 'active', "$name is active";
    is unit($name, 'MainPID'), $pid, '... with the same master';
    is traced($url), 1, "a span through $name after the reload";
}

# ------------------------------------------------------------ the units

($rc, $out) = $c->sh('systemd-analyze verify '
    . '/lib/systemd/system/edgetrace-serve.service '
    . '/lib/systemd/system/edgetrace-export.service 2>&1');
is $rc, 0, 'systemd-analyze verify: both units' or diag $out;
is $out, '', '... without a word' or diag $out;

is $c->out('systemctl is-enabled edgetrace-serve'), 'enabled',
   'edgetrace-serve is enabled';
# a serve the upgrade left stopped (failed above) is started: what
# follows is checked still
($rc, $out) = $c->sh('systemctl start edgetrace-serve 2>&1');
is $rc, 0, 'systemctl start edgetrace-serve' or diag $out;
my $serve = '';
# a unit just started runs systemd's code until it execs the command
ok wait_until(sub {
       $serve = unit('edgetrace-serve', 'MainPID');
       $c->out("readlink /proc/$serve/exe") eq '/usr/bin/edgetrace';
   }, 10), "serve runs /usr/bin/edgetrace ($serve)";
my $uid = $c->out("awk '/^Uid:/ { print \$2 }' /proc/$serve/status");
ok $uid =~ /^\d+$/ && $uid >= 61184 && $uid <= 65519,
   "serve runs as a dynamic user (uid $uid)";
is unit('edgetrace-serve', 'DynamicUser'), 'yes', '... DynamicUser=yes';
is $c->out('readlink /var/lib/edgetrace/serve'), '../private/edgetrace/serve',
   '/var/lib/edgetrace/serve is systemd\'s link to '
   . '/var/lib/private/edgetrace/serve';
is $c->out('stat -c %a /var/lib/private'), '700',
   '... in /var/lib/private, closed to others';
is $c->out('stat -c "%u %a" /var/lib/private/edgetrace/serve'), "$uid 755",
   '/var/lib/private/edgetrace/serve is that user\'s';
is $c->out('stat -c %u /var/lib/private/edgetrace/serve/spans.db'), $uid,
   '... and holds its database, spans.db';

($rc, $out) = $serve =~ /^[1-9]\d*$/ ? $c->sh("kill -9 $serve")
                                     : (1, "no MainPID: $serve");
is $rc, 0, "kill -9 serve ($serve)" or diag $out;
my $serve2 = '';
ok wait_until(sub {
       $serve2 = unit('edgetrace-serve', 'MainPID');
       $serve2 ne '0' && $serve2 ne $serve
       && active('edgetrace-serve') eq 'active';
   }, 30), "systemd restarted serve ($serve2) after RestartSec";
is unit('edgetrace-serve', 'NRestarts'), 1, '... once (NRestarts=1)';

# ------------------------------------------------------ remove and purge

($rc, $out) = apt('remove edgetrace-tools');
is $rc, 0, 'apt-get remove edgetrace-tools' or diag $out;
is active('edgetrace-serve'), 'inactive', 'edgetrace-serve stopped';
is $c->out("ls -d /proc/$serve2 2>/dev/null"), '',
   "... its process $serve2 is gone";

# the admin's configuration goes first: it uses the module's directives
$c->sh('rm /etc/nginx/conf.d/edgetrace.conf');
($rc, $out) = apt('purge ' . join ' ', PACKAGES);
is $rc, 0, 'apt-get purge the three packages' or diag $out;
is $c->out('ls -d /var/lib/edgetrace /var/lib/private/edgetrace 2>/dev/null'),
   '', '/var/lib/edgetrace and /var/lib/private/edgetrace are gone';
is $c->out('ls /etc/systemd/system/multi-user.target.wants '
           . '| grep edgetrace'), '', 'no unit is left enabled';
($rc, $out) = $c->sh('nginx -t 2>&1');
is $rc, 0, 'nginx -t passes' or diag $out;
($rc, $out) = $c->sh('apache2ctl -t 2>&1');
is $rc, 0, 'apache2ctl -t passes' or diag $out;
is active('nginx') . ' ' . active('apache2'), 'active active',
   'nginx and apache2 are active';
is $c->out('systemctl --failed --no-legend --plain'), '',
   'no unit failed in the container';

# ----------------------------------------------------------- power off

my $left = $c->stop;
is_deeply $left, [], 'the container is powered off: no process of it, '
    . 'nspawn gone, nothing mounted' or diag "left: @$left";
diag(sprintf '004 took %.0f s', Time::HiRes::time() - $t0);

done_testing;
