package Edgetrace::Test;

# The end-to-end harness: starts real redis-server, nginx and backends on
# loopback, each on its own port and temporary prefix, and stops exactly
# the processes it started (by PID).
#
# Core Perl plus Debian's libredis-perl (Redis.pm) only.  Anything missing
# (nginx, redis-server, the built module) makes the test die: a test that
# needs a missing server fails, it never skips.
#
#   my $redis = start_redis();                  # ->port ->pid ->stop
#   my $b     = start_backend();                # ->port ->requests ->clear
#   my $ngx   = start_nginx(redis => $redis, workers => 1, conf => <<'EOF');
#       edgetrace on;
#       server { listen 127.0.0.1:%%PORT%%;
#                location / { proxy_pass http://127.0.0.1:%%BACKEND%%; } }
#   EOF
#   # ->port ->pid ->prefix ->ports ->error_log ->worker_pids ->crashes
#   # ->reload ->quit ->stop
#   my ($rc, $out) = nginx_t(conf => '...');    # `nginx -t`
#   my $r = http_get($ngx->port, '/x', headers => [[n, v], ...]);
#   my @e = stream_entries($redis->port, $key, count => 2, timeout => 3);
#   my @s = trace_spans($redis->port, $trace_id, count => 2);
#   my @all = barrier($redis->port, $ngx->port, '/barrier');
#   case 'what it shows' => sub { ... };       # EDGETRACE_CASE picks cases
#   my $m = metrics($ngx->port, '/metrics');
#
# Placeholders in nginx configuration text: %%PORT%%, %%PORT2%% (free
# ports for nginx to listen on), %%REDIS%%, %%BACKEND%% (the last backend
# started unless given), %%DEAD%% (nothing listens there), %%PREFIX%% (the
# nginx prefix: files => { name => text } are written to %%PREFIX%%/html),
# and any name passed in ports => { NAME => port }.
#
# EDGETRACE_BUILD picks the build directory (default: build).  With
# EDGETRACE_BUILD=build/san (make SANITIZE=1) and
# EDGETRACE_NGINX_PRELOAD=/usr/lib/x86_64-linux-gnu/libasan.so.8, nginx runs
# the sanitized module and sanitizer reports count as crashes.
# EDGETRACE_KEEP=1 keeps the temporary prefixes for a post-mortem.

use strict;
use warnings;

use Exporter 'import';
use Cwd ();
use Fcntl qw(:flock SEEK_END);
use File::Temp ();
use IO::Handle;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes ();

our @EXPORT_OK = qw(build_dir module_path free_port start_redis wait_port
                    stop_pid start_nginx nginx_t start_backend
                    backend_requests http_get redis stream_entries
                    stream_len metrics wait_until trace_spans new_trace_id
                    new_span_id parse_traceparent keep_running
                    wait_exit traffic traced_request stall_redis
                    backend_log barrier case response_trace
                    new_traceparent crc16 key_slot shard_key
                    trace_shard dead_port);

our %EXPORT_TAGS = (all => \@EXPORT_OK);

my @started;    # [pid, name] of every process this test started
my $last_backend;

sub build_dir { $ENV{EDGETRACE_BUILD} || 'build' }

sub module_path {
    my $so = Cwd::abs_path(build_dir()) . '/ngx_http_edgetrace_module.so';
    die "edgetrace: $so is missing: run make\n" unless -f $so;
    return $so;
}

sub _need {
    my ($prog) = @_;
    for my $d (split /:/, ($ENV{PATH} || '') . ':/usr/sbin:/sbin') {
        return "$d/$prog" if -x "$d/$prog";
    }
    die "edgetrace: $prog is missing (scripts/deps test installs it)\n";
}

# a port nobody listens on now, picked by the kernel, and never one this
# process was given before: the kernel may hand out a port it just gave
# back, and a %%DEAD%% port equal to the server's own would make a proxy
# loop into itself
my %given_ports;

sub free_port {
    my ($port) = _given_port('free_port', Listen => 1, ReuseAddr => 1);
    return $port;
}

# a port nothing listens on, and nothing can until this process ends: it
# stays bound here, never listening, so a connect is refused.  A port of
# free_port() is only free when given: a server another job starts
# meanwhile (a Redis of a concurrent test run, on its own free_port())
# may listen there, and take the spans a test means to be lost.  Without
# SO_REUSEADDR, no other socket can bind the port, with it or not.
my @dead_ports;

sub dead_port {
    my ($port, $s) = _given_port('dead_port');
    push @dead_ports, $s;
    return $port;
}

# (port, the socket bound to it with %opt) for a port never given before
sub _given_port {
    my ($what, %opt) = @_;
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => 0, Proto => 'tcp', %opt)
            or die "$what: $!";
        my $port = $s->sockport;
        return ($port, $s) unless $given_ports{$port}++;
    }
    die "$what: the kernel keeps giving ports already given\n";
}

# whether 127.0.0.1:port can be bound now
sub _port_free {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => $port, Proto => 'tcp',
                                  Listen => 1, ReuseAddr => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

sub wait_port {
    my ($port, $timeout, $pid) = @_;
    $timeout ||= 10;
    my $until = Time::HiRes::time() + $timeout;
    while (Time::HiRes::time() < $until) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Proto => 'tcp');
        return 1 if $s;
        if ($pid && waitpid($pid, POSIX::WNOHANG()) == $pid) {
            my $how = ($? & 127) ? 'was killed by signal ' . ($? & 127)
                                 : 'exited with code ' . ($? >> 8);
            @started = grep { $_->[0] != $pid } @started;
            die "process $pid $how before listening on 127.0.0.1:$port\n";
        }
        Time::HiRes::sleep(0.02);
    }
    die "nothing listens on 127.0.0.1:$port after ${timeout}s\n";
}

# wait_until(sub { ... }, timeout): polls the sub until it returns true
sub wait_until {
    my ($cb, $timeout, $step) = @_;
    my $until = Time::HiRes::time() + ($timeout || 5);
    while (1) {
        my $r = $cb->();
        return $r if $r;
        return $r if Time::HiRes::time() >= $until;
        Time::HiRes::sleep($step || 0.05);
    }
}

