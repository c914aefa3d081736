package Edgetrace::Deb;

# The package tests' part of the harness (t/deb): builds the packages
# (scripts/deb, once: a stamp skips a build of unchanged files), installs
# them into the machine's nginx and apache2, runs those servers' binaries
# on loopback, and puts the machine back as it was found, on failure too.
#
#   deb_plan();                          # skip unless root, with the reason
#   my $debs = build_debs();             # { package => path }, this tree
#   my $old  = build_debs(commit => 'HEAD~1', out => 'build/deb-prev');
#   guard();                             # the machine's state now, checked
#                                        # again when the test ends
#   apt_install([debs], path => DIR);    # apt-get install ./x.deb ...
#                                        # path => DIR: first on the
#                                        # maintainer scripts' PATH
#   apt_purge();                         # every edgetrace package
#   on_cleanup(sub { ... });             # when the test ends, before
#                                        # the purge
#   my $ngx = start_system_nginx($conf); # ->port ->pid ->pidfile ->conf
#                                        # ->workers ->reload ->stop
#   my $a2  = start_system_apache($conf);# ->ctl('graceful') ->children
#   my $t   = start_traffic($port, '/'); # ... $t->() = (sent, failures)
#   my $root = systemd_root();           # a Debian 12 root to boot (cached)
#   my $c = boot_container($root, bind => DIR);  # systemd-nspawn -b of it
#   my ($rc, $out) = $c->sh('systemctl ...', 60); # run in it (nsenter)
#
# The servers are the machine's own binaries with its own module
# directories (/etc/nginx/modules-enabled, /etc/apache2/mods-enabled),
# started as their init scripts start them (daemons writing a pid file),
# but on 127.0.0.1 and a free port, from a main configuration file in a
# temporary directory: the machine's configuration would listen on port
# 80 and on every address.  They are stopped by the pids they wrote.
#
# The state compared (snapshot): every file, link and directory under
# /etc/nginx, /etc/apache2, /usr/share/nginx/modules-available, the
# modules' directories, /etc/default/edgetrace, the units and the state
# a2enmod and deb-systemd-helper keep in /var/lib, with modes and
# contents; the installed packages and their versions; whether the
# machine's own nginx and apache2 (their pid files in /run) run; and what
# apache2ctl and systemd-analyze leave in /run.
#
# A test killed outright (SIGKILL) runs no cleanup: then apt-get purge
# libnginx-mod-http-edgetrace libapache2-mod-edgetrace edgetrace-tools,
# and rm /etc/nginx/conf.d/edgetrace-test.conf; for 004, kill the
# systemd-nspawn it left (its overlay goes with it).  Once a container is
# booted, SIGINT, SIGTERM and SIGHUP end the test through its cleanup.

use strict;
use warnings;

use Exporter 'import';
use Cwd ();
use Digest::MD5 ();
use File::Basename ();
use Fcntl ();
use File::Find ();
use File::Path ();
use File::Temp ();
use POSIX ();
use Test::More ();
use Time::HiRes ();

use Edgetrace::Test qw(free_port wait_port wait_until http_get);

our @EXPORT_OK = qw(deb_plan build_debs guard snapshot apt_install
                    apt_purge start_system_nginx start_system_apache
                    start_traffic installed service_note so_mapped run
                    on_cleanup write_file systemd_root boot_container
                    PACKAGES MAINTAINER);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

# who the test builds name as their Maintainer (scripts/deb reads
# DEBFULLNAME and DEBEMAIL, as dch does)
use constant MAINTAINER => 'edgetrace package test <deb-test@example.org>';
use constant PACKAGES => qw(libnginx-mod-http-edgetrace
                            libapache2-mod-edgetrace edgetrace-tools);

my $ROOT = Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../../..');

my @SNAPSHOT_PATHS = qw(/etc/nginx /etc/apache2
                        /usr/share/nginx/modules-available
                        /usr/lib/nginx/modules /usr/lib/apache2/modules
                        /etc/default/edgetrace /lib/systemd/system
                        /etc/systemd/system /var/lib/edgetrace
                        /var/lib/systemd/deb-systemd-helper-enabled
                        /var/lib/systemd/deb-systemd-helper-masked
                        /var/lib/apache2 /usr/bin/edgetrace);

