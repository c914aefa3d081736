package Edgetrace::Cluster;

# The harness's Redis Cluster: real redis-server nodes on loopback, joined
# with `redis-cli --cluster create`, each stopped by its PID when the test
# ends (they are Edgetrace::Test's start_redis servers).
#
#   my $c = start_cluster();          # 3 masters, a replica each
#   my $c = start_cluster(tls => $pki);  # TLS only (Edgetrace::Tls's pki)
#   # ->nodes (Edgetrace::Test::Redis, ->port ->pid ->dir) ->ports ->live
#   # ->masters: ({ port, id, slots => [[start, end], ...] }, ...)
#   # ->master_of_slot($slot) ->slot_of($key) ->replicas_of($port)
#   # ->master_of_shard($key, $i, $n): of shard $i of $n of stream $key
#   my $t = shard_trace_id($i, $n);   # a new trace id of shard $i
#   my $new = $c->kill_master($port); # SIGKILL, waits for the promotion
#   $c->stop; $c->restart;            # all nodes down, then back
#   my @e = $c->shard_entries($key, $n);  # each shard from its master
#   spans_accounted(metrics($port)) == $m->{edgetrace_spans_total}
#   my @n = cluster_nodes($port);     # CLUSTER NODES, parsed
#   my $bytes = raw_command($port, 'CLUSTER', 'SLOTS');  # the RESP reply
#   my ($port, $pid) = garbage_seed();  # answers "*2000000000"
#   my $f = fake_node(xadd => ["-TRYAGAIN ...\r\n"]);  # a scripted node
#   $f->{port}; $f->log  # ([command, time, digest], ...) it was sent
#   my $text = node_cli($port, 'XADD', $key, '*', f => 'v');  # redis-cli
#
# A TLS cluster's nodes listen with TLS only (--port 0 --tls-port), talk
# to each other over TLS (--tls-cluster, --tls-replication), and are
# asked through redis-cli --tls: Redis.pm has no TLS.  Their certificate
# names 127.0.0.1, the CA is $pki->{ca}, and no client certificate is
# asked of clients (the nodes show theirs to each other).
#
# Node ports are below 55536: the cluster bus listens on port + 10000, and
# both must be free.  The nodes run with --cluster-node-timeout 1000, so a
# killed master's replica takes over within a few seconds.

use strict;
use warnings;

use Digest::MD5 ();
use Exporter 'import';
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Socket ();
use Time::HiRes ();

use Edgetrace::Test qw(free_port start_redis redis stop_pid wait_until
                       key_slot shard_key trace_shard new_trace_id);
use Edgetrace::Tls qw(redis_tls_args);

our @EXPORT_OK = qw(start_cluster cluster_nodes cluster_info raw_command
                    spans_accounted garbage_seed fake_node node_cli
                    shard_trace_id);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

my $SLOTS = 16384;
my $BUS = 10000;

my %TLS;    # the nodes of a TLS cluster: port => the pki of their CA

# a free port whose bus port (port + 10000) is free too
sub cluster_port {
    for (1 .. 200) {
        my $port = free_port();
        next if $port + $BUS > 65535;
        my $bus = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                        LocalPort => $port + $BUS,
                                        Proto => 'tcp', Listen => 1,
                                        ReuseAddr => 1) or next;
        close $bus;
        return $port;
    }
    die "cluster_port: no free port with a free bus port\n";
}

# with "pki", TLS only: the later --port 0 wins over start_redis's
sub _node_args {
    my ($port, $pki) = @_;
    return ['--cluster-enabled', 'yes', '--cluster-node-timeout', 1000,
            '--cluster-config-file', "nodes-$port.conf",
            ($pki ? ('--port', 0, redis_tls_args($pki, port => $port),
                     '--tls-cluster', 'yes', '--tls-replication', 'yes',
                     # the bus always asks its peers for a certificate,
                     # and the server's is for serverAuth only
                     '--tls-client-cert-file', $pki->{client},
                     '--tls-client-key-file', $pki->{client_key})
                  : ())];
}

