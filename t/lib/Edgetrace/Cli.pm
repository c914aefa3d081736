package Edgetrace::Cli;

# Running build/edgetrace from the tests.
#
#   my $r = run_cli($redis, 'show', $trace_id);   # { rc, out, err }
#   my $p = start_cli($redis, 'tail');            # in the background
#   $p->out; $p->err; $p->wait(10); $p->kill('KILL'); $p->pid
#
# The tool of EDGETRACE_BUILD (build/san/edgetrace under make test
# SANITIZE=1) runs with --redis pointing at the given Redis (undef: none
# given).  Processes are registered with Edgetrace::Test, which stops
# them by PID when the test ends.  A command to run the tool under
# (valgrind and its options) goes in @Edgetrace::Cli::WRAP.

use strict;
use warnings;

use Cwd ();
use Exporter 'import';
use File::Temp ();
use POSIX ();
use Time::HiRes ();

use Edgetrace::Test ();

our @EXPORT_OK = qw(cli_path run_cli start_cli start_stack request);

our @WRAP;


# Redis, a backend and an nginx tracing into Redis (service "edge"):
# /api... proxied, /local answered by nginx, /fail 503, /dead an upstream
# that refuses connections, /retry a dead peer then the backend (two
# tries).  Every answer carries X-Trace-Id.  "redis_args": more arguments
# for redis-server (a TLS port beside the plain one nginx writes to).
sub start_stack {
    my (%o) = @_;
    my $redis = Edgetrace::Test::start_redis(args => $o{redis_args} || []);
    my $b = Edgetrace::Test::start_backend();
    my $extra = $o{conf} // '';
    my $ngx = Edgetrace::Test::start_nginx(redis => $redis,
                                           workers => $o{workers} || 1,
                                           conf => <<"EOF");
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace_service_name edge;
    edgetrace on;
$extra
    upstream dead_then_live {
        server 127.0.0.1:%%DEAD%% max_fails=0;
        server 127.0.0.1:%%BACKEND%% backup;
    }

    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-Trace-Id \$edgetrace_trace_id always;

        location /retry {
            proxy_pass http://dead_then_live;
        }

        location /api {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /local {
            return 200 "ok\n";
        }
        location /fail {
            return 503;
        }
        location /dead {
            proxy_pass http://127.0.0.1:%%DEAD%%;
        }
    }
EOF
    return ($redis, $b, $ngx);
}

# a request through the stack's nginx; returns the trace id, once the
# trace's $spans spans (default 1, 2 for /api) are in the stream
sub request {
    my ($redis, $ngx, $path, %o) = @_;
    my $want = delete $o{spans} // ($path =~ m{^/(api|dead|retry)} ? 2 : 1);
    my $r = Edgetrace::Test::http_get($ngx->port, $path, %o);
    my $t = $r->{headers}{'x-trace-id'}
        or die "request $path: no X-Trace-Id (status $r->{status})\n";
    my @s = Edgetrace::Test::trace_spans($redis->port, $t, count => $want,
                                         timeout => 5);
    die "request $path: " . scalar(@s) . " spans, not $want\n"
        unless @s >= $want;
    return $t;
}


sub cli_path {
    my $bin = Cwd::abs_path(Edgetrace::Test::build_dir()) . '/edgetrace';
    die "edgetrace: $bin is missing: run make\n" unless -x $bin;
    return $bin;
}

sub _args {
    my ($redis, @args) = @_;
    my @g;
    if (defined $redis) {
        my $port = ref $redis ? $redis->port : $redis;
        @g = ('--redis', "redis://127.0.0.1:$port");
    }
    return (@WRAP, cli_path(), @g, @args);
}

# In the child before exec: closes the descriptors above 2 that the test
# inherited from whatever ran it (make, a shell, a CI runner), so the tool
# starts with only its standard ones, as under systemd.  valgrind 3.24
# (Debian 13) --track-fds=yes counts a descriptor still open at exit as an
# error even when it was inherited.
sub _close_inherited {
    opendir(my $d, '/proc/self/fd') or return;
    my @fds = grep { /^\d+$/ && $_ > 2 } readdir $d;
    closedir $d;
    POSIX::close($_) for @fds;
}

sub start_cli {
    my ($redis, @args) = @_;
    my @cmd = _args($redis, @args);
    my $dir = File::Temp::tempdir('et-cli-XXXXXX', TMPDIR => 1,
                                  CLEANUP => !$ENV{EDGETRACE_KEEP});
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setsid();
        _close_inherited();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/out";
        open STDERR, '>', "$dir/err";
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    Edgetrace::Test::register_pid($pid, 'edgetrace');
    return bless { pid => $pid, dir => $dir, cmd => \@cmd },
                 'Edgetrace::Cli::Process';
}

# runs to the end (killed after the timeout, 60 s by default)
sub run_cli {
    my ($redis, @args) = @_;
    my %o = ref $args[-1] eq 'HASH' ? %{ pop @args } : ();
    my $p = start_cli($redis, @args);
    my $rc = $p->wait($o{timeout} || 60);
    unless (defined $rc) {
        $p->kill('KILL');
        $rc = 'timeout';
    }
    return { rc => $rc, out => $p->out, err => $p->err };
}


package Edgetrace::Cli::Process;

sub pid { $_[0]{pid} }

sub _slurp { Edgetrace::Test::_slurp(@_) }

sub out { _slurp("$_[0]{dir}/out") }
sub err { _slurp("$_[0]{dir}/err") }

# the exit code (128 + signal when killed), or undef after the timeout
sub wait {
    my ($self, $timeout) = @_;
    return $self->{rc} if defined $self->{rc};
    my $until = Time::HiRes::time() + ($timeout // 10);
    while (Time::HiRes::time() < $until) {
        my $r = waitpid($self->{pid}, POSIX::WNOHANG());
        if ($r == $self->{pid}) {
            $self->{rc} = ($? & 127) ? 128 + ($? & 127) : $? >> 8;
            Edgetrace::Test::_forget($self->{pid});
            return $self->{rc};
        }
        Time::HiRes::sleep(0.02);
    }
    return undef;
}

sub kill {
    my ($self, $sig) = @_;
    return if defined $self->{rc};
    CORE::kill($sig || 'TERM', $self->{pid});
    return $self->wait(10);
}

sub alive { !defined $_[0]->wait(0) }

1;
