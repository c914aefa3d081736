#!/usr/bin/perl
# An upgrade of libnginx-mod-http-edgetrace under traffic: the package of
# the commit before HEAD installed, the machine's nginx binary serving
# traced requests through it, then apt-get install of this tree's package
# while a client keeps sending requests.  No request fails, and nginx runs
# the new build of the module afterwards: a reload alone would keep the
# old one (its master dlopen()s the same path while the old configuration
# still holds the library), so the package's postinst upgrades nginx in
# place, as nginx's own postinst does (USR2, then QUIT to the old master).
#
# The machine's nginx is not the one upgraded (it would listen on port 80):
# invoke-rc.d, which the maintainer scripts call, is stood in for on the
# PATH of this one apt-get by a script that does to the test's nginx what
# /etc/init.d/nginx does to the machine's.  Everything else is the real
# thing: apt-get, dpkg, the package's postinst, dh_nginx's nginx-reload
# trigger and nginx's own postinst answering it.

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
my $new = build_debs()->{'libnginx-mod-http-edgetrace'};
my $old = build_debs(commit => 'HEAD~1',
                     out => build_dir() . '/deb-prev')
          ->{'libnginx-mod-http-edgetrace'};
guard();

my $so = '/usr/lib/nginx/modules/ngx_http_edgetrace_module.so';
my ($new_v, $old_v) = map { (run('dpkg-deb', '-f', $_, 'Version'))[1] }
                      $new, $old;
chomp($new_v, $old_v);
my ($cmp) = run('dpkg', '--compare-versions', $new_v, 'gt', $old_v);
is $cmp, 0, "$new_v (this tree) is newer than $old_v (HEAD~1)";

my $redis = start_redis();
my $rport = $redis->port;

my ($rc, $out) = apt_install([$old]);
is $rc, 0, "apt-get install ./libnginx-mod-http-edgetrace_$old_v" or diag $out;

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

sub traced {
    # the traffic's spans are many: a stream of this one alone
    Edgetrace::Test::redis($rport)->del('edgetrace:spans');
    my $tid = new_trace_id();
    my $r = http_get($ngx->port, '/',
                     headers => [['traceparent', new_traceparent($tid)]]);
    return $r->{status} == 200
           && trace_spans($rport, $tid, count => 1, timeout => 5) == 1;
}

ok traced(), "a span through nginx with $old_v";
my $master = $ngx->pid;
my ($w) = $ngx->workers;
my $old_ino = so_mapped($w, $so);
is $old_ino, (stat $so)[1], 'its workers run the installed module';

# invoke-rc.d for this apt-get: the test's nginx is "nginx"
my $bin = File::Temp::tempdir('et-deb-bin-XXXXXX', TMPDIR => 1,
                              CLEANUP => 1);
my $log = "$bin/invoke-rc.d.log";
my $pid = $ngx->pidfile;
open my $fh, '>', "$bin/invoke-rc.d" or die "$bin/invoke-rc.d: $!";
print $fh <<"SH";
#!/bin/sh
# invoke-rc.d for t/deb/003-upgrade.t: acts on the test's nginx only
[ "\$1" = --quiet ] && shift
echo "\$*" >> $log
[ "\$1" = nginx ] || exit 0
case "\$2" in
status)  [ -s $pid ] && kill -0 "\$(cat $pid)" 2>/dev/null ;;
reload)  kill -HUP "\$(cat $pid)" ;;
upgrade) # /etc/init.d/nginx's upgrade_nginx
         kill -USR2 "\$(cat $pid)" || exit 1
         n=0
         while [ ! -s $pid.oldbin ] || [ ! -s $pid ]; do
             n=\$((n + 1)); [ \$n -gt 100 ] && exit 2; sleep 0.1
         done
         kill -QUIT "\$(cat $pid.oldbin)" ;;
*)       exit 1 ;;
esac
SH
close $fh;
chmod 0755, "$bin/invoke-rc.d";

my $stop = start_traffic($ngx->port, '/');
Time::HiRes::sleep(0.5);
($rc, $out) = apt_install([$new], path => $bin);
is $rc, 0, "apt-get install ./libnginx-mod-http-edgetrace_$new_v, "
           . 'nginx serving' or diag $out;
my $actions = Edgetrace::Test::_slurp($log);
like $actions, qr/^nginx upgrade$/m,
     'the postinst upgraded nginx in place' or diag $actions;
like $actions, qr/^nginx reload$/m, 'the nginx-reload trigger reloaded it'
    or diag $actions;

# the old master ends once its workers have served what they had
ok wait_until(sub { !kill 0, $master }, 15), 'the old master is gone';
my $new_master = $ngx->pid;
isnt $new_master, $master, "a new master ($new_master) serves";
ok wait_until(sub { $ngx->workers >= 2 }, 10), '... with its workers';
Time::HiRes::sleep(0.5);
my ($sent, @failed) = $stop->();
ok $sent > 10 && !@failed, "$sent requests during the upgrade, none failed"
    or diag join "\n", @failed[0 .. ($#failed < 9 ? $#failed : 9)];

my $new_ino = (stat $so)[1];
isnt $new_ino, $old_ino, 'the upgrade replaced the module file';
my @maps = map { so_mapped($_, $so) } $ngx->workers;
ok @maps && !(grep { $_ ne $new_ino } @maps),
   "nginx's workers run the new build ($new_v)"
    or diag "workers map: @maps; the file is $new_ino, the old one was "
            . $old_ino;
is so_mapped($new_master, $so), $new_ino, '... and so does the master';
ok traced(), "a span through nginx with $new_v";

my ($qrc, $v) = run('dpkg-query', '-W', '-f=${Version}',
                    'libnginx-mod-http-edgetrace');
is $v, $new_v, "$new_v is installed";

$ngx->stop;
($rc, $out) = apt_purge();
is $rc, 0, 'apt-get purge' or diag $out;

done_testing;
