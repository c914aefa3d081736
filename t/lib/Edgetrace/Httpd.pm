package Edgetrace::Httpd;

# The harness's httpd part: starts a real apache2 with build/mod_edgetrace.so
# loaded, under the MPM asked for, in a temporary ServerRoot on loopback,
# and stops exactly the processes it started.
#
#   my $h = start_httpd(mpm => 'event', redis => $redis, conf => <<'EOF');
#       EdgeTrace On
#       <Location /api> ProxyPass http://127.0.0.1:%%BACKEND%%/ </Location>
#   EOF
#   # ->port ->pid ->prefix ->error_log ->children ->crashes ->graceful
#   # ->stop
#   my ($rc, $out) = httpd_t(conf => '...');     # `apache2 -t`
#   for my $mpm (mpms()) { ... }                 # event, worker, prefork
#
# mpm_conf => text replaces the MPM's process and thread settings.
#
# The same placeholders as nginx configuration text (Edgetrace::Test):
# %%PORT%%, %%PORT2%%, %%REDIS%%, %%BACKEND%%, %%DEAD%%, %%PREFIX%%;
# files => { name => text } go to %%PREFIX%%/htdocs, the DocumentRoot.
# main => text comes before the modules are loaded (LoadModule order tests).
# lean => 1: LogLevel warn and no access log (make bench: the baseline is
# httpd's work, not the harness's logging).

use strict;
use warnings;

use Exporter 'import';
use Cwd ();
use POSIX ();
use Time::HiRes ();

use Edgetrace::Test ();

our @EXPORT_OK = qw(start_httpd start_bench_httpd httpd_t mpms
                    httpd_module_path);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

my $MODULES = '/usr/lib/apache2/modules';

# what the tests use besides the MPM, loaded after mod_edgetrace
my @MODULES = qw(authz_core dir alias rewrite headers env setenvif include
                 slotmem_shm proxy proxy_http proxy_balancer
                 lbmethod_byrequests);

sub mpms { $ENV{EDGETRACE_MPMS} ? split(/,/, $ENV{EDGETRACE_MPMS})
                                : qw(event worker prefork) }

sub httpd_module_path {
    my $p = Cwd::abs_path(Edgetrace::Test::build_dir()) . '/mod_edgetrace.so';
    die "$p is missing: run make\n" unless -f $p;
    return $p;
}

sub _bin {
    for my $b ('/usr/sbin/apache2', '/usr/sbin/httpd') {
        return $b if -x $b;
    }
    die "apache2 is missing: apt-get install apache2\n";
}

sub _mpm_conf {
    my ($mpm, $custom) = @_;
    return $custom if defined $custom;
    return <<'EOF' if $mpm eq 'prefork';
StartServers 2
MinSpareServers 1
MaxSpareServers 4
ServerLimit 8
MaxRequestWorkers 8
MaxConnectionsPerChild 0
EOF
    return <<'EOF';
StartServers 1
ServerLimit 2
ThreadsPerChild 8
MinSpareThreads 4
MaxSpareThreads 16
MaxRequestWorkers 16
MaxConnectionsPerChild 0
EOF
}

