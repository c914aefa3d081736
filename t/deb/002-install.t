#!/usr/bin/perl
# The packages installed with apt-get into the machine's nginx and apache2:
# the nginx module enabled and working (nginx -t on the machine's
# configuration, a span in a test Redis through the machine's nginx
# binary and modules-enabled), a2enmod edgetrace and apache2ctl -t, the
# commented example of edgetrace.conf working as uncommented, reloads that
# keep serving, the unit accepted by systemd-analyze verify, and apt-get
# purge leaving nothing behind and both servers' configurations working.
# The machine is left as found: Edgetrace::Deb checks it when the test ends.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes ();
use Edgetrace::Test qw(start_redis free_port http_get trace_spans
                       new_trace_id new_traceparent);
use Edgetrace::Deb qw(:all);

deb_plan();
my $debs = build_debs();
guard();

my $redis = start_redis();
my $rport = $redis->port;

my ($rc, $out) = apt_install([map { $debs->{$_} } sort keys %$debs]);
is $rc, 0, 'apt-get install ./*.deb' or diag $out;
is_deeply [sort(installed())], [sort { $a cmp $b } PACKAGES],
          'the three packages are installed';

my %files;
for my $p (PACKAGES) {
    my ($lrc, $list) = run('dpkg', '-L', $p);
    $files{$p} = [grep { !-d $_ } split /\n/, $list];
}

my $enabled = '/etc/nginx/modules-enabled/50-mod-http-edgetrace.conf';
is readlink($enabled),
   '/usr/share/nginx/modules-available/mod-http-edgetrace.conf',
   'the nginx module is enabled on install';