sub _start_node {
    my ($pki) = @_;
    my $err = '';
    # another process may take the port between the check and the bind
    for (1 .. 3) {
        my $port = cluster_port();
        my $node = eval {
            start_redis(port => $port, args => _node_args($port, $pki));
        };
        if ($node) {
            $TLS{$port} = $pki if $pki;
            return $node;
        }
        $err = $@;
    }
    die "a cluster node did not start: $err";
}

# redis-cli's options for a node: --tls and the CA for a TLS one
sub _cli_tls {
    my ($port) = @_;
    my $pki = $TLS{$port} or return ();
    return ('--tls', '--cacert', $pki->{ca});
}

# node_cli($port, @args): a command on a node with redis-cli (--tls for a
# TLS cluster's), its output as text (one line per element of an array)
sub node_cli {
    my ($port, @args) = @_;
    # a create that cannot join its nodes waits forever: 60 s at most
    my @cmd = ('timeout', 60, Edgetrace::Test::_need('redis-cli'), _cli_tls($port),
               '-h', '127.0.0.1', '-p', $port, @args);
    my $pid = open(my $out, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        exec @cmd or POSIX::_exit(127);
    }
    my $text = do { local $/; <$out> } // '';
    close $out;
    die "redis-cli on $port failed: $text\n" if $?;
    return $text;
}

# start_cluster(masters => 3, replicas => 1)
sub start_cluster {
    my (%o) = @_;
    my $masters = $o{masters} // 3;
    my $replicas = $o{replicas} // 1;
    my @nodes = map { _start_node($o{tls}) } 1 .. $masters * (1 + $replicas);
    my $self = bless { nodes => \@nodes, dead => {}, tls => $o{tls} },
                     'Edgetrace::Cluster';

    my $log = $nodes[0]->dir . '/cluster-create.log';
    # a create that cannot join its nodes waits forever: 60 s at most
    my @cmd = ('timeout', 60, Edgetrace::Test::_need('redis-cli'),
               _cli_tls($nodes[0]->port), '--cluster', 'create',
               (map { '127.0.0.1:' . $_->port } @nodes),
               '--cluster-replicas', $replicas, '--cluster-yes');
    system("@cmd > $log 2>&1") == 0
        or die "redis-cli --cluster create failed:\n"
               . Edgetrace::Test::_slurp($log);

    $self->wait_ok(30)
        or die "the cluster is not ok after 30s:\n"
               . join('', map { cluster_info($_->port) } @nodes);
    return $self;
}

sub nodes { @{ $_[0]{nodes} } }
sub ports { map { $_->port } $_[0]->nodes }

# the nodes not killed
sub live {
    my ($self) = @_;
    return grep { !$self->{dead}{ $_->port } } $self->nodes;
}

# the node object of a port
sub node {
    my ($self, $port) = @_;
    my ($n) = grep { $_->port == $port } $self->nodes;
    return $n;
}

sub cluster_info {
    my ($port) = @_;
    return eval { $TLS{$port} ? node_cli($port, 'CLUSTER', 'INFO')
                              : redis($port)->cluster('info') } // '';
}