sub _conf {
    my (%o) = @_;
    my $prefix = $o{prefix};
    my $mpm = $o{mpm} || 'event';
    my $module = exists $o{module} && !$o{module} ? ''
               : 'LoadModule edgetrace_module ' . httpd_module_path();
    my $user = $> == 0 ? "User nobody\nGroup nogroup" : '';
    my $mpm_conf = _mpm_conf($mpm, $o{mpm_conf});
    my $modules = join "\n", map { "LoadModule ${_}_module $MODULES/mod_$_.so" }
                  "mpm_$mpm", @MODULES;
    my $main = $o{main} // '';
    my $conf = $o{conf} // '';
    my $level = $o{lean} ? 'warn' : 'info';
    my $access = $o{lean} ? '' : <<"EOF";
LogFormat "%h \\"%r\\" %>s trace=%{EDGETRACE_TRACE_ID}e span=%{EDGETRACE_SPAN_ID}e tp=%{EDGETRACE_TRACEPARENT}e" et
CustomLog "$prefix/access.log" et
EOF

    # edgetrace first: it must work whatever the LoadModule order
    my $text = <<"EOF";
ServerRoot "$prefix"
ServerName 127.0.0.1
Listen 127.0.0.1:%%PORT%%
PidFile "$prefix/httpd.pid"
DefaultRuntimeDir "$prefix"
ErrorLog "$prefix/error.log"
LogLevel $level
$user
$main
$module
$modules

$mpm_conf
Timeout 10
KeepAlive On
DocumentRoot "$prefix/htdocs"
<Directory "$prefix/htdocs">
    Require all granted
</Directory>
$access
$conf
EOF
    return Edgetrace::Test::_subst($text, $o{ports});
}

sub _prepare {
    my (%o) = @_;
    my $ports = Edgetrace::Test::_ports(%o);
    my $prefix = Edgetrace::Test::_tempdir('et-httpd-XXXXXX');
    mkdir "$prefix/htdocs";
    chmod 0755, "$prefix/htdocs";
    for my $f (keys %{ $o{files} || {} }) {
        my $path = "$prefix/htdocs/$f";
        (my $dir = $path) =~ s{/[^/]+$}{};
        system('mkdir', '-p', $dir) == 0 or die "mkdir $dir";
        open my $fh, '>', $path or die "$path: $!";
        print $fh $o{files}{$f};
        close $fh;
        chmod 0644, $path;
    }
    my $conf = _conf(%o, prefix => $prefix,
                     ports => { %$ports, PREFIX => $prefix });
    open my $fh, '>', "$prefix/httpd.conf" or die "$prefix/httpd.conf: $!";
    print $fh $conf;
    close $fh;
    return ($prefix, $ports, $conf);
}

# start_httpd(mpm => event|worker|prefork, conf => text, main => text,
#             redis => ..., backend => ..., ports => {...}, files => {...})
sub start_httpd {
    my (%o) = @_;
    my $bin = _bin();
    my ($prefix, $ports, $conf) = _prepare(%o);

    # wrap => ['taskset', '-c', '0']: a command the server runs under
    my $pid = Edgetrace::Test::_spawn('apache2',
                  cmd => [@{ $o{wrap} || [] }, $bin, '-d', $prefix,
                          '-f', "$prefix/httpd.conf", '-DFOREGROUND'],
                  stdout => "$prefix/stderr.log",
                  env => Edgetrace::Test::_sanitizer_env($prefix));

    my $self = bless { pid => $pid, prefix => $prefix, ports => $ports,
                       port => $ports->{PORT}, conf => $conf,
                       mpm => $o{mpm} || 'event' }, __PACKAGE__ . '::Server';

    my $timeout = $o{timeout} || 10;
    eval { Edgetrace::Test::wait_port($ports->{PORT}, $timeout, $pid); 1 }
        or do {
        my $err = $@;
        die "apache2 did not start: $err" . $self->error_log
            . Edgetrace::Test::_slurp("$prefix/stderr.log") . "\n";
    };

    Edgetrace::Test::wait_until(sub { my @c = $self->children; @c >= 1 },
                                $timeout)
        or die "apache2 children did not start\n" . $self->error_log;

    return $self;
}