my @servers;     # what start_system_* started: stopped in END
my @cleanup;     # subs run in END, before the packages are purged
my $before;      # the snapshot guard() took
my %run_was;    # which of @RUNTIME were there before

# what the tools the tests run leave in /run: apache2ctl's (and
# a2dismod's configtest, on purge) runtime directory, the unit load
# record of systemd-analyze verify
my @RUNTIME = qw(/run/apache2/socks /run/apache2
                 /run/systemd/systemd-units-load);

# run(@cmd): (exit code, stdout and stderr)
sub run {
    my (@cmd) = @_;
    my %env = ref $cmd[0] eq 'HASH' ? %{ shift @cmd } : ();
    my $pid = open(my $out, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        $ENV{$_} = $env{$_} for keys %env;
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    my $text = do { local $/; <$out> } // '';
    close $out;
    return (($? & 127) ? 128 + ($? & 127) : $? >> 8, $text);
}

sub deb_plan {
    my (%o) = @_;
    if ($> != 0) {
        Test::More::plan(skip_all => 'the package tests build packages and '
            . 'install them into the system nginx and apache2: run make '
            . 'test as root (as CI does)');
    }
    for my $p (qw(apt-get dpkg)) {
        next if grep { -x "$_/$p" } split /:/, $ENV{PATH} . ':/usr/bin';
        Test::More::plan(skip_all => "no $p: not a Debian system");
    }
    my ($rc, $out) = run("$ROOT/scripts/deps", qw(build test deb));
    die "edgetrace: scripts/deps: $out" if $rc;
    # an admin's own install is not ours to replace or purge
    my @there = installed();
    die 'edgetrace: ' . join(', ', @there) . ' installed already: the '
        . "package tests would replace and purge it; remove it first\n"
        if @there && !$o{allow_installed};
}

# how the servers are run, for the test's output: there may be no systemd
sub service_note {
    my $init = do { local (@ARGV, $/) = ('/proc/1/comm'); <> } // '?';
    chomp $init;
    my $policy = -x '/usr/sbin/policy-rc.d'
               ? ((run('/usr/sbin/policy-rc.d', 'nginx', 'reload'))[0]
                  == 101 ? '; /usr/sbin/policy-rc.d forbids invoke-rc.d'
                         : '')
               : '';
    return "PID 1 is $init"
         . ($init eq 'systemd' ? '' : ', not systemd') . $policy
         . ': the machine\'s nginx and apache2 binaries run with its module '
         . 'directories on 127.0.0.1 and a free port, from a test '
         . 'configuration, and are reloaded as their init scripts do '
         . '(nginx: HUP, USR2 then QUIT; apache2: -k graceful)';
}

# the edgetrace packages installed now
sub installed {
    my @on;
    for my $p (PACKAGES) {
        my ($rc, $s) = run('dpkg-query', '-W', '-f=${Status}', $p);
        push @on, $p if !$rc && $s =~ / (installed|config-files|unpacked
                                         |half-\w+|triggers-\w+)$/x;
    }
    return @on;
}

# build_debs(commit => C, out => DIR): { package => .deb } of this tree, or
# of commit C; built once (scripts/deb's stamp)
sub build_debs {
    my (%o) = @_;
    my $out = $o{out} // Edgetrace::Test::build_dir() . '/deb';
    $out = "$ROOT/$out" unless $out =~ m{^/};
    local $ENV{DEBFULLNAME} = MAINTAINER =~ s/ <.*//r;
    local $ENV{DEBEMAIL} = MAINTAINER =~ s/.*<(.*)>/$1/r;
    my ($rc, $text) = run("$ROOT/scripts/deb", $ROOT, $out,
                          defined $o{commit} ? $o{commit} : ());
    die "edgetrace: scripts/deb failed:\n$text" if $rc;
    my %debs;
    for my $f (glob "$out/*.deb") {
        next if $f =~ /-dbgsym_/;
        my ($pkg) = $f =~ m{/([^/_]+)_[^/]+\.deb$};
        $debs{$pkg} = $f;
    }
    die "edgetrace: no packages in $out\n" unless keys %debs == 3;
    return \%debs;
}

sub _md5 {
    my ($f) = @_;
    open my $fh, '<', $f or return "unreadable: $!";
    binmode $fh;
    return Digest::MD5->new->addfile($fh)->hexdigest;
}

sub _running {
    my ($pidfile) = @_;
    open my $fh, '<', $pidfile or return 'not running';
    my $pid = <$fh> // '';
    chomp $pid;
    return $pid =~ /^\d+$/ && kill(0, $pid) ? "running as $pid"
                                             : 'not running';
}

# snapshot(): the state the tests must leave as found, one line a thing
sub snapshot {
    my @lines;
    for my $top (@SNAPSHOT_PATHS) {
        next unless -e $top || -l $top;
        File::Find::find({ no_chdir => 1, wanted => sub {
            my $p = $File::Find::name;
            my @st = lstat $p or return;
            my $mode = sprintf '%o', $st[2];
            my $what = -l $p ? 'link ' . readlink($p)
                     : -d _  ? 'dir'
                     : 'file ' . _md5($p);
            push @lines, "$p $mode $st[4]:$st[5] $what";
        } }, $top);
    }
    my ($rc, $pkgs) = run('dpkg-query', '-W',
                          '-f=${Package}:${Architecture} ${Version} '
                          . '${db:Status-Abbrev}\n');
    push @lines, map { "package $_" } split /\n/, $pkgs;
    push @lines, 'nginx ' . _running('/run/nginx.pid'),
                 'apache2 ' . _running('/run/apache2/apache2.pid'),
                 map { "$_ " . (-e $_ ? 'is' : 'is not') . ' there' }
                     @RUNTIME;
    return [sort @lines];
}

# the differences between two snapshots, as text ('' when none)
sub _diff {
    my ($a, $b) = @_;
    my %in_a = map { $_ => 1 } @$a;
    my %in_b = map { $_ => 1 } @$b;
    return join '', (map { "  before: $_\n" } grep { !$in_b{$_} } @$a),
                    (map { "  after:  $_\n" } grep { !$in_a{$_} } @$b);
}

sub _digest { Digest::MD5::md5_hex(join "\n", @{ $_[0] }) }

# guard(): takes the snapshot; when the test ends, however it ends, stops
# the servers it started, runs the cleanups, purges the packages and
# checks that the snapshot matches again (a failing test when it does not)
sub guard {
    Test::More::diag(service_note());
    %run_was = map { $_ => -e $_ } @RUNTIME;
    $before = snapshot();
    Test::More::diag('the machine before: ' . _digest($before) . ' ('
                     . scalar(@$before) . ' files, packages and servers)');
}

sub on_cleanup { push @cleanup, $_[0] }

END {
    my $rc = $?;
    for my $s (reverse @servers) {
        my $left = eval { $s->stop };
        # a container: what its stop left (nothing, when all went)
        next unless ref $left eq 'ARRAY' && @$left;
        Test::More::diag("the container left: @$left");
        $rc ||= 1;
    }
    for my $c (reverse @cleanup) {
        eval { $c->() };
    }
    if ($before) {
        my @left = installed();
        if (@left) {
            my ($prc, $out) = apt_purge();
            Test::More::diag("apt-get purge @left:\n$out") if $prc;
        }
        # what @RUNTIME lists, and the directories of a2enmod's state in
        # /var/lib/apache2/module: gone again, empty, when they were not
        # there
        for my $r (grep { !$run_was{$_} } @RUNTIME) {
            -d $r ? rmdir $r : unlink $r;
        }
        my %was = map { $_ => 1 } @$before;
        for my $l (reverse @{ snapshot() }) {
            next if $was{$l} || $l !~ m{^(/var/lib/apache2/\S+) \S+ \S+ dir$};
            rmdir $1;
        }
        my $after = snapshot();
        my $diff = _diff($before, $after);
        Test::More::diag('the machine after:  ' . _digest($after)
                         . ($diff ? " - NOT as found:\n$diff"
                                  : ' - as found'));
        $rc ||= 1 if $diff;
    }
    $? = $rc;
}

# apt_install([debs], path => DIR): apt-get install of .deb files; DIR
# comes first on the PATH of the maintainer scripts (apt gives dpkg its
# own, DPkg::Path), to stand in for invoke-rc.d
sub apt_install {
    my ($debs, %o) = @_;
    return run({ DEBIAN_FRONTEND => 'noninteractive' },
               'apt-get', 'install', '-y', '-q', '--no-install-recommends',
               $o{path} ? ('-o', "DPkg::Path=$o{path}:/usr/sbin:/usr/bin:"
                                 . '/sbin:/bin') : (),
               @$debs);
}

sub apt_purge {
    my @pkgs = installed();
    return (0, '') unless @pkgs;
    return run({ DEBIAN_FRONTEND => 'noninteractive' },
               'apt-get', 'purge', '-y', '-q', @pkgs);
}

# so_mapped($pid, $path): how process $pid maps the library $path: its
# inode, with " (deleted)" when the file was replaced since; '' when not
sub so_mapped {
    my ($pid, $path) = @_;
    open my $fh, '<', "/proc/$pid/maps" or return '';
    while (my $l = <$fh>) {
        my (undef, undef, undef, undef, $ino, $file) = split ' ', $l, 6;
        next unless defined $file;
        chomp $file;
        return $ino . ($1 // "") if $file =~ /^\Q$path\E( \(deleted\))?$/;
    }
    return '';
}

sub _tempdir {
    my $d = File::Temp::tempdir('et-deb-XXXXXX', TMPDIR => 1,
                                CLEANUP => !$ENV{EDGETRACE_KEEP});
    chmod 0755, $d;
    return $d;
}

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh or die "$path: $!";
}

# a server's temporary directory, its port (port => P, or a free one) and
# its configuration text with %%PORT%% replaced
sub _server_dir {
    my ($text, %o) = @_;
    my $port = $o{port} // free_port();
    return (_tempdir(), $port, $text =~ s/%%PORT%%/$port/gr);
}

# start_system_nginx($http_text, port => P): /usr/sbin/nginx, daemon and
# master as the init script starts it, with the machine's
# modules-enabled; $http_text goes in the http block, %%PORT%% replaced
sub start_system_nginx {
    my ($dir, $port, $http) = _server_dir(@_);
    write_file("$dir/nginx.conf", <<"EOF");
# the machine's nginx.conf, but on loopback and a test port
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log info;
include /etc/nginx/modules-enabled/*.conf;

events {
    worker_connections 256;
}

http {
    include /etc/nginx/mime.types;
    access_log $dir/access.log;
$http
}
EOF
    my $self = bless { dir => $dir, port => $port,
                       pidfile => "$dir/nginx.pid",
                       conf => "$dir/nginx.conf", masters => {} },
                     'Edgetrace::Deb::Nginx';
    push @servers, $self;
    my ($rc, $out) = run('/usr/sbin/nginx', '-c', $self->{conf});
    die "nginx did not start: $out" . $self->error_log if $rc;
    wait_port($port, 10);
    $self->pid;
    wait_until(sub { $self->workers >= 2 }, 10)
        or die "nginx's workers did not start\n" . $self->error_log;
    return $self;
}

# start_system_apache($text): /usr/sbin/apache2 -k start with the
# machine's mods-enabled; $text is the server configuration
sub start_system_apache {
    my ($dir, $port, $text) = _server_dir(@_);
    write_file("$dir/apache2.conf", <<"EOF");
# the machine's apache2.conf, but on loopback and a test port
DefaultRuntimeDir $dir
PidFile $dir/apache2.pid
Mutex file:$dir default
ErrorLog $dir/error.log
LogLevel info
User nobody
Group nogroup
ServerName 127.0.0.1
Listen 127.0.0.1:$port
IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf
StartServers 1
ServerLimit 2
ThreadsPerChild 8
MaxRequestWorkers 16
DocumentRoot $dir/htdocs
<Directory $dir/htdocs>
    Require all granted
</Directory>
$text
EOF
    mkdir "$dir/htdocs";
    chmod 0755, "$dir/htdocs";
    write_file("$dir/htdocs/index.html", "ok\n");
    chmod 0644, "$dir/htdocs/index.html";
    my $self = bless { dir => $dir, port => $port,
                       pidfile => "$dir/apache2.pid",
                       conf => "$dir/apache2.conf", masters => {} },
                     'Edgetrace::Deb::Apache';
    push @servers, $self;
    my ($rc, $out) = $self->ctl('start');
    die "apache2 did not start: $out" . $self->error_log if $rc;
    wait_port($port, 10);
    wait_until(sub { $self->pid }, 10)
        or die "apache2 wrote no pid file\n" . $self->error_log;
    return $self;
}

# start_traffic($port, $path): requests one after the other, each on a
# new connection, 2 ms apart (a few hundred a second, enough to meet every
# moment of a reload, few enough to leave the machine's cores to it),
# until the returned sub is called; it returns (requests sent, failures
# as text: a refused connection, a status other than 200)
sub start_traffic {
    my ($port, $path) = @_;
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $rd;
        my ($stop, $n, @fail) = (0, 0);
        local $SIG{TERM} = sub { $stop = 1 };
        while (!$stop) {
            my $r = eval { http_get($port, $path, timeout => 5) };
            $n++;
            if (!$r) {
                push @fail, "request $n: " . ($@ =~ s/\n.*//sr);
            } elsif ($r->{status} != 200) {
                push @fail, "request $n: status $r->{status}";
            }
            Time::HiRes::sleep(0.002);
        }
        print $wr join("\n", $n, @fail), "\n";
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    Edgetrace::Test::register_pid($pid, 'traffic');
    return sub {
        kill 'TERM', $pid;
        my @l = <$rd>;
        chomp @l;
        Edgetrace::Test::wait_exit($pid, 10);
        my $n = shift @l // 0;
        return ($n, @l);
    };
}