sub _spawn {
    my ($name, %o) = @_;
    my @cmd = @{ $o{cmd} };
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setsid();
        # never the test's own stdout: prove waits for that pipe to close
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $o{stdout} // '/dev/null';
        open STDERR, '>&', \*STDOUT;
        $ENV{$_} = $o{env}{$_} for keys %{ $o{env} || {} };
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    push @started, [$pid, $name];
    return $pid;
}

# start_redis(port => N, args => [...], cluster => 1): returns
# { port, pid, dir }.  With cluster, the node runs with
# --cluster-enabled yes (no slot assigned: CLUSTER KEYSLOT answers) on a
# port below 55536, since its cluster bus listens on the port + 10000.
sub start_redis {
    my (%o) = @_;
    my $bin = _need('redis-server');
    my $port = $o{port};
    my $dir = $o{dir} || _tempdir('et-redis-XXXXXX');
    if ($o{cluster}) {
        for (1 .. 100) {
            my $p = free_port();
            next if $p >= 55536 || !_port_free($p + 10000);
            $port = $p;
            last;
        }
        die "start_redis: no free port below 55536 with its bus port free\n"
            unless $port;
        $o{args} = ['--cluster-enabled', 'yes',
                    '--cluster-config-file', "$dir/nodes.conf",
                    @{ $o{args} || [] }];
    }
    $port ||= free_port();
    my $pid = _spawn('redis-server', cmd => [
                     $bin, '--port', $port,
                     '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
                     '--dir', $dir, '--daemonize', 'no',
                     '--logfile', "$dir/redis.log",
                     @{ $o{args} || [] }]);
    wait_port($port, 10, $pid);
    return bless { port => $port, pid => $pid, dir => $dir },
                 'Edgetrace::Test::Redis';
}

# the processes started so far outlive this script (the demo's --keep):
# returns them as [pid, name] and forgets them.  Temporary directories are
# kept only when EDGETRACE_KEEP was set before they were made.
sub keep_running {
    my @kept = map { [$_->[0], $_->[1]] } @started;
    @started = ();
    return @kept;
}

sub _forget {
    my ($pid) = @_;
    @started = grep { $_->[0] != $pid } @started;
}

