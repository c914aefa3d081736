#!/usr/bin/perl
# An upgrade of both modules' packages under traffic: the packages of the
# commit before HEAD installed, the machine's nginx and apache2 binaries
# serving traced requests through them, then apt-get install of this
# tree's packages while a client keeps sending requests to each.  No
# request fails, and both servers run the new builds afterwards.  For
# nginx a reload alone would keep the old one (its master dlopen()s the
# same path while the old configuration still holds the library), so the
# package's postinst upgrades nginx in place, as nginx's own postinst does
# (USR2, then QUIT to the old master); httpd loads its modules again on a
# graceful restart, which Debian's apache2 helper does not ask for on an
# upgrade: that package's postinst does.
#
# The machine's servers are not the ones upgraded (they would listen on
# port 80): invoke-rc.d, which the maintainer scripts call, is stood in for
# on the PATH of this one apt-get by a script that does to the test's
# servers what /etc/init.d/nginx and apache2ctl do to the machine's.
# Everything else is the real thing: apt-get, dpkg, the packages'
# postinst, dh_nginx's nginx-reload trigger and nginx's own postinst
# answering it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use File::Temp ();
use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(start_redis http_get trace_spans new_trace_id
                       new_traceparent wait_until build_dir);
use Edgetrace::Deb qw(:all);

deb_plan();
my @mods = qw(libnginx-mod-http-edgetrace libapache2-mod-edgetrace);
my @new = @{ build_debs() }{@mods};
my @old = @{ build_debs(commit => 'HEAD~1',
                        out => build_dir() . '/deb-prev') }{@mods};
guard();

my $so = '/usr/lib/nginx/modules/ngx_http_edgetrace_module.so';
my $a2so = '/usr/lib/apache2/modules/mod_edgetrace.so';
my ($new_v, $old_v) = map { (run('dpkg-deb', '-f', $_, 'Version'))[1] }
                      $new[0], $old[0];
chomp($new_v, $old_v);
my ($cmp) = run('dpkg', '--compare-versions', $new_v, 'gt', $old_v);
is $cmp, 0, "$new_v (this tree) is newer than $old_v (HEAD~1)";

my $redis = start_redis();
my $rport = $redis->port;

my ($rc, $out) = apt_install(\@old);
is $rc, 0, "apt-get install the modules' packages $old_v" or diag $out;
($rc, $out) = run('a2enmod', 'edgetrace');
is $rc, 0, 'a2enmod edgetrace' or diag $out;

my $ngx = start_system_nginx(<<"CONF");
    edgetrace_redis redis://127.0.0.1:$rport;
    server {
        listen 127.0.0.1:%%PORT%%;
        edgetrace on;
        location / {
            return 200 "ok\\n";
        }
    }
CONF

my $a2 = start_system_apache(<<"CONF");
EdgeTraceRedis redis://127.0.0.1:$rport
EdgeTrace On
CONF

sub traced {
    my ($port) = @_;
    # the traffic's spans are many: a stream of this one alone
    Edgetrace::Test::redis($rport)->del('edgetrace:spans');
    my $tid = new_trace_id();
    my $r = http_get($port, '/',
                     headers => [['traceparent', new_traceparent($tid)]]);
    return $r->{status} == 200
           && trace_spans($rport, $tid, count => 1, timeout => 5) == 1;
}

ok traced($ngx->port), "a span through nginx with $old_v";
ok traced($a2->port), "a span through apache2 with $old_v";
my $master = $ngx->pid;
my ($w) = $ngx->workers;
my $old_ino = so_mapped($w, $so);
is $old_ino, (stat $so)[1], 'nginx\'s workers run the installed module';
my $a2_old_ino = so_mapped($a2->pid, $a2so);
is $a2_old_ino, (stat $a2so)[1], 'so does apache2';

# invoke-rc.d for this apt-get: the test's nginx is "nginx"
my $bin = File::Temp::tempdir('et-deb-bin-XXXXXX', TMPDIR => 1,
                              CLEANUP => 1);