sub first_lines {
    my @l = @_;
    return join "\n", @l[0 .. ($#l < 9 ? $#l : 9)];
}

# ---------------------------------------------------------------- nginx

# a snippet in the machine's conf.d: nginx -t checks it with the module
# that modules-enabled loads; the test's nginx includes it alone
my $snippet = '/etc/nginx/conf.d/edgetrace-test.conf';
on_cleanup(sub { unlink $snippet });
my $nport = free_port();
write_file($snippet, <<"CONF");
# written by edgetrace's t/deb/002-install.t, removed when it ends
edgetrace_redis redis://127.0.0.1:$rport;
server {
    listen 127.0.0.1:$nport;
    edgetrace on;
    edgetrace_service_name deb-nginx;
    location / {
        return 200 "ok\\n";
    }
    location = /status {
        edgetrace off;
        edgetrace_status;
    }
}
CONF

($rc, $out) = run('/usr/sbin/nginx', '-t');
is $rc, 0, 'nginx -t: the machine\'s configuration with the module'
    or diag $out;
like $out, qr/test is successful/, '... test is successful';

my $ngx = start_system_nginx("    include $snippet;", port => $nport);

sub traced {
    my ($port, $service) = @_;
    my $tid = new_trace_id();
    my $r = http_get($port, '/',
                     headers => [['traceparent', new_traceparent($tid)]]);
    my @s = trace_spans($rport, $tid, count => 1, timeout => 5);
    return $r->{status} == 200 && @s == 1
           && $s[0]{'service.name'} eq $service;
}

ok traced($nport, 'deb-nginx'),
   'a request through the machine\'s nginx: a span in Redis';
is http_get($nport, '/status')->{status}, 200, 'edgetrace_status answers';

my $stop = start_traffic($nport, '/');
Time::HiRes::sleep(0.3);
ok $ngx->reload, 'reload (HUP, as /etc/init.d/nginx reload): new workers';
Time::HiRes::sleep(0.3);
my ($sent, @failed) = $stop->();
ok $sent > 10 && !@failed, "$sent requests during the reload, none failed"
    or diag first_lines(@failed);
ok traced($nport, 'deb-nginx'), 'a span after the reload';
$ngx->stop;

# ---------------------------------------------------------------- apache2

($rc, $out) = run('a2enmod', 'edgetrace');
is $rc, 0, 'a2enmod edgetrace' or diag $out;
is readlink('/etc/apache2/mods-enabled/edgetrace.load'),
   '../mods-available/edgetrace.load', '... links edgetrace.load';
($rc, $out) = run('apache2ctl', '-t');
is $rc, 0, 'apache2ctl -t with the module enabled' or diag $out;

# edgetrace.conf's example, uncommented, on the test Redis
my $example = Edgetrace::Test::_slurp(
    '/etc/apache2/mods-available/edgetrace.conf');
my $conf = $example =~ s/^#(    )/$1/mgr;
$conf =~ s{redis://127\.0\.0\.1:6379}{redis://127.0.0.1:$rport};
$conf =~ s/EdgeTraceServiceName httpd/EdgeTraceServiceName deb-httpd/;
isnt $conf, $example, 'edgetrace.conf holds a commented example';
my $a2 = start_system_apache($conf);
ok traced($a2->port, 'deb-httpd'),
   'the example uncommented: a request through apache2 makes a span';
is http_get($a2->port, '/edgetrace-status')->{status}, 200,
   '... and the status handler answers';

$stop = start_traffic($a2->port, '/');
Time::HiRes::sleep(0.3);
($rc, $out) = $a2->ctl('graceful');
is $rc, 0, 'apache2 -k graceful (apache2ctl graceful)' or diag $out;
Time::HiRes::sleep(1);
($sent, @failed) = $stop->();
ok $sent > 10 && !@failed,
   "$sent requests during the graceful restart, none failed"
    or diag first_lines(@failed);
ok traced($a2->port, 'deb-httpd'), 'a span after it';
$a2->stop;

# ---------------------------------------------------------------- tools

($rc, $out) = run('/usr/bin/edgetrace', '--version');
like $out, qr/^edgetrace /, 'edgetrace --version';
for my $unit (qw(edgetrace-export edgetrace-serve)) {
    # where the package put it: /lib/systemd/system on Debian 12,
    # /usr/lib/systemd/system on Debian 13
    my ($path) = grep { m{/systemd/system/\Q$unit\E\.service$} }
                 @{ $files{'edgetrace-tools'} };
    ($rc, $out) = run('systemd-analyze', 'verify',
                      $path // "/lib/systemd/system/$unit.service");
    is $rc, 0, "systemd-analyze verify $unit.service" or diag $out;
    is $out, '', '... says nothing' or diag $out;
}

# ---------------------------------------------------------------- purge

# what systemd makes of the units' StateDirectory= for a dynamic user, with
# a database in it: purge removes it
my $made_private = !-e '/var/lib/private';
on_cleanup(sub {
    system('rm', '-rf', '/var/lib/edgetrace', '/var/lib/private/edgetrace');
    rmdir '/var/lib/private' if $made_private;
});
mkdir '/var/lib/private', 0700 if $made_private;
mkdir $_ for '/var/lib/private/edgetrace', '/var/lib/private/edgetrace/serve',
             '/var/lib/edgetrace';
write_file('/var/lib/private/edgetrace/serve/spans.db', 'SQLite format 3');
symlink '../private/edgetrace/serve', '/var/lib/edgetrace/serve';

unlink $snippet;
($rc, $out) = apt_purge();
is $rc, 0, 'apt-get purge' or diag $out;
is_deeply [installed()], [], 'nothing of edgetrace is installed';
my @left = grep { -e $_ || -l $_ } map { @$_ } values %files;
is_deeply \@left, [], 'every file the packages installed is gone';
ok !-e '/var/lib/private/edgetrace' && !-e '/var/lib/edgetrace',
   '... and what the units stored';
ok !-l $enabled && !-l "$enabled.removed", 'modules-enabled: no link left';
ok !-l '/etc/apache2/mods-enabled/edgetrace.load',
   'mods-enabled: no link left';
($rc, $out) = run('/usr/sbin/nginx', '-t');
is $rc, 0, 'nginx -t after the purge' or diag $out;
($rc, $out) = run('apache2ctl', '-t');
is $rc, 0, 'apache2ctl -t after the purge' or diag $out;

done_testing;