sub stop_pid {
    my ($pid, $sig, $timeout) = @_;
    return unless $pid;
    kill($sig || 'TERM', $pid);
    my $until = Time::HiRes::time() + ($timeout || 5);
    while (Time::HiRes::time() < $until) {
        my $r = waitpid($pid, POSIX::WNOHANG());
        if ($r == $pid || $r == -1) {
            @started = grep { $_->[0] != $pid } @started;
            return 1;
        }
        Time::HiRes::sleep(0.01);
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    @started = grep { $_->[0] != $pid } @started;
    return 0;
}


# wait_exit($pid, $timeout): waits for a process this test started to
# exit; returns its wait status, or undef when it still runs
sub wait_exit {
    my ($pid, $timeout) = @_;
    my $until = Time::HiRes::time() + ($timeout || 15);
    while (Time::HiRes::time() < $until) {
        my $r = waitpid($pid, POSIX::WNOHANG());
        if ($r == $pid || $r == -1) {
            my $status = $?;
            _forget($pid);
            return $status;
        }
        Time::HiRes::sleep(0.02);
    }
    return undef;
}

# stall_redis($port, $secs): DEBUG SLEEP in a child process (Redis must run
# with --enable-debug-command local); returns a function that waits for it
# and gives how long the stall lasted, in seconds
sub stall_redis {
    my ($port, $secs) = @_;
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $child = fork // die "fork: $!";
    if ($child == 0) {
        close $rd;
        my $t0 = Time::HiRes::time();
        eval { redis($port)->debug('sleep', $secs) };
        print $wr Time::HiRes::time() - $t0, "\n";
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    return sub {
        my $took = <$rd>;
        waitpid($child, 0);
        return $took // 0;
    };
}

# traffic($port, $secs, [[path, status], ...]): requests in turn for $secs
# seconds; returns (count, answers with another status, slowest seconds)
sub traffic {
    my ($port, $secs, $paths) = @_;
    my ($n, $wrong, $slowest) = (0, 0, 0);
    my $until = Time::HiRes::time() + $secs;
    while (Time::HiRes::time() < $until) {
        my ($path, $want) = @{ $paths->[$n % @$paths] };
        my $t0 = Time::HiRes::time();
        my $r = http_get($port, $path);
        my $dt = Time::HiRes::time() - $t0;
        $slowest = $dt if $dt > $slowest;
        $wrong++ if $r->{status} != $want;
        $n++;
    }
    return ($n, $wrong, $slowest);
}

# ---------------------------------------------------------------------------
# nginx

sub _tempdir {
    my ($tmpl) = @_;
    my $dir = File::Temp::tempdir($tmpl, TMPDIR => 1,
                                  CLEANUP => !$ENV{EDGETRACE_KEEP});
    chmod 0755, $dir;    # workers run as nobody
    return $dir;
}

sub _subst {
    my ($text, $ports) = @_;
    $text =~ s/%%([A-Z][A-Z0-9_]*)%%/
        defined $ports->{$1} ? $ports->{$1}
                             : die "placeholder %%$1%% has no value\n"/ge;
    return $text;
}

sub _nginx_conf {
    my (%o) = @_;
    my $prefix = $o{prefix};
    # file => text: a whole nginx.conf, taken as it is
    return _subst($o{file}, $o{ports}) if defined $o{file};
    # module => 0: plain nginx, for the harness's own test
    my $load = (exists $o{module} && !$o{module})
               ? '' : 'load_module ' . module_path() . ';';
    my $workers = $o{workers} || 1;
    my $main = $o{main} // '';
    my $http = $o{conf} // '';

    my $text = <<"EOF";
$load

daemon off;
master_process on;
worker_processes $workers;
error_log $prefix/error.log info;
pid $prefix/nginx.pid;
$main

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path $prefix/client_body_temp;
    proxy_temp_path $prefix/proxy_temp;
    fastcgi_temp_path $prefix/fastcgi_temp;
    uwsgi_temp_path $prefix/uwsgi_temp;
    scgi_temp_path $prefix/scgi_temp;

$http
}
EOF

    return _subst($text, $o{ports});
}

sub _ports {
    my (%o) = @_;
    my %p = %{ $o{ports} || {} };
    $p{PORT}    //= $o{port} // free_port();
    $p{REDIS}   //= ref $o{redis} ? $o{redis}{port}
                                  : ($o{redis} // free_port());
    $p{BACKEND} //= ref $o{backend} ? $o{backend}{port}
                                    : ($o{backend}
                                       // ($last_backend ? $last_backend->{port}
                                                         : free_port()));
    $p{DEAD}    //= free_port();
    $p{PORT2}   //= free_port();
    return \%p;
}

# start_nginx(conf => $http_block, main => $main_text, workers => N,
#             redis => $redis|port, backend => $backend|port,
#             ports => { NAME => port, ... }, port => N)
#
# Placeholders in conf/main: %%PORT%% (nginx's own port), %%PORT2%% (a second
# free port), %%REDIS%%, %%BACKEND%%, %%DEAD%% (nothing listens there), and
# any key of ports.
sub start_nginx {
    my (%o) = @_;
    my $bin = _need('nginx');
    my $ports = _ports(%o);
    my $prefix = _tempdir('et-nginx-XXXXXX');
    mkdir "$prefix/html";
    chmod 0755, "$prefix/html";
    for my $f (keys %{ $o{files} || {} }) {
        open my $fh, '>', "$prefix/html/$f" or die "$prefix/html/$f: $!";
        print $fh $o{files}{$f};
        close $fh;
        chmod 0644, "$prefix/html/$f";
    }
    my $conf = _nginx_conf(%o, prefix => $prefix,
                           ports => { %$ports, PREFIX => $prefix });

    open my $fh, '>', "$prefix/nginx.conf" or die "$prefix/nginx.conf: $!";
    print $fh $conf;
    close $fh;

    my $pid = _spawn('nginx', cmd => [$bin, '-p', "$prefix/", '-e',
                     "$prefix/error.log", '-c', "$prefix/nginx.conf"],
                     stdout => "$prefix/stderr.log",
                     env => _sanitizer_env($prefix));

    my $self = bless { pid => $pid, prefix => $prefix, ports => $ports,
                       port => $ports->{PORT}, conf => $conf,
                       workers => $o{workers} || 1, bin => $bin },
                     'Edgetrace::Test::Nginx';
    $started[-1][2] = $self;

    eval { wait_port($ports->{PORT}, 10, $pid); 1 } or do {
        my $err = $@;
        die "nginx did not start: $err" . $self->error_log
            . _slurp("$prefix/stderr.log") . "\n";
    };

    # the master listens before its workers run: wait for them too
    wait_until(sub { $self->worker_pids >= $self->{workers} }, 10)
        or die "nginx workers did not start\n" . $self->error_log;

    return $self;
}

# nginx_t(conf => ..., main => ...) or nginx_t($conf): runs `nginx -t` on
# the configuration, returns (exit code, output); file => text instead
# checks a whole nginx.conf (placeholders still substituted)
sub nginx_t {
    my (%o) = @_ == 1 ? (conf => $_[0]) : @_;
    my $bin = _need('nginx');
    my $ports = _ports(%o);
    my $prefix = _tempdir('et-nginx-t-XXXXXX');
    my $conf = _nginx_conf(%o, prefix => $prefix,
                           ports => { %$ports, PREFIX => $prefix });

    open my $fh, '>', "$prefix/nginx.conf" or die "$prefix/nginx.conf: $!";
    print $fh $conf;
    close $fh;

    my $pid = open(my $out, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        my $env = _sanitizer_env($prefix);
        $ENV{$_} = $env->{$_} for keys %$env;
        exec $bin, '-t', '-p', "$prefix/", '-e', "$prefix/error.log",
             '-c', "$prefix/nginx.conf"
            or POSIX::_exit(127);
    }
    my $text = do { local $/; <$out> } // '';
    close $out;
    # a crash is a failure too: 128 + the signal, as a shell says it
    my $rc = ($? & 127) ? 128 + ($? & 127) : $? >> 8;
    return ($rc, $text);
}

# EDGETRACE_NGINX_PRELOAD=/usr/lib/x86_64-linux-gnu/libasan.so.8 with
# EDGETRACE_BUILD=build/san (make SANITIZE=1): nginx runs the sanitized
# module, reports go to <prefix>/asan.* and count as crashes
sub _sanitizer_env {
    my ($prefix) = @_;
    my $pre = $ENV{EDGETRACE_NGINX_PRELOAD} or return {};
    return { LD_PRELOAD => $pre,
             ASAN_OPTIONS => "detect_leaks=0:log_path=$prefix/asan",
             UBSAN_OPTIONS => "print_stacktrace=1:log_path=$prefix/asan" };
}

sub _slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    my $t = <$fh>;
    return $t // '';
}

# every process whose parent is $ppid
sub _children {
    my ($ppid) = @_;
    my @pids;
    opendir my $d, '/proc' or die "/proc: $!";
    for my $p (readdir $d) {
        next unless $p =~ /^\d+$/;
        open my $fh, '<', "/proc/$p/stat" or next;
        my $stat = <$fh> // next;
        close $fh;
        # pid (comm) state ppid ...: comm may hold spaces and parens
        next unless $stat =~ /\)\s+\S+\s+(\d+)/;
        push @pids, $p + 0 if $1 == $ppid;
    }
    closedir $d;
    return sort { $a <=> $b } @pids;
}

sub _cmdline {
    my ($pid) = @_;
    my $c = _slurp("/proc/$pid/cmdline");
    $c =~ tr/\0/ /;
    return $c;
}


package Edgetrace::Test::Server;

# what the nginx and httpd servers of the harness have alike

sub port   { $_[0]{port} }
sub pid    { $_[0]{pid} }
sub prefix { $_[0]{prefix} }
sub ports  { $_[0]{ports} }
sub conf   { $_[0]{conf} }

sub error_log { Edgetrace::Test::_slurp("$_[0]{prefix}/error.log") }