# ------------------------------------------------ a booted systemd (004)

# The Debian root t/deb/004-systemd.t boots under systemd-nspawn:
# debootstrap's minbase of bookworm, systemd as its init, the servers the
# packages go into, and what the packages depend on (dpkg-deb -f *.deb
# Depends: nginx-abi-* and apache2-api-* come with nginx and apache2),
# and man-db (systemd-analyze verify runs man for the units'
# Documentation=).  The container has no network to install more from.
# EDGETRACE_DEB_MIRROR: another mirror of Debian (a root of its own)
use constant ROOT_SUITE  => 'bookworm';
use constant ROOT_MIRROR => $ENV{EDGETRACE_DEB_MIRROR}
                            || 'http://deb.debian.org/debian';
my @ROOT_PACKAGES = qw(systemd systemd-sysv dbus curl redis-server nginx
                       apache2 libcurl4 libhiredis0.14 libjansson4
                       libmicrohttpd12 libsqlite3-0 libssl3 libcrypt1
                       man-db);
# run in the root once debootstrap is done: nginx has port 80, apache2
# gets 8080
my $ROOT_SETUP = <<'SH';
set -e
sed -i 's/^Listen 80$/Listen 8080/' /etc/apache2/ports.conf
sed -i 's/^<VirtualHost \*:80>$/<VirtualHost *:8080>/' \
    /etc/apache2/sites-available/000-default.conf