# CLUSTER NODES of one node: ({ id, port, flags => { myself, master,
# slave, fail... }, master (its master's id, or '-'), slots =>
# [[start, end], ...] }, ...); importing and migrating slots are left out
sub cluster_nodes {
    my ($port) = @_;
    my @nodes;
    my $text = $TLS{$port} ? node_cli($port, 'CLUSTER', 'NODES')
                           : redis($port)->cluster('nodes');
    for my $line (split /\n/, $text) {
        my ($id, $addr, $flags, $master, undef, undef, undef, undef, @slots)
            = split ' ', $line;
        my ($p) = $addr =~ /:(\d+)/;
        push @nodes, {
            id => $id, port => $p, master => $master,
            flags => { map { $_ => 1 } split /,/, $flags },
            slots => [map { /^(\d+)(?:-(\d+))?$/ ? [$1, $2 // $1] : () }
                      @slots] };
    }
    return @nodes;
}

# every live node says cluster_state:ok, knows all 16384 slots as ok, and
# every replica's link to its master is up
sub wait_ok {
    my ($self, $timeout) = @_;
    return wait_until(sub {
        for my $n ($self->live) {
            my $info = cluster_info($n->port);
            return 0 unless $info =~ /^cluster_state:ok\r?$/m
                         && $info =~ /^cluster_slots_ok:$SLOTS\r?$/m;
            my $repl = eval {
                $TLS{ $n->port }
                    ? { node_cli($n->port, 'INFO', 'replication')
                        =~ /^(\w+):(\S*)/mg }
                    : redis($n->port)->info('replication') } || {};
            return 0 if ($repl->{role} // '') eq 'slave'
                        && ($repl->{master_link_status} // '') ne 'up';
        }
        return 1;
    }, $timeout || 30, 0.1);
}

# the masters that serve slots, as a live node sees them, by port
sub masters {
    my ($self) = @_;
    my ($any) = $self->live;
    return sort { $a->{slots}[0][0] <=> $b->{slots}[0][0] }
           grep { $_->{flags}{master} && !$_->{flags}{fail}
                  && @{ $_->{slots} } } cluster_nodes($any->port);
}

sub master_of_slot {
    my ($self, $slot) = @_;
    for my $m ($self->masters) {
        return $m->{port}
            if grep { $slot >= $_->[0] && $slot <= $_->[1] } @{ $m->{slots} };
    }
    return undef;
}

sub master_of_shard {
    my ($self, $key, $i, $n) = @_;
    return $self->master_of_slot(key_slot(shard_key($key, $i, $n)));
}

# a new trace id that shard $i of $n holds
sub shard_trace_id {
    my ($i, $n) = @_;
    for (;;) {
        my $t = new_trace_id();
        return $t if trace_shard($t, $n) == $i;
    }
}

sub slot_of {
    my ($self, $key) = @_;
    my ($any) = $self->live;
    return $TLS{ $any->port }
           ? (node_cli($any->port, 'CLUSTER', 'KEYSLOT', $key) =~ /(\d+)/)[0]
           : redis($any->port)->cluster('keyslot', $key);
}

# the ports of the replicas of the master on $port
sub replicas_of {
    my ($self, $port) = @_;
    my ($any) = grep { $_->port != $port } $self->live;
    my @n = cluster_nodes($any->port);
    my ($m) = grep { $_->{port} == $port } @n or return ();
    return map { $_->{port} } grep { $_->{master} eq $m->{id} } @n;
}

# kill_master($port): SIGKILL to the master on $port (by its PID), then
# waits until one of its replicas serves its slots on every live node and
# the cluster is ok again; returns that replica's port
sub kill_master {
    my ($self, $port, $timeout) = @_;
    my $node = $self->node($port) or die "no node on port $port\n";
    my @replicas = $self->replicas_of($port)
        or die "the master on $port has no replica\n";
    my @slots = map { @$_ } map { @{ $_->{slots} } }
                grep { $_->{port} == $port } cluster_nodes($port);

    stop_pid($node->pid, 'KILL');
    $self->{dead}{$port} = 1;

    my $new;
    wait_until(sub {
        for my $r (@replicas) {
            next unless grep { $_->{port} == $r && $_->{flags}{myself}
                               && $_->{flags}{master} }
                        eval { cluster_nodes($r) };
            $new = $r;
        }
        return 0 unless $new;
        for my $n ($self->live) {
            my ($m) = grep { $_->{port} == $new }
                      eval { cluster_nodes($n->port) };
            return 0 unless $m && $m->{flags}{master} && @{ $m->{slots} }
                            && $m->{slots}[0][0] == $slots[0];
        }
        return 1;
    }, $timeout || 30, 0.1) or die "no replica of $port took over\n";

    $self->wait_ok($timeout || 30)
        or die "the cluster is not ok after the failover of $port\n";
    return $new;
}

# kill_under_traffic($port, $victim): kill_master($victim) 1.5 s into
# 6 s of requests to the server on $port (Edgetrace::Test::traffic, in a
# child), and the end of that traffic; returns the promoted replica's port
sub kill_under_traffic {
    my ($self, $port, $victim) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        Edgetrace::Test::traffic($port, 6, [['/y', 200]]);
        POSIX::_exit(0);
    }
    Time::HiRes::sleep(1.5);
    my $new = $self->kill_master($victim);
    waitpid $pid, 0;
    return $new;
}

# shard_entries($key, $n): the entries of the $n shards of stream $key,
# each read from the master that serves its shard's slot, as
# ({ shard => $i, port => $port, id => $id, fields... }, ...)
sub shard_entries {
    my ($self, $key, $n) = @_;
    my @e;
    for my $i (0 .. $n - 1) {
        my $k = Edgetrace::Test::shard_key($key, $i, $n);
        my $port = $self->master_of_slot($self->slot_of($k));
        for my $x (@{ redis($port)->xrange($k, '-', '+') }) {
            push @e, { @{ $x->[1] }, shard => $i, port => $port,
                       id => $x->[0] };
        }
    }
    return @e;
}

# spans_accounted(metrics($port)): exported + dropped (both reasons) +
# queued, which docs/counters.md says equals spans_total at rest
sub spans_accounted {
    my ($m) = @_;
    return $m->{edgetrace_spans_exported_total}
           + $m->{'edgetrace_spans_dropped_total{reason="queue_full"}'}
           + $m->{'edgetrace_spans_dropped_total{reason="redis_error"}'}
           + $m->{edgetrace_spans_queued};
}

# restart(): the nodes stopped or killed start again, on their ports and
# in their directories, so that each reads its nodes.conf and the cluster
# is the same one (its data is gone: the nodes run without persistence);
# waits until it is ok
sub restart {
    my ($self, $timeout) = @_;
    for my $n ($self->nodes) {
        next unless $self->{dead}{ $n->port };
        my $new = start_redis(port => $n->port, dir => $n->dir,
                              args => _node_args($n->port, $self->{tls}));
        %$n = %$new;
        delete $self->{dead}{ $n->port };
    }
    $self->wait_ok($timeout || 30)
        or die "the cluster is not ok after its restart\n";
    return $self;
}

sub stop {
    my ($self) = @_;
    for my $n ($self->live) {
        $n->stop;
    }
    $self->{dead}{ $_->port } = 1 for $self->nodes;
}

# raw_command($port, @args): the reply's RESP bytes, as a node wrote them
# (hiredis's reader, not Redis.pm's, is what the C tests need to see)
sub raw_command {
    my ($port, @args) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Proto => 'tcp', Timeout => 5)
        or die "127.0.0.1:$port: $!\n";
    my $cmd = join '', '*' . @args . "\r\n",
                       map { '$' . length($_) . "\r\n$_\r\n" } @args;
    # QUIT: Redis answers +OK and closes, so the reply ends at EOF
    print $s $cmd, "*1\r\n\$4\r\nQUIT\r\n";
    local $/;
    my $all = <$s> // '';
    close $s;
    $all =~ s/\+OK\r\n\z// or die "no QUIT after the reply from $port\n";
    return $all;
}

# garbage_seed(): a "seed" that answers any command with an array header
# of two billion elements, which hiredis 0.14 would allocate at once
# (et_cluster_guard refuses it); its port and PID, stopped by its PID
# when the test ends
sub garbage_seed {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 8, ReuseAddr => 1)
        or die "listen: $!";
    my $port = $l->sockport;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        while (my $s = $l->accept) {
            my $buf;
            sysread($s, $buf, 4096);
            syswrite($s, "*2000000000\r\n*2000000000\r\n");
            close $s;
        }
        POSIX::_exit(0);
    }
    close $l;
    Edgetrace::Test::register_pid($pid, 'garbage seed');
    return ($port, $pid);
}

