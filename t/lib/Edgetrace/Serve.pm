package Edgetrace::Serve;

# edgetrace serve from the tests: the command on a free loopback port,
# with its database in a temporary directory, and its API read over HTTP.
#
#   my $s = start_serve($redis, args => ['--batch', 10]);
#   my ($status, $json, $body) = $s->get('/api/services');
#   $s->wait_status(sub { $_[0]{counters}{spansStored} >= 4 });
#   $s->port; $s->db; $s->proc (an Edgetrace::Cli process); $s->stop
#   ok(all_acked($redis->client, $key));  # nothing pending, within 10s

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();
use JSON::PP ();

use Edgetrace::Test ();
use Edgetrace::Cli ();

our @EXPORT_OK = qw(start_serve all_acked);


sub start_serve {
    my ($redis, %o) = @_;
    my $port = $o{port} || Edgetrace::Test::free_port();
    my $dir = $o{dir} || File::Temp::tempdir('et-serve-XXXXXX', TMPDIR => 1,
                                             CLEANUP => !$ENV{EDGETRACE_KEEP});
    my $db = $o{db} || "$dir/spans.db";
    my $p = Edgetrace::Cli::start_cli($redis, @{ $o{global} || [] }, 'serve',
                                      '--db', $db, '--listen',
                                      "127.0.0.1:$port",
                                      @{ $o{args} || [] });
    Edgetrace::Test::wait_port($port, 10, $p->pid);
    return bless { port => $port, db => $db, dir => $dir, proc => $p },
                 'Edgetrace::Serve::Process';
}

# serve's group has nothing pending on $key (default edgetrace:spans): a
# commit is counted before its XACK, so this waits for it
sub all_acked {
    my ($client, $key) = @_;
    return Edgetrace::Test::wait_until(sub {
        !$client->xpending($key // 'edgetrace:spans', 'edgetrace-serve')->[0];
    }, 10);
}


package Edgetrace::Serve::Process;

sub port { $_[0]{port} }
sub db   { $_[0]{db} }
sub dir  { $_[0]{dir} }
sub proc { $_[0]{proc} }
sub stop { $_[0]{proc}->kill('TERM') }

# GET (or another method): (status, the JSON decoded or undef, the body)
sub get {
    my ($self, $path, %o) = @_;
    my $r = Edgetrace::Test::http_get($self->{port}, $path, %o);
    my $json = eval { JSON::PP->new->utf8->decode($r->{body}) };
    return ($r->{status}, $json, $r->{body}, $r);
}

# /api/edgetrace/status's data, once $cond holds for it (undef after 15s)
sub wait_status {
    my ($self, $cond, $timeout) = @_;
    my $last;
    Edgetrace::Test::wait_until(sub {
        my ($st, $j) = $self->get('/api/edgetrace/status');
        $last = $j->{data} if $st == 200;
        $last && $cond->($last);
    }, $timeout || 15) or return undef;
    return $last;
}

1;