grep -q '^Listen 8080$' /etc/apache2/ports.conf
echo edgetrace-test > /etc/hostname
apt-get clean
SH
my $DEBOOTSTRAP_TIMEOUT = 1800;

# the mounts under $dir, deepest first
sub _mounts_under {
    my ($dir) = @_;
    open my $fh, '<', '/proc/self/mountinfo' or return ();
    my @m;
    while (my $l = <$fh>) {
        my $point = (split ' ', $l)[4];
        $point =~ s/\\(\d{3})/chr oct $1/ge;
        push @m, $point if $point eq $dir || index($point, "$dir/") == 0;
    }
    my @deepest_first = reverse @m;
    return @deepest_first;
}

# systemd_root(): the root's directory, build/deb-root/DIGEST, DIGEST of
# what makes it (suite, mirror, packages, setup): built once, by the first
# run on a machine (debootstrap from ROOT_MIRROR: a minute or a few, some
# 250 MB on disk), then reused.  A failed or timed out debootstrap
# dies with its reason and leaves nothing mounted.
sub systemd_root {
    my $base = Edgetrace::Test::build_dir() . '/deb-root';
    $base = "$ROOT/$base" unless $base =~ m{^/};
    my $digest = Digest::MD5::md5_hex(join "\n", ROOT_SUITE, ROOT_MIRROR,
                                      @ROOT_PACKAGES, $ROOT_SETUP);
    my $dir = "$base/$digest";
    return $dir if -f "$dir/.edgetrace-root";
    File::Path::make_path($base);
    open my $lock, '>', "$base/.lock" or die "$base/.lock: $!";
    flock $lock, Fcntl::LOCK_EX() or die "$base/.lock: $!";
    return $dir if -f "$dir/.edgetrace-root";
    my $tmp = "$dir.tmp";
    umount_all($tmp);
    File::Path::remove_tree($tmp);
    my $t0 = Time::HiRes::time();
    Test::More::diag('building the Debian ' . ROOT_SUITE . " root $dir "
                     . 'with debootstrap from ' . ROOT_MIRROR . ' (once)');
    my ($rc, $out) = run('timeout', '-k', '30', $DEBOOTSTRAP_TIMEOUT,
                         'debootstrap', '--variant=minbase',
                         '--include=' . join(',', @ROOT_PACKAGES),
                         ROOT_SUITE, $tmp, ROOT_MIRROR);
    my @left = umount_all($tmp);
    if ($rc) {
        my $log = Edgetrace::Test::_slurp("$tmp/debootstrap/debootstrap.log");
        my @l = split /\n/, "$out\n$log";
        File::Path::remove_tree($tmp) unless @left;
        die "edgetrace: debootstrap of the systemd root failed ("
            . ($rc == 124 ? "timed out after ${DEBOOTSTRAP_TIMEOUT}s"
                          : "exit $rc")
            . ') - it needs ' . ROOT_MIRROR . ":\n"
            . join("\n", @l[($#l > 25 ? $#l - 25 : 0) .. $#l]) . "\n"
            . (@left ? "still mounted: @left\n" : '');
    }
    ($rc, $out) = run('chroot', $tmp, '/bin/sh', '-c', $ROOT_SETUP);
    die "edgetrace: setting up the systemd root failed:\n$out" if $rc;
    write_file("$tmp/.edgetrace-root", ROOT_SUITE . "\n");
    rename $tmp, $dir or die "rename $tmp: $!";
    # the roots of what this one replaces
    for my $stale (grep { $_ ne $dir && -d $_ } glob "$base/*") {
        next if umount_all($stale);
        File::Path::remove_tree($stale);
    }
    Test::More::diag(sprintf 'the root was built in %.0f s',
                     Time::HiRes::time() - $t0);
    return $dir;
}

# unmounts what is mounted under $dir (lazily); returns what is left
sub umount_all {
    my ($dir) = @_;
    run('umount', '-l', $_) for _mounts_under($dir);
    return _mounts_under($dir);
}

# boot_container($root, bind => { host dir => container dir }): the root
# booted by systemd-nspawn -b, with an overlay on it that goes when it
# stops (--volatile=overlay: the cached root is never written), a network
# of its own (--private-network: nginx's port 80 and everything inside
# touch nothing of this machine), and the directories bound read-only.
# Returns when its systemd says it is up (running or degraded); stopped
# when the test ends, however it ends.
sub boot_container {
    my ($root, %o) = @_;
    my $dir = _tempdir();
    my $log = "$dir/nspawn.log";
    my @cmd = ('systemd-nspawn', '-q', '-D', $root, '-M', "edgetrace-test-$$",
               '-b', '--volatile=overlay', '--private-network',
               '--register=no', '--keep-unit', '--console=pipe',
               map { "--bind-ro=$_:$o{bind}{$_}" } sort keys %{ $o{bind} });
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log;
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    my $self = bless { pid => $pid, root => $root, log => $log },
                     'Edgetrace::Deb::Container';
    push @servers, $self;
    # nspawn is in a session of its own: an interrupted test powers it
    # off (what runs in it is killed first: the test's end waits for none)
    $SIG{$_} = sub {
        $_->kill_sessions for grep { ref eq 'Edgetrace::Deb::Container' }
                                   @servers;
        die "edgetrace: SIG$_[0]\n";
    } for qw(INT TERM HUP);
    my $t0 = Time::HiRes::time();
    # its PID 1: nspawn's child that is 1 in its own pid namespace
    Edgetrace::Test::wait_until(sub {
        for my $c (Edgetrace::Test::_children($pid)) {
            my $st = Edgetrace::Test::_slurp("/proc/$c/status");
            next unless $st =~ /^NSpid:\s+\d+\s+1$/m;
            $self->{pid1} = $c;
            $self->{pidns} = readlink "/proc/$c/ns/pid";
            return 1;
        }
        return 0;
    }, 30) or die "systemd-nspawn started no container:\n" . $self->log;
    my $state = '';
    Edgetrace::Test::wait_until(sub {
        (undef, $state) = $self->sh('systemctl is-system-running', 10);
        $state =~ /^(running|degraded)$/m;
    }, 120, 0.5) or die "the container's systemd did not come up ($state):\n"
                        . $self->log;
    $self->{boot} = Time::HiRes::time() - $t0;
    return $self;
}


package Edgetrace::Deb::Container;

sub pid  { $_[0]{pid} }
sub pid1 { $_[0]{pid1} }
sub boot_time { $_[0]{boot} }
sub log  { Edgetrace::Test::_slurp($_[0]{log}) }

# sh($script, $timeout): (exit code, output) of sh -c $script in the
# container, entered with nsenter; killed after $timeout seconds (60)
sub sh {
    my ($self, $script, $timeout) = @_;
    return (255, "the container is not running\n") unless $self->{pid1};
    return Edgetrace::Deb::run('timeout', '-k', '5', $timeout // 60,
        'nsenter', '-t', $self->{pid1}, '-m', '-u', '-i', '-n', '-p', '--',
        '/usr/bin/env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
        'LANG=C.UTF-8', 'DEBIAN_FRONTEND=noninteractive',
        '/bin/sh', '-c', $script);
}

# out($script): its output, trimmed (what a command prints)
sub out {
    my ($self, $script, $timeout) = @_;
    my (undef, $out) = $self->sh($script, $timeout);
    $out =~ s/\s+$//;
    return $out;
}

# traffic(@urls): curl to each URL in turn, in the container, until the
# returned sub is called; it returns (requests sent, failures as text)
sub traffic {
    my ($self, @urls) = @_;
    my $script = <<"SH";
rm -f /tmp/traffic.*
: > /tmp/traffic.started
n=0
while [ ! -e /tmp/traffic.stop ]; do
    for u in @urls; do
        n=\$((n + 1))
        c=\$(curl -s -o /dev/null -m 5 -w '%{http_code}' \$u)
        [ "\$c" = 200 ] && continue
        echo "\$u: \$c at \$(date +%T.%N)" >> /tmp/traffic.fail
    done
done
echo \$n > /tmp/traffic.done
SH
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
        $self->sh($script, 900);
        POSIX::_exit(0);
    }
    push @{ $self->{bg} }, $pid;
    Edgetrace::Test::wait_until(sub {
        $self->out('ls /tmp/traffic.started 2>/dev/null') ne '' }, 10)
        or die "the requests in the container did not start\n";
    return sub {
        $self->sh('touch /tmp/traffic.stop');
        Edgetrace::Test::wait_until(sub {
            $self->out('cat /tmp/traffic.done 2>/dev/null') =~ /^\d+$/ }, 20);
        kill 'TERM', $pid;
        Edgetrace::Test::wait_exit($pid, 10);
        my $n = $self->out('cat /tmp/traffic.done 2>/dev/null');
        return (0, 'the requests in the container did not end in 20 s')
            unless $n =~ /^\d+$/;
        my @fail = split /\n/, $self->out('cat /tmp/traffic.fail 2>/dev/null');
        return ($n, @fail);
    };
}

# the processes left in the container's pid namespace
sub left {
    my ($self) = @_;
    return () unless $self->{pidns};
    opendir my $d, '/proc' or return ();
    return grep { /^\d+$/
                  && (readlink("/proc/$_/ns/pid") // '') eq $self->{pidns} }
           readdir $d;
}

# kill_sessions(): kills what this test runs in the container (nsenter,
# and the timeout over it).  Before a power off: systemd's shutdown stops
# every process of the container (SIGSTOP) before it kills them, nsenter
# then stops too, outside, and never reaps its child: a zombie in the
# container that its PID 1 waits for.
sub kill_sessions {
    my ($self) = @_;
    return unless $self->{pid1};
    my $tag = "nsenter -t $self->{pid1} ";
    my @todo = ($$);
    my @kill;
    while (defined(my $p = shift @todo)) {
        for my $c (Edgetrace::Test::_children($p)) {
            next if $c == $self->{pid};
            push @todo, $c;
            my $comm = Edgetrace::Test::_slurp("/proc/$c/comm");
            push @kill, $c if $comm =~ /^(timeout|nsenter)$/
                && index(Edgetrace::Test::_cmdline($c), $tag) >= 0;
        }
    }
    kill 'KILL', @kill if @kill;
    Edgetrace::Test::wait_exit($_, 10) for @{ $self->{bg} // [] };
    $self->{bg} = [];
}

sub _nspawn_gone {
    my ($self, $timeout) = @_;
    return Edgetrace::Test::wait_until(sub {
        waitpid($self->{pid}, POSIX::WNOHANG()) != 0 }, $timeout);
}

# powers it off (systemctl poweroff; after 60 s, SIGKILL to its PID 1 and
# to nspawn) and waits for nspawn to exit; returns what is left:
# processes of the container or nspawn, mounts under its root (none when
# all went)
sub stop {
    my ($self) = @_;
    return $self->{stopped} if $self->{stopped};
    $self->kill_sessions;
    if (waitpid($self->{pid}, POSIX::WNOHANG()) == 0) {
        $self->sh('systemctl poweroff --no-block', 10);
        unless ($self->_nspawn_gone(60)) {
            Test::More::diag('the container did not power off in 60 s: '
                             . 'killed');
            kill 'KILL', $self->{pid1} if $self->{pid1};
            kill 'KILL', $self->{pid};
            $self->_nspawn_gone(30);
        }
    }
    Edgetrace::Test::wait_until(sub { !$self->left }, 15);
    my @left = (map({ "process $_ of the container" } $self->left),
                (kill(0, $self->{pid}) ? "systemd-nspawn $self->{pid}" : ()),
                map({ "mount $_" }
                    Edgetrace::Deb::_mounts_under($self->{root})));
    delete $self->{pid1};
    $self->{stopped} = \@left;
    return \@left;
}

package Edgetrace::Deb::Server;

sub port { $_[0]{port} }
sub dir  { $_[0]{dir} }
sub pidfile { $_[0]{pidfile} }
sub conf { $_[0]{conf} }

# the master's pid, from its pid file (remembered, to be stopped in END)
sub pid {
    my ($self) = @_;
    open my $fh, '<', $self->{pidfile} or return undef;
    my $pid = <$fh> // '';
    chomp $pid;
    return undef unless $pid =~ /^\d+$/;
    $self->{masters}{$pid} = 1;
    return $pid;
}

sub error_log { Edgetrace::Test::_slurp("$_[0]{dir}/error.log") }

sub children { Edgetrace::Test::_children($_[1] // $_[0]->pid) }

# stops every master this server had (an upgrade leaves a new one) and
# waits until they are gone
sub stop {
    my ($self) = @_;
    $self->pid;
    my @m = grep { kill 0, $_ } keys %{ $self->{masters} };
    my @all = (@m, map { $self->children($_) } @m);
    kill 'TERM', @m;
    Edgetrace::Test::wait_until(sub { !grep { kill 0, $_ } @all }, 10);
    kill 'KILL', grep { kill 0, $_ } @all;
}


package Edgetrace::Deb::Nginx;

our @ISA = ('Edgetrace::Deb::Server');

sub workers {
    my ($self, $master) = @_;
    return grep { Edgetrace::Test::_cmdline($_) =~ /^nginx: worker/ }
           $self->children($master);
}

sub signal {
    my ($self, $sig) = @_;
    my $pid = $self->pid or die "nginx: no pid in $self->{pidfile}\n";
    kill $sig, $pid or die "nginx: kill $sig $pid: $!\n";
    return $pid;
}

# /etc/init.d/nginx reload: HUP; waits for new workers, the old ones gone
sub reload {
    my ($self) = @_;
    my %old = map { $_ => 1 } $self->workers;
    $self->signal('HUP');
    Edgetrace::Test::wait_until(sub {
        my @w = $self->workers;
        @w >= 2 && !grep { $old{$_} } @w;
    }, 15);
}


package Edgetrace::Deb::Apache;

our @ISA = ('Edgetrace::Deb::Server');

# apache2ctl's -k actions, on this configuration
sub ctl {
    my ($self, $action) = @_;
    return Edgetrace::Deb::run('/usr/sbin/apache2', '-d', '/etc/apache2',
                               '-f', $self->{conf}, '-k', $action);
}

1;
