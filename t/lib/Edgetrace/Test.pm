package Edgetrace::Test;

# The end-to-end harness: starts real redis-server, nginx and backends on
# loopback, each on its own port and temporary prefix, and stops exactly
# the processes it started (by PID).

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

our @EXPORT_OK = qw(build_dir free_port start_redis wait_port);

my @started;    # [pid, name] of every process this test started

sub build_dir { $ENV{EDGETRACE_BUILD} || 'build' }

# a port nobody listens on now, picked by the kernel
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1, ReuseAddr => 1)
        or die "free_port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub wait_port {
    my ($port, $timeout) = @_;
    my $until = Time::HiRes::time() + ($timeout || 10);
    while (Time::HiRes::time() < $until) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Proto => 'tcp');
        return 1 if $s;
        Time::HiRes::sleep(0.02);
    }
    die "nothing listens on 127.0.0.1:$port after ${\($timeout || 10)}s\n";
}

sub _spawn {
    my ($name, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setsid();
        exec @cmd or POSIX::_exit(127);
    }
    push @started, [$pid, $name];
    return $pid;
}

# start_redis(port => N, args => [...]): returns { port, pid, dir }
sub start_redis {
    my (%o) = @_;
    my $port = $o{port} || free_port();
    my $dir = $o{dir} || File::Temp::tempdir('et-redis-XXXXXX', TMPDIR => 1,
                                             CLEANUP => 1);
    my $pid = _spawn('redis-server', 'redis-server', '--port', $port,
                     '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
                     '--dir', $dir, '--daemonize', 'no',
                     '--logfile', "$dir/redis.log",
                     @{ $o{args} || [] });
    wait_port($port);
    return { port => $port, pid => $pid, dir => $dir };
}

sub stop_pid {
    my ($pid, $sig) = @_;
    return unless $pid;
    kill($sig || 'TERM', $pid);
    for (1 .. 500) {
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

END {
    my $rc = $?;
    stop_pid($_->[0]) for reverse @started;
    $? = $rc;
}

1;