# lines of the error log (and of sanitizer reports) that tell of a crashed
# worker or child
sub crashes {
    my ($self) = @_;
    my @lines = grep { /exited on signal|exit signal|core dumped|segmentation/i }
                split /\n/, $self->error_log;
    for my $f (glob "$self->{prefix}/asan.*") {
        push @lines, grep { /ERROR: AddressSanitizer|runtime error:/ }
                     split /\n/, Edgetrace::Test::_slurp($f);
    }
    push @lines, grep { /runtime error:|AddressSanitizer/ }
                 split /\n/, Edgetrace::Test::_slurp(
                     "$self->{prefix}/stderr.log");
    return @lines;
}

sub alive { kill 0, $_[0]{pid} }

# the master's (parent's) descriptors, threads and RSS (kB), from /proc; or
# those of $pid, one of its workers
sub proc_state {
    my ($self, $pid) = @_;
    $pid ||= $self->{pid};
    opendir my $d, "/proc/$pid/fd" or die "/proc/$pid/fd: $!";
    my $fds = grep { /^\d+$/ } readdir $d;
    closedir $d;
    my %s;
    open my $fh, '<', "/proc/$pid/status" or die "/proc/$pid/status: $!";
    while (<$fh>) { $s{$1} = $2 if /^(\w+):\s+(\d+)/ }
    return { fds => $fds, threads => $s{Threads}, rss => $s{VmRSS} };
}


package Edgetrace::Test::Nginx;

use POSIX ();
use Time::HiRes ();

our @ISA = ('Edgetrace::Test::Server');

# worker (and cache manager) processes: children of the master
sub worker_pids {
    my ($self) = @_;
    return grep { Edgetrace::Test::_cmdline($_) =~ /^nginx: worker/ }
           Edgetrace::Test::_children($self->{pid});
}

# `nginx -s reload`: HUP to the master; waits until N new workers run and
# (up to the timeout) until the old ones are gone.  Returns true when the
# new configuration runs.
sub reload {
    my ($self, %o) = @_;
    my %old = map { $_ => 1 } $self->worker_pids;
    kill 'HUP', $self->{pid} or die "reload: $!";
    my $ok = Edgetrace::Test::wait_until(sub {
        my @new = grep { !$old{$_} } $self->worker_pids;
        @new >= $self->{workers};
    }, $o{timeout} || 10);
    Edgetrace::Test::wait_until(sub {
        !grep { $old{$_} } $self->worker_pids;
    }, $o{timeout} || 10) if $ok;
    return $ok;
}

# `nginx -s quit`: SIGQUIT to the master, wait for it to exit; returns its
# wait status (or undef when it did not exit in time)
sub quit {
    my ($self, %o) = @_;
    kill 'QUIT', $self->{pid};
    my $status = Edgetrace::Test::wait_exit($self->{pid}, $o{timeout});
    $self->{stopped} = 1 if defined $status;
    return $status;
}

sub stop {
    my ($self) = @_;
    return if $self->{stopped};
    my @workers = $self->worker_pids;
    Edgetrace::Test::stop_pid($self->{pid}, 'TERM', 10);
    # a master killed hard leaves its workers: end exactly those
    for my $w (@workers) {
        kill 'KILL', $w if kill 0, $w;
    }
    $self->{stopped} = 1;
}

sub nginx_t {
    my ($self, @a) = @_;
    return Edgetrace::Test::nginx_t(@a);
}


package Edgetrace::Test::Redis;

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }
sub dir  { $_[0]{dir} }
sub stop { Edgetrace::Test::stop_pid($_[0]{pid}) }
sub client { Edgetrace::Test::redis($_[0]{port}) }


package Edgetrace::Test;

# ---------------------------------------------------------------------------
# the backend: a forked HTTP/1.1 server that logs what reaches it

# start_backend(conn => \&handler): returns an object with port, pid, log,
# requests, clear.  Each connection runs in a forked child; conn (default:
# the HTTP/1.1 server below) serves it as handler($socket, $log_file) and
# records what it received with backend_log($log_file, { ... }).
#
#   /status/NNN   answers NNN
#   /slow/MS      sleeps MS milliseconds, then 200
#   /accel/PATH   200 with "X-Accel-Redirect: /PATH"
#   anything else 200, the body lists the request's header lines
#                 ("name: value", one a line, as received, in order)
sub start_backend {
    my (%o) = @_;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                       LocalPort => $o{port} || 0,
                                       Proto => 'tcp', Listen => 128,
                                       ReuseAddr => 1)
        or die "start_backend: $!";
    my $port = $listen->sockport;
    my $dir = _tempdir('et-backend-XXXXXX');
    my $log = "$dir/requests.log";
    open my $touch, '>', $log or die "$log: $!";
    close $touch;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setsid();
        @started = ();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', "$dir/backend.err";
        eval { _backend_serve($listen, $log, $o{conn} || \&_backend_conn) };
        POSIX::_exit(0);
    }
    close $listen;
    push @started, [$pid, 'backend'];

    $last_backend = bless { port => $port, pid => $pid, log => $log,
                            dir => $dir }, 'Edgetrace::Test::Backend';
    return $last_backend;
}

sub _backend_serve {
    my ($listen, $log, $conn) = @_;
    my %kids;
    my $stop = 0;

    $SIG{CHLD} = sub {
        while ((my $k = waitpid(-1, POSIX::WNOHANG())) > 0) {
            delete $kids{$k};
        }
    };
    $SIG{TERM} = $SIG{INT} = sub { $stop = 1 };

    while (!$stop) {
        my $c = $listen->accept;
        next unless $c;    # EINTR
        my $k = fork;
        if (!defined $k) {
            close $c;
            next;
        }
        if ($k == 0) {
            $SIG{CHLD} = 'DEFAULT';
            $SIG{TERM} = 'DEFAULT';
            close $listen;
            eval { $conn->($c, $log) };
            POSIX::_exit(0);
        }
        $kids{$k} = 1;
        close $c;
    }

    kill 'TERM', keys %kids;
    POSIX::_exit(0);
}

# up to and with the next "\n" (or $end)
sub _backend_read_line {
    my ($c, $buf, $end) = @_;
    $end //= "\n";
    while (1) {
        my $i = index($$buf, $end);
        if ($i >= 0) {
            return substr($$buf, 0, $i + 1, '');
        }
        my $n = sysread($c, $$buf, 65536, length $$buf);
        return undef unless $n;
    }
}