# fake_node(xadd => [replies], port => $port): a one-process "cluster
# node" on loopback, for the replies a real cluster gives only now and
# then.  CLUSTER SLOTS says it serves every slot; XADD is answered with the
# next of the "xadd" replies (raw RESP, e.g. "-LOADING ...\r\n"), then
# with an entry id once they are all used; anything else (ASKING, AUTH)
# with +OK.  Each command's name, time (Time::HiRes) and a digest of its
# arguments (the same command sent again has the same) is written to its
# log file, read back by ->log.  With stall => $s, a connection is not
# read for $s seconds after its first XADD (its sender's socket fills up).
# Stopped by its PID when the test ends.
sub fake_node {
    my (%o) = @_;
    my @xadd = @{ $o{xadd} || [] };
    my $stall = $o{stall} || 0;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => $o{port} || 0,
                                  Listen => 16, ReuseAddr => 1)
        or die "listen: $!";
    my $port = $l->sockport;
    # a stalled connection's window stays small: its sender's socket fills
    setsockopt($l, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 8192)
        if $stall;
    my $log = Edgetrace::Test::_tempdir('et-fake-XXXXXX') . "/commands.log";
    open my $lf, '>', $log or die "$log: $!";
    close $lf;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $out, '>>', $log or POSIX::_exit(1);
        $out->autoflush(1);
        my $slots = "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n\$9\r\n127.0.0.1\r\n"
                    . ":$port\r\n\$40\r\n" . ('f' x 40) . "\r\n";
        my (%in, %stalled, %resume);
        my $sel = IO::Select->new($l);
        while (1) {
            for my $fd (keys %resume) {
                next if Time::HiRes::time() < $resume{$fd}[0];
                $sel->add($resume{$fd}[1]);
                delete $resume{$fd};
            }
            for my $s ($sel->can_read(0.05)) {
                if ($s == $l) {
                    my $c = $l->accept or next;
                    $sel->add($c);
                    $in{fileno $c} = '';
                    next;
                }
                my $n = sysread($s, my $buf, 65536);
                if (!$n) {
                    delete $in{fileno $s};
                    $sel->remove($s);
                    close $s;
                    next;
                }
                my $b = \$in{fileno $s};
                $$b .= $buf;
                my $reply = '';
                # whole commands: an array of bulk strings
                while ($$b =~ /\A\*(\d+)\r\n/) {
                    my ($argc, $pos, @args) = ($1, length($&));
                    for (1 .. $argc) {
                        last unless substr($$b, $pos) =~ /\A\$(\d+)\r\n/;
                        my $len = $1;
                        $pos += length($&);
                        last if length($$b) < $pos + $len + 2;
                        push @args, substr($$b, $pos, $len);
                        $pos += $len + 2;
                    }
                    last if @args < $argc;
                    substr($$b, 0, $pos) = '';
                    my $cmd = uc $args[0];
                    printf $out "%s %.6f %s\n", $cmd, Time::HiRes::time(),
                           Digest::MD5::md5_hex(join "\0", @args);
                    $reply .= $cmd eq 'CLUSTER' ? $slots
                            : $cmd eq 'XADD' ? (shift(@xadd)
                                               // "\$15\r\n1700000000000-0\r\n")
                            : "+OK\r\n";
                }
                syswrite($s, $reply) if length $reply;
                if ($stall && !$stalled{fileno $s} && $reply =~ /^\$/m) {
                    $stalled{fileno $s} = 1;
                    $sel->remove($s);
                    $resume{fileno $s} = [Time::HiRes::time() + $stall, $s];
                }
            }
        }
    }
    close $l;
    Edgetrace::Test::register_pid($pid, 'fake node');
    return bless { port => $port, pid => $pid, logfile => $log },
                 'Edgetrace::Cluster::Fake';
}

package Edgetrace::Cluster::Fake;

# ([command, time, digest], ...): what the node was sent, in order
sub log {
    my ($self) = @_;
    open my $fh, '<', $self->{logfile} or return ();
    return map { [split ' '] } <$fh>;
}

1;