my $log = "$bin/invoke-rc.d.log";
my $pid = $ngx->pidfile;
my $a2pid = $a2->pidfile;
my $a2conf = $a2->conf;
open my $fh, '>', "$bin/invoke-rc.d" or die "$bin/invoke-rc.d: $!";
print $fh <<"SH";
#!/bin/sh
# invoke-rc.d for t/deb/003-upgrade.t: acts on the test's nginx only
[ "\$1" = --quiet ] && shift
echo "\$*" >> $log
case "\$1 \$2" in
"nginx status")  [ -s $pid ] && kill -0 "\$(cat $pid)" 2>/dev/null ;;
"nginx reload")  kill -HUP "\$(cat $pid)" ;;
"nginx upgrade") # /etc/init.d/nginx's upgrade_nginx
         kill -USR2 "\$(cat $pid)" || exit 1
         n=0
         while [ ! -s $pid.oldbin ] || [ ! -s $pid ]; do
             n=\$((n + 1)); [ \$n -gt 100 ] && exit 2; sleep 0.1
         done
         kill -QUIT "\$(cat $pid.oldbin)" ;;
"apache2 status") [ -s $a2pid ] && kill -0 "\$(cat $a2pid)" 2>/dev/null ;;
"apache2 reload") # apache2ctl graceful
         /usr/sbin/apache2 -d /etc/apache2 -f $a2conf -k graceful ;;
*)       exit 1 ;;
esac
SH
close $fh;
chmod 0755, "$bin/invoke-rc.d";

my $stop = start_traffic($ngx->port, '/');
my $a2_stop = start_traffic($a2->port, '/');
Time::HiRes::sleep(0.5);
($rc, $out) = apt_install(\@new, path => $bin);
is $rc, 0, "apt-get install the modules' packages $new_v, both servers "
           . 'serving' or diag $out;
my $actions = Edgetrace::Test::_slurp($log);
like $actions, qr/^nginx upgrade$/m,
     'the postinst upgraded nginx in place' or diag $actions;
like $actions, qr/^nginx reload$/m, 'the nginx-reload trigger reloaded it'
    or diag $actions;
like $actions, qr/^apache2 reload$/m,
     'the postinst reloaded apache2 (graceful)' or diag $actions;

# the old master ends once its workers have served what they had
ok wait_until(sub { !kill 0, $master }, 15), 'the old master is gone';
my $new_master = $ngx->pid;
isnt $new_master, $master, "a new master ($new_master) serves";
ok wait_until(sub { $ngx->workers >= 2 }, 10), '... with its workers';
Time::HiRes::sleep(0.5);
ok wait_until(sub { so_mapped($a2->pid, $a2so) eq (stat $a2so)[1] }, 10),
   'apache2\'s parent runs the new build';
ok wait_until(sub {
       my @c = $a2->children;
       @c && !grep { so_mapped($_, $a2so) ne (stat $a2so)[1] } @c;
   }, 15), '... and so do its children';
isnt +(stat $a2so)[1], $a2_old_ino, 'the upgrade replaced its module file';
Time::HiRes::sleep(0.5);
for my $t (['nginx', $stop], ['apache2', $a2_stop]) {
    my ($sent, @failed) = $t->[1]->();
    ok $sent > 10 && !@failed,
       "$t->[0]: $sent requests during the upgrade, none failed"
        or diag join "\n", @failed[0 .. ($#failed < 9 ? $#failed : 9)];
}

my $new_ino = (stat $so)[1];
isnt $new_ino, $old_ino, 'the upgrade replaced the module file';
my @maps = map { so_mapped($_, $so) } $ngx->workers;
ok @maps && !(grep { $_ ne $new_ino } @maps),
   "nginx's workers run the new build ($new_v)"
    or diag "workers map: @maps; the file is $new_ino, the old one was "
            . $old_ino;
is so_mapped($new_master, $so), $new_ino, '... and so does the master';
ok traced($ngx->port), "a span through nginx with $new_v";
ok traced($a2->port), "a span through apache2 with $new_v";

for my $p (@mods) {
    my ($qrc, $v) = run('dpkg-query', '-W', '-f=${Version}', $p);
    is $v, $new_v, "$p $new_v is installed";
}

$ngx->stop;
$a2->stop;
($rc, $out) = apt_purge();
is $rc, 0, 'apt-get purge' or diag $out;

done_testing;