sub _backend_read_n {
    my ($c, $buf, $n) = @_;
    while (length $$buf < $n) {
        my $r = sysread($c, $$buf, 65536, length $$buf);
        return undef unless $r;
    }
    return substr($$buf, 0, $n, '');
}

# backend_log($log, \%record): appends one request as a JSON line, with the
# time and the serving process added; concurrent children append whole lines
sub backend_log {
    my ($log, $rec) = @_;
    my $line = JSON::PP->new->ascii->canonical->encode(
                   { %$rec, time => Time::HiRes::time(), pid => $$ });
    open my $fh, '>>', $log or return;
    flock $fh, LOCK_EX;
    seek $fh, 0, SEEK_END;
    print $fh $line, "\n";
    close $fh;
}

sub _backend_conn {
    my ($c, $log) = @_;
    my $buf = '';

    $c->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);

    while (1) {
        my $line = _backend_read_line($c, \$buf) // return;
        next if $line =~ /^\r?\n$/;    # stray CRLF between requests
        $line =~ s/\r?\n\z//;
        my ($method, $uri, $version) = split / /, $line, 3;
        $version //= 'HTTP/0.9';

        my @headers;
        while (1) {
            my $h = _backend_read_line($c, \$buf) // return;
            $h =~ s/\r?\n\z//;
            last if $h eq '';
            if ($h =~ /^[ \t]/ && @headers) {    # obsolete line folding
                $headers[-1][1] .= $h;
                next;
            }
            my ($n, $v) = split /:/, $h, 2;
            $v //= '';
            $v =~ s/^[ ]+//;
            $v =~ s/[ ]+\z//;
            push @headers, [$n, $v];
        }

        my %h;
        for (@headers) { push @{ $h{lc $_->[0]} }, $_->[1] }

        my $body = '';
        if ($h{'transfer-encoding'}
            && $h{'transfer-encoding'}[-1] =~ /chunked/i)
        {
            while (1) {
                my $size = _backend_read_line($c, \$buf) // return;
                my $n = hex($size =~ /^([0-9a-fA-F]+)/ ? $1 : 0);
                if ($n == 0) {
                    while (1) {
                        my $t = _backend_read_line($c, \$buf) // return;
                        last if $t =~ /^\r?\n$/;
                    }
                    last;
                }
                $body .= _backend_read_n($c, \$buf, $n) // return;
                _backend_read_line($c, \$buf);
            }
        } elsif ($h{'content-length'}) {
            $body = _backend_read_n($c, \$buf, $h{'content-length'}[0] + 0)
                    // return;
        }

        backend_log($log, { method => $method, uri => $uri,
                            version => $version, headers => \@headers,
                            body_length => length $body });

        my $status = 200;
        my @extra;
        my $path = $uri;
        $path =~ s/\?.*//s;

        if ($path =~ m{^/status/(\d{3})}) {
            $status = $1;
        } elsif ($path =~ m{^/slow/(\d+)}) {
            Time::HiRes::sleep($1 / 1000);
        } elsif ($path =~ m{^/accel(/.*)}) {
            push @extra, "X-Accel-Redirect: $1";
        }

        my $out = join '', map { "$_->[0]: $_->[1]\n" } @headers;
        my $keep = $version eq 'HTTP/1.1'
                   && !grep { /close/i } @{ $h{connection} || [] };
        $keep ||= $version eq 'HTTP/1.0'
                  && grep { /keep-alive/i } @{ $h{connection} || [] };

        my $resp = "HTTP/1.1 $status " . ($status == 200 ? 'OK' : 'Status')
                 . "\r\n"
                 . "Content-Type: text/plain\r\n"
                 . "Content-Length: " . length($out) . "\r\n"
                 . "X-Backend-Port: " . $c->sockport . "\r\n"
                 . join('', map { "$_\r\n" } @extra)
                 . "Connection: " . ($keep ? 'keep-alive' : 'close') . "\r\n"
                 . "\r\n";
        $resp .= $out unless $method eq 'HEAD';

        my $off = 0;
        while ($off < length $resp) {
            my $w = syswrite($c, $resp, length($resp) - $off, $off);
            return unless $w;
            $off += $w;
        }
        return unless $keep;
    }
}

# the requests the backend saw: [{ method, uri, version, headers => [[n, v],
# ...] }, ...] in arrival order
sub backend_requests {
    my ($b) = @_;
    $b ||= $last_backend or die "backend_requests: no backend started\n";
    my @r;
    my $json = JSON::PP->new->ascii;
    open my $fh, '<', $b->{log} or die "$b->{log}: $!";
    while (my $l = <$fh>) {
        chomp $l;
        next unless length $l;
        push @r, $json->decode($l);
    }
    return @r;
}


package Edgetrace::Test::Backend;

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }
sub requests { Edgetrace::Test::backend_requests($_[0]) }
sub clear {
    open my $fh, '>', $_[0]{log} or die "$_[0]{log}: $!";
    close $fh;
}
sub stop { Edgetrace::Test::stop_pid($_[0]{pid}) }

# waits until at least n requests were logged, returns them all
sub wait_requests {
    my ($self, $n, $timeout) = @_;
    my @r;
    Edgetrace::Test::wait_until(sub { (@r = $self->requests) >= $n },
                                $timeout || 3);
    return @r;
}

# every value of header $name in request $req (case-insensitive name)
sub header_values {
    my ($class, $req, $name) = @_;
    return map { $_->[1] } grep { lc $_->[0] eq lc $name } @{ $req->{headers} };
}


package Edgetrace::Test;

# ---------------------------------------------------------------------------
# the client