# start_bench_httpd(conf => text, upstream => port, wrap => [...]): the
# configuration make bench and make bench-instructions measure.  Event MPM,
# one child of 64 threads; an untraced main server (%%PORT%%) and a traced
# virtual host (%%PORT2%%, "EdgeTrace On") with the same locations: /return
# a small static file, httpd's nearest to nginx's return; /proxy mod_proxy
# to "upstream" with keepalive (when given); /metrics the status handler.  Lean: see
# lean above.  "conf" holds the EdgeTrace* directives of the main server.
sub start_bench_httpd {
    my (%o) = @_;
    my $proxy = $o{upstream}
        ? "ProxyPass /proxy http://127.0.0.1:$o{upstream}/ keepalive=On" : '';
    return start_httpd(mpm => 'event', files => { return => "ok\n" },
                       lean => 1, wrap => $o{wrap} || [],
                       timeout => $o{timeout},
                       mpm_conf => <<'EOF', conf => <<"EOF");
StartServers 1
ServerLimit 1
ThreadsPerChild 64
ThreadLimit 64
MinSpareThreads 1
MaxSpareThreads 128
MaxRequestWorkers 64
MaxConnectionsPerChild 0
MaxKeepAliveRequests 0
EOF
$o{conf}
# mmap and munmap of the file per request, under 64 threads, cost TLB
# shootdowns: half of a static request's CPU on this VM (both sides alike)
EnableMMAP Off
$proxy
<Location /metrics>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>
Listen 127.0.0.1:%%PORT2%%
<VirtualHost 127.0.0.1:%%PORT2%%>
    EdgeTrace On
</VirtualHost>
EOF
}

# httpd_t(conf => ..., main => ...) or httpd_t($conf): `apache2 -t`,
# returns (exit code, output)
sub httpd_t {
    my (%o) = @_ == 1 ? (conf => $_[0]) : @_;
    my $bin = _bin();
    my ($prefix) = _prepare(%o);

    my $pid = open(my $out, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        my $env = Edgetrace::Test::_sanitizer_env($prefix);
        $ENV{$_} = $env->{$_} for keys %$env;
        exec $bin, '-t', '-d', $prefix, '-f', "$prefix/httpd.conf"
            or POSIX::_exit(127);
    }
    my $text = do { local $/; <$out> } // '';
    close $out;
    my $rc = ($? & 127) ? 128 + ($? & 127) : $? >> 8;
    return ($rc, $text);
}


package Edgetrace::Httpd::Server;

use POSIX ();
use Time::HiRes ();

our @ISA = ('Edgetrace::Test::Server');

sub mpm { $_[0]{mpm} }

sub access_log { Edgetrace::Test::_slurp("$_[0]{prefix}/access.log") }

sub children { my @c = Edgetrace::Test::_children($_[0]{pid}); return @c }

# `apachectl -k graceful`: SIGUSR1 to the parent; waits until the
# generation changed: every child that ran before is gone and a new one
# runs (up to the timeout).  Returns true when that happened.
sub graceful {
    my ($self, %o) = @_;
    my %old = map { $_ => 1 } $self->children;
    my $log = length $self->error_log;
    kill 'USR1', $self->{pid} or die "graceful: $!";
    my $t = $o{timeout} || 15;
    my $ok = Edgetrace::Test::wait_until(sub {
        substr($self->error_log, $log) =~ /resuming normal operations/
    }, $t);
    $ok &&= Edgetrace::Test::wait_until(sub {
        my @now = $self->children;
        @now && !grep { $old{$_} } @now;
    }, $t);
    return $ok;
}

# `apachectl -k graceful-stop`: SIGWINCH; returns the parent's wait status
sub graceful_stop {
    my ($self, %o) = @_;
    kill 'WINCH', $self->{pid};
    my $status = Edgetrace::Test::wait_exit($self->{pid}, $o{timeout} || 20);
    $self->{stopped} = 1 if defined $status;
    return $status;
}

sub stop {
    my ($self) = @_;
    return if $self->{stopped};
    my @children = $self->children;
    Edgetrace::Test::stop_pid($self->{pid}, 'TERM', 15);
    for my $c (@children) {
        kill 'KILL', $c if kill 0, $c;
    }
    $self->{stopped} = 1;
}

sub DESTROY { }

1;