# http_get($port, $path, headers => [[n, v], ...], method => 'GET',
#          version => '1.1', body => $bytes, host => $host, raw => $bytes,
#          timeout => 10)
#
# Returns { status, reason, version, headers => { lc name => value (last) },
# header_list => [[n, v], ...], body, raw }.  With raw, exactly those bytes
# are sent.  A response without a status line (HTTP/0.9) has status 0.
sub http_get {
    my ($port, $path, %o) = @_;
    my $req;

    if (defined $o{raw}) {
        $req = $o{raw};
    } else {
        my $method = $o{method} || 'GET';
        my $version = $o{version} || '1.1';
        $req = "$method $path HTTP/$version\r\n";
        $req .= "Host: " . ($o{host} // "127.0.0.1:$port") . "\r\n"
            unless grep { lc $_->[0] eq 'host' } @{ $o{headers} || [] }
                   or $o{no_host};
        $req .= "$_->[0]: $_->[1]\r\n" for @{ $o{headers} || [] };
        if (defined $o{body}) {
            $req .= "Content-Length: " . length($o{body}) . "\r\n";
        }
        $req .= "Connection: close\r\n" if $version eq '1.1';
        $req .= "\r\n";
        $req .= $o{body} if defined $o{body};
    }

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Proto => 'tcp', Timeout => 5)
        or die "http_get: connect 127.0.0.1:$port: $!\n";

    my $off = 0;
    while ($off < length $req) {
        my $w = syswrite($s, $req, length($req) - $off, $off);
        last unless $w;    # the server may close early on bad requests
        $off += $w;
    }

    my $raw = '';
    my $until = Time::HiRes::time() + ($o{timeout} || 10);
    my $sel = '';
    vec($sel, fileno($s), 1) = 1;
    while (Time::HiRes::time() < $until) {
        my $r = $sel;
        my $n = select($r, undef, undef, 0.2);
        next unless $n;
        my $got = sysread($s, $raw, 65536, length $raw);
        last unless $got;
    }
    close $s;

    return _parse_response($raw);
}

sub _parse_response {
    my ($raw) = @_;
    my %r = (raw => $raw, status => 0, headers => {}, header_list => [],
             body => $raw);

    return \%r unless $raw =~ m{^HTTP/(\d\.\d) (\d{3})([^\r\n]*)\r?\n};
    @r{qw(version status reason)} = ($1, $2 + 0, $3);
    $r{reason} =~ s/^ //;

    my $end = index($raw, "\r\n\r\n");
    my ($head, $body) = $end >= 0 ? (substr($raw, 0, $end),
                                     substr($raw, $end + 4))
                                  : ($raw, '');
    my @lines = split /\r\n/, $head;
    shift @lines;
    for (@lines) {
        my ($n, $v) = split /:\s*/, $_, 2;
        push @{ $r{header_list} }, [$n, $v // ''];
        $r{headers}{lc $n} = $v // '';
    }

    if (($r{headers}{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $n = hex $1;
            last if $n == 0;
            $out .= substr($body, 0, $n, '');
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }
    $r{body} = $body;
    return \%r;
}


# ---------------------------------------------------------------------------
# Redis

sub redis {
    my ($port) = @_;
    $port = $port->{port} if ref $port;
    require Redis;
    return Redis->new(server => "127.0.0.1:$port", reconnect => 2,
                      every => 100_000, cnx_timeout => 2);
}

sub _key { $_[0] // 'edgetrace:spans' }

# stream_len($redis_port, $key)
sub stream_len {
    my ($port, $key) = @_;
    return redis($port)->xlen(_key($key));
}

# stream_entries($redis_port, $key, count => N, timeout => 3): polls XRANGE
# until at least N entries are there (or the timeout) and returns them all,
# in stream order, each a hash of field => value plus _id (the entry id)
# and _fields ([field, value, ...] in the entry's order).
sub stream_entries {
    my ($port, $key, %o) = @_;
    return _poll_entries($port, $key, sub { 1 }, %o);
}

# _poll_entries($redis_port, $key, $match, count => N, timeout => T,
# settle => S): the entries for which $match returns true, polled until
# there are N of them (or the timeout), then S seconds more to let entries
# beyond those show up
sub _poll_entries {
    my ($port, $key, $match, %o) = @_;
    my $want = $o{count} // 1;
    my $r = redis($port);
    my $until = Time::HiRes::time() + ($o{timeout} // 3);
    my @out;
    while (1) {
        @out = grep { $match->($_) } map { _entry($_) }
                    @{ $r->xrange(_key($key), '-', '+') };
        last if @out >= $want || Time::HiRes::time() >= $until;
        Time::HiRes::sleep(0.05);
    }
    if ($o{settle}) {
        Time::HiRes::sleep($o{settle});
        @out = grep { $match->($_) } map { _entry($_) }
                    @{ $r->xrange(_key($key), '-', '+') };
    }
    $r->quit;
    return @out;
}

# one XRANGE reply element as a hash (see stream_entries)
sub _entry {
    my ($id, $kv) = @{ $_[0] };
    my %h = (_id => $id, _fields => [@$kv]);
    my @kv = @$kv;
    while (@kv) {
        my ($f, $v) = splice @kv, 0, 2;
        $h{$f} = $v;
    }
    return \%h;
}

# traced_request($redis, $backend, $port, $path, $n, headers => [...],
# method => ...): empties the stream and the backend's record, sends one
# request, waits for $n entries; returns (the response, the entries)
sub traced_request {
    my ($redis, $backend, $port, $path, $n, %o) = @_;
    $backend->clear if $backend;
    redis($redis)->del(_key($o{key}));
    my $r = http_get($port, $path, headers => $o{headers} || [],
                     $o{method} ? (method => $o{method}) : ());
    my @e = stream_entries($redis, $o{key}, count => $n,
                           timeout => $o{timeout} // ($n ? 3 : 0.5));
    return ($r, @e);
}

# trace_spans($redis_port, $trace_id, count => N, timeout => 3, key => K,
# settle => S): the entries of one trace, waiting until there are at least
# N (and S seconds more, to see any beyond N).  A test finds its spans by
# their trace id, never by their position in the stream, so that its cases
# do not depend on each other.
sub trace_spans {
    my ($port, $trace_id, %o) = @_;
    return () unless defined $trace_id;
    return _poll_entries($port, $o{key},
                         sub { ($_[0]{trace_id} // '') eq $trace_id }, %o);
}

# barrier($redis_port, $nginx_port, $path, key => K): requests $path (a
# location that answers itself) in a trace of its own and waits for its
# span; spans exported before it are in the stream then, as one worker
# sends its spans in order.  Returns all the stream's entries.
sub barrier {
    my ($redis, $port, $path, %o) = @_;
    $path //= '/barrier';
    my $trace = new_trace_id();
    http_get($port, $path, headers => [['traceparent',
                                        new_traceparent($trace)]]);
    my @s = trace_spans($redis, $trace, key => $o{key}, timeout => 5);
    die "barrier: no span for $path in trace $trace\n" unless @s;
    return stream_entries($redis, $o{key});
}

# case($name, sub { ... }): one case of a test file, as a subtest; its
# failures stay inside it.  EDGETRACE_CASE=regex runs only the cases whose
# names match, so that a case can be run alone.
sub case {
    my ($name, $code) = @_;
    require Test::More;
    my $only = $ENV{EDGETRACE_CASE};
    if (defined $only && $name !~ /$only/) {
        Test::More::note("case '$name' not selected (EDGETRACE_CASE)");
        return;
    }
    return Test::More::subtest($name, $code);
}

# the trace a response belongs to, from an "add_header X-Trace-Id
# $edgetrace_trace_id always" in the configuration
sub response_trace { $_[0]{headers}{'x-trace-id'} }

sub _hex { join '', map { sprintf '%02x', int rand 256 } 1 .. $_[0] }
sub new_trace_id { _hex(16) }
sub new_span_id  { _hex(8) }

# a sampled W3C traceparent in trace $trace_id, with a new parent span id
sub new_traceparent { "00-$_[0]-" . new_span_id() . '-01' }

# "00-<trace>-<span>-<flags>" into (version, trace id, span id, flags), or
# () when it is not of that shape
sub parse_traceparent {
    my ($v) = @_;
    return () unless defined $v
        && $v =~ /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
    return ($1, $2, $3, $4);
}

# Sharded streams, as docs/stream.md ("Sharded streams") describes them,
# written here from the text rather than from the C: crc16($bytes)
# (CRC16/XMODEM), key_slot($key) (Redis Cluster's slot, hash tags
# included), shard_key($key, $i, $n) (the name of shard $i of $n) and
# trace_shard($trace_id_hex, $n) (the shard of a trace's spans).
sub crc16 {
    my ($s) = @_;
    my $crc = 0;
    for my $c (unpack 'C*', $s) {
        $crc ^= $c << 8;
        for (1 .. 8) {
            $crc = $crc & 0x8000 ? (($crc << 1) ^ 0x1021) & 0xffff
                                 : ($crc << 1) & 0xffff;
        }
    }
    return $crc;
}

sub key_slot {
    my ($key) = @_;
    $key = $1 if $key =~ /^[^{]*\{([^}]+)\}/s;
    return crc16($key) % 16384;
}

sub shard_key {
    my ($key, $i, $n) = @_;
    return $key if $n == 1;
    my $j = 0;
    $j++ until int(crc16($j) % 16384 * $n / 16384) == $i;
    return "$key:$i\{$j}";
}

sub trace_shard {
    my ($trace_id, $n) = @_;
    my ($hi, $lo) = unpack 'NN', pack 'H*', substr($trace_id, 16, 16);
    # (hi * 2^32 + lo) mod n, without 64-bit arithmetic
    return (($hi % $n) * (4294967296 % $n) + $lo % $n) % $n;
}

# metrics($nginx_port, $path): the status location's Prometheus text as a
# hash; a labelled sample keeps its labels in the key, as written
sub metrics {
    my ($port, $path) = @_;
    my $r = http_get($port, $path // '/metrics');
    die "metrics: status $r->{status}\n" unless $r->{status} == 200;
    my %m;
    for (split /\n/, $r->{body}) {
        next if /^\s*(#|$)/;
        next unless /^(\S+)\s+(\S+)/;
        $m{$1} = $2 + 0;
    }
    return \%m;
}


END {
    my $rc = $?;
    my @all = reverse @started;
    for my $p (@all) {
        if ($p->[2]) {
            $p->[2]->stop;
        } else {
            stop_pid($p->[0]);
        }
    }
    $? = $rc;
}

# register_pid($pid, $name): a process started elsewhere (the CLI tests'
# sink and tools) is stopped with the others when the test ends
sub register_pid {
    my ($pid, $name) = @_;
    push @started, [$pid, $name];
}

# counters_match_redis($server, $redis, what => NAME, path => '/metrics',
#                      key => K, base => $m0, dropped => N,
#                      dropped_since => $m, timeout => 15, queued => 0)
#
# Waits until nothing is queued (or until exactly "queued" spans are, when
# Redis is away), then checks with Test::More that the counters add up and
# match what Redis holds: spans_total = exported + dropped + queued; the
# stream (when $redis is given) holds exported - base's exported entries
# (base: the metrics taken when the stream was empty or deleted; none: 0),
# each a distinct span; the drops since dropped_since (default: base) are
# "dropped" when given;
# and the error log has no line saying spans went missing.  Returns the
# metrics.  The queued gauge is counted by each exporter's queue, so a span
# counted and then lost fails here.
sub counters_match_redis {
    my ($server, $redis, %o) = @_;
    require Test::More;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $what = $o{what} // 'counters';
    my $want = $o{queued} // 0;
    my $qf = 'edgetrace_spans_dropped_total{reason="queue_full"}';
    my $re = 'edgetrace_spans_dropped_total{reason="redis_error"}';
    my $m;
    my $rest = wait_until(sub {
        $m = metrics($server->port, $o{path});
        ($m->{edgetrace_spans_queued} // -1) == $want;
    }, $o{timeout} // 15);
    Test::More::ok($rest, "$what: queued $want at rest "
                          . "($m->{edgetrace_spans_queued})");
    my $dropped = $m->{$qf} + $m->{$re};
    my $exp = $m->{edgetrace_spans_exported_total};
    Test::More::is($m->{edgetrace_spans_total},
                   $exp + $dropped + $m->{edgetrace_spans_queued},
                   "$what: spans = exported $exp + dropped $dropped + "
                   . "queued $m->{edgetrace_spans_queued}");
    my $b = $o{base} || {};
    if (defined $o{dropped}) {
        my $d = $o{dropped_since} || $b;
        Test::More::is($dropped - ($d->{$qf} // 0) - ($d->{$re} // 0),
                       $o{dropped}, "$what: $o{dropped} spans dropped");
    }
    if ($redis) {
        my $exported = $m->{edgetrace_spans_exported_total}
                       - ($b->{edgetrace_spans_exported_total} // 0);
        my @e = stream_entries($redis, $o{key}, count => 0, timeout => 0);
        my %ids = map { ("$_->{trace_id}-$_->{span_id}" => 1) } @e;
        Test::More::is(scalar @e, $exported,
                       "$what: the stream holds the $exported spans "
                       . "exported");
        Test::More::is(scalar keys %ids, scalar @e,
                       "$what: each entry a distinct span");
    }
    my @missing = grep { /no longer add up/ } split /\n/, $server->error_log;
    Test::More::is_deeply(\@missing, [], "$what: no span went missing");
    return $m;
}

# redis_stalled($port, $secs): stall_redis, then waits until Redis really
# sleeps (a PING from another connection goes unanswered for 0.3 s, so
# the exporters' writes are not answered either); returns stall_redis's
# function, which waits for the end of the stall
sub redis_stalled {
    my ($port, $secs) = @_;
    my $done = stall_redis($port, $secs);
    my $asleep = wait_until(sub {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Proto => 'tcp', Timeout => 2)
            or return 0;
        syswrite($s, "PING\r\n");
        my $r = '';
        vec($r, fileno($s), 1) = 1;
        my $n = select($r, undef, undef, 0.3);
        close $s;
        return !$n;
    }, 5, 0.01);
    die "redis_stalled: Redis on $port still answers\n" unless $asleep;
    return $done;
}

# pids_gone($timeout, @pids): waits until none of the processes runs (gone
# or a zombie); returns true when so
sub pids_gone {
    my ($timeout, @pids) = @_;
    return wait_until(sub {
        !grep { my $st = _slurp("/proc/$_/stat");
                $st ne '' && $st !~ /\)\s+Z\s/ } @pids;
    }, $timeout, 0.01);
}

# ---------------------------------------------------------------------------
# client spans, their tries, and what a request costs

push @EXPORT_OK, qw(span_ms try_event upstream_parent keeps_up
                    traced_and_not);

# span_ms($entry): the span's duration in milliseconds
sub span_ms { ($_[0]{end_ns} - $_[0]{start_ns}) / 1e6 }

# try_event($entry, $i): the span's event.<i> as { peer, status,
# connect_ms, header_ms, response_ms } with undef for "-", or undef when
# there is no such event or it is not of that shape
sub try_event {
    my ($span, $i) = @_;
    my $e = $span->{'event.' . ($i // 0)} // return undef;
    return undef unless $e =~ /^upstream\.try peer=(\S+) status=(\S+) (?#
                               )connect_ms=(\S+) header_ms=(\S+) (?#
                               )response_ms=(\S+)$/;
    my %t;
    @t{qw(peer status connect_ms header_ms response_ms)} =
        map { $_ eq '-' ? undef : $_ } ($1, $2, $3, $4, $5);
    return \%t;
}

# upstream_parent($backend_request): the span id of the one traceparent
# the backend received, undef when it received none or several
sub upstream_parent {
    my ($req) = @_;
    my @tp = Edgetrace::Test::Backend->header_values($req, 'traceparent');
    return @tp == 1 ? (parse_traceparent($tp[0]))[2] : undef;
}

# keeps_up($port, $plain_port, $n, [[path, status], ...]): $n requests to
# each server, one at a time and taking turns, so that both meet the same
# load of the machine.  The server at $port keeps up when its p99 latency
# is below max(3 x the plain server's, the plain server's + 20 ms) and its
# rate (requests per second of its own latency) is at least a third of the
# plain server's.  One more round when it does not: a moment of load on
# one side is not a slow server, a cost paid on every request fails both.
# Returns (kept up, requests per server, answers with another status,
# the numbers as a sentence).
sub keeps_up {
    my ($port, $plain, $n, $paths) = @_;
    my ($ok, $sent, $wrong, $say) = (0, 0, 0, '');
    for my $round (1 .. 2) {
        my %lat = ($port => [], $plain => []);
        for my $i (0 .. $n - 1) {
            my ($path, $want) = @{ $paths->[$i % @$paths] };
            for my $p ($i % 2 ? ($plain, $port) : ($port, $plain)) {
                my $t0 = Time::HiRes::time();
                my $r = http_get($p, $path);
                push @{ $lat{$p} }, Time::HiRes::time() - $t0;
                $wrong++ if $r->{status} != $want;
            }
        }
        $sent += $n;
        my ($t, $u) = map { _latency($_) } @lat{$port, $plain};
        my $bound = 3 * $u->{p99} > $u->{p99} + 0.020 ? 3 * $u->{p99}
                                                      : $u->{p99} + 0.020;
        $ok = $t->{p99} < $bound && $t->{rate} >= $u->{rate} / 3;
        $say .= sprintf('%sp99 %.1f ms (plain %.1f ms), %.0f/s (plain '
                        . '%.0f/s)', $say ? '; then ' : '', 1000 * $t->{p99},
                        1000 * $u->{p99}, $t->{rate}, $u->{rate});
        last if $ok;
    }
    return ($ok, $sent, $wrong, $say);
}

# traced_and_not($locations): nginx configuration text, two servers with
# those locations: one on %%PORT%% traced as the http level says, one on
# %%PORT2%% with tracing off, for keeps_up
sub traced_and_not {
    my ($locations) = @_;
    return join '', map { "    server {\n        listen 127.0.0.1:$_;\n"
                          . ($_ eq '%%PORT2%%' ? "        edgetrace off;\n"
                                               : '')
                          . "$locations    }\n" } '%%PORT%%', '%%PORT2%%';
}

sub _latency {
    my ($l) = @_;
    my @s = sort { $a <=> $b } @$l;
    my $sum = 0;
    $sum += $_ for @s;
    my $i = POSIX::ceil(0.99 * @s) - 1;
    return { p99 => $s[$i], rate => $sum > 0 ? @s / $sum : 0 };
}

1;
