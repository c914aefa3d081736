package Edgetrace::Sink;

# A stand-in for the collectors `edgetrace export` sends to: an HTTP/1.1
# server on loopback that checks every payload against the format its
# path names (POST /v1/traces: OTLP/HTTP JSON; POST /api/v2/spans: Zipkin
# v2 JSON), records it, and answers as told.
#
#   my $sink = start_sink();            # ->port ->url($path) ->pid
#   $sink->respond(500);                # or 200, 400, 'hang', 'partial'
#                                       # (OTLP partialSuccess, 1 span)
#   my @r = $sink->requests;            # { method, path, headers (lc
#                                       #   name => value), content_type,
#                                       #   status, body, doc, problems }
#   my @s = $sink->spans;               # spans of accepted requests, each
#                                       # with _service (OTLP resource)
#   my @p = $sink->problems;            # format problems, all requests
#
# A valid payload is answered with the mode's status (200 for OTLP, 202
# for Zipkin when the mode is 200); an invalid one with 400 and the
# problems, as a real collector would.  Core Perl only; the process is
# registered with Edgetrace::Test, which stops it by PID.

use strict;
use warnings;

use B ();
use Encode ();
use Exporter 'import';
use Fcntl qw(:flock SEEK_END);
use File::Temp ();
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Time::HiRes ();

use Edgetrace::Test ();

our @EXPORT_OK = qw(start_sink validate_otlp validate_zipkin);


sub start_sink {
    my (%o) = @_;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                       LocalPort => 0, Proto => 'tcp',
                                       Listen => 128, ReuseAddr => 1)
        or die "start_sink: $!";
    my $dir = File::Temp::tempdir('et-sink-XXXXXX', TMPDIR => 1,
                                  CLEANUP => !$ENV{EDGETRACE_KEEP});
    my $self = bless { port => $listen->sockport, dir => $dir,
                       log => "$dir/requests.log" }, __PACKAGE__;
    $self->respond($o{respond} // 200);
    open my $t, '>', $self->{log} or die "$self->{log}: $!";
    close $t;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', "$dir/sink.err";
        eval { _serve($self, $listen) };
        POSIX::_exit(0);
    }
    close $listen;
    $self->{pid} = $pid;
    Edgetrace::Test::register_pid($pid, 'sink');
    return $self;
}

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }
sub url  { "http://127.0.0.1:$_[0]{port}" . ($_[1] // '') }
sub stop { Edgetrace::Test::stop_pid($_[0]{pid}) }

# what the next requests are answered: a status, or 'hang' (read the
# request, answer nothing, keep the connection open)
sub respond {
    my ($self, $mode) = @_;
    my $f = "$self->{dir}/mode";
    open my $fh, '>', "$f.tmp" or die "$f.tmp: $!";
    print $fh $mode;
    close $fh;
    rename "$f.tmp", $f or die "$f: $!";
}

sub requests {
    my ($self) = @_;
    my $json = JSON::PP->new->ascii;
    my @r;
    open my $fh, '<', $self->{log} or die "$self->{log}: $!";
    while (my $l = <$fh>) {
        chomp $l;
        next unless length $l;
        my $rec = $json->decode($l);
        # the body was logged as code points 0-255: bytes again
        utf8::downgrade($rec->{body});
        $rec->{doc} = eval {
            JSON::PP->new->utf8->decode($rec->{body})
        };
        push @r, $rec;
    }
    return @r;
}

# waits until at least $n requests arrived; returns them all
sub wait_requests {
    my ($self, $n, $timeout) = @_;
    my @r;
    Edgetrace::Test::wait_until(sub { (@r = $self->requests) >= $n },
                                $timeout || 10);
    return @r;
}

sub problems {
    my ($self) = @_;
    return map { @{ $_->{problems} } } $self->requests;
}

# the spans of every accepted (2xx) request, in arrival order; OTLP spans
# carry their resource's service.name as _service
sub spans {
    my ($self) = @_;
    my @s;
    for my $r ($self->requests) {
        next unless $r->{status} =~ /^2/ && $r->{doc};
        if ($r->{path} eq '/api/v2/spans') {
            push @s, @{ $r->{doc} };
            next;
        }
        for my $rs (@{ $r->{doc}{resourceSpans} }) {
            my ($svc) = map { $_->{value}{stringValue} }
                        grep { $_->{key} eq 'service.name' }
                        @{ $rs->{resource}{attributes} };
            for my $ss (@{ $rs->{scopeSpans} }) {
                push @s, map { { %$_, _service => $svc } } @{ $ss->{spans} };
            }
        }
    }
    return @s;
}


# ---------------------------------------------------------------------------
# the server

sub _serve {
    my ($self, $listen) = @_;
    my $stop = 0;
    $SIG{CHLD} = sub { 1 while waitpid(-1, POSIX::WNOHANG()) > 0 };
    $SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
    my %kids;
    while (!$stop) {
        my $c = $listen->accept or next;
        my $k = fork;
        if (!defined $k) { close $c; next }
        if ($k == 0) {
            $SIG{TERM} = 'DEFAULT';
            close $listen;
            eval { _conn($self, $c) };
            POSIX::_exit(0);
        }
        $kids{$k} = 1;
        close $c;
    }
    kill 'KILL', keys %kids;
    POSIX::_exit(0);
}

# the harness's backend reads HTTP the same way
sub _line { Edgetrace::Test::_backend_read_line(@_) }

sub _mode {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/mode" or return 200;
    my $m = <$fh> // 200;
    return $m;
}

sub _conn {
    my ($self, $c) = @_;
    my $buf = '';
    while (1) {
        my $line = _line($c, \$buf) // return;
        next if $line =~ /^\r?\n$/;
        my ($method, $path) = split / /, $line;
        my %h;
        while (1) {
            my $l = _line($c, \$buf) // return;
            $l =~ s/\r?\n\z//;
            last if $l eq '';
            my ($n, $v) = split /:\s*/, $l, 2;
            $h{lc $n} = $v // '';
        }
        my $body = Edgetrace::Test::_backend_read_n($c, \$buf,
                       $h{'content-length'} // 0) // return;

        my $mode = _mode($self);
        my @problems = _check($method, $path, $h{'content-type'}, $body);
        # 'partial': an OTLP 200 that says one span was rejected
        my $partial = $mode eq 'partial';
        my $status = $partial ? 200 : $mode;
        $status = 400 if @problems && $mode =~ /^2/;
        $status = 202 if $status eq '200' && !@problems
                         && $path eq '/api/v2/spans';

        my $rec = JSON::PP->new->ascii->canonical->encode({
            method => $method, path => $path, headers => \%h,
            content_type => $h{'content-type'}, status => "$status",
            body => $body, problems => \@problems,
            time => Time::HiRes::time() });
        if (open my $fh, '>>', $self->{log}) {
            flock $fh, LOCK_EX;
            seek $fh, 0, SEEK_END;
            print $fh $rec, "\n";
            close $fh;
        }

        if ($mode eq 'hang') {
            sleep 3600;
            return;
        }

        my $out = @problems ? join("\n", @problems) . "\n"
                : $partial ? '{"partialSuccess":{"rejectedSpans":"1",'
                             . '"errorMessage":"span too old"}}'
                : $status =~ /^2/ && $path eq '/v1/traces' ? '{}'
                : $status =~ /^2/ ? ''
                : "the sink was told to answer $status\n";
        my $resp = "HTTP/1.1 $status Sink\r\n"
                 . "Content-Type: "
                 . ($out =~ /^\{/ ? 'application/json' : 'text/plain') . "\r\n"
                 . "Content-Length: " . length($out) . "\r\n\r\n" . $out;
        syswrite($c, $resp) or return;
    }
}


# ---------------------------------------------------------------------------
# the formats

sub _check {
    my ($method, $path, $ctype, $body) = @_;
    my @p;
    push @p, "method $method, not POST" unless $method eq 'POST';
    push @p, "content type " . ($ctype // 'none') . ", not application/json"
        unless ($ctype // '') =~ m{^application/json\b};
    my $text = eval { Encode::decode('UTF-8', my $copy = $body,
                                     Encode::FB_CROAK()) };
    return (@p, "the body is not valid UTF-8") unless defined $text;
    my $doc = eval { JSON::PP->new->decode($text) };
    return (@p, "the body is not JSON: $@") unless defined $doc;
    if ($path eq '/v1/traces') {
        push @p, validate_otlp($doc);
    } elsif ($path eq '/api/v2/spans') {
        push @p, validate_zipkin($doc);
    } else {
        push @p, "unknown path $path";
    }
    return @p;
}

# true for a JSON number (not a string of digits)
sub _num {
    my ($v) = @_;
    return 0 unless defined $v && !ref $v;
    my $f = B::svref_2object(\$v)->FLAGS;
    return ($f & (B::SVp_IOK() | B::SVp_NOK())) && !($f & B::SVp_POK());
}

sub _str {
    my ($v) = @_;
    return defined $v && !ref $v && !_num($v);
}

sub _keys {
    my ($what, $h, @allowed) = @_;
    my %ok = map { $_ => 1 } @allowed;
    return map { "$what: unknown field $_" } grep { !$ok{$_} } sort keys %$h;
}

sub _otlp_attrs {
    my ($what, $a) = @_;
    return "$what: attributes is not a list" unless ref $a eq 'ARRAY';
    my @p;
    for my $kv (@$a) {
        unless (ref $kv eq 'HASH' && _str($kv->{key})
                && ref $kv->{value} eq 'HASH')
        {
            push @p, "$what: an attribute is not {key, value}";
            next;
        }
        push @p, _keys("$what attribute", $kv, qw(key value));
        my @t = keys %{ $kv->{value} };
        if (@t != 1) {
            push @p, "$what: attribute $kv->{key} has " . scalar(@t)
                . " value types";
            next;
        }
        my $v = $kv->{value}{$t[0]};
        if ($t[0] eq 'stringValue') {
            push @p, "$what: $kv->{key} stringValue is not a string"
                unless _str($v);
        } elsif ($t[0] eq 'intValue') {
            push @p, "$what: $kv->{key} intValue is not an integer"
                unless defined $v && !ref $v && $v =~ /^-?\d+\z/;
        } elsif ($t[0] !~ /^(boolValue|doubleValue|arrayValue|kvlistValue|bytesValue)\z/) {
            push @p, "$what: $kv->{key} has unknown type $t[0]";
        }
    }
    return @p;
}

sub _u64s {
    my ($v) = @_;
    return defined $v && !ref $v && $v =~ /^\d+\z/;
}

# an OTLP ExportTraceServiceRequest, JSON encoding (protobuf JSON mapping,
# OTLP specification: hex ids, enums as integers)
sub validate_otlp {
    my ($doc) = @_;
    return ("OTLP: not an object") unless ref $doc eq 'HASH';
    my @p = _keys('OTLP', $doc, 'resourceSpans');
    my $rss = $doc->{resourceSpans};
    return (@p, "OTLP: resourceSpans is not a non-empty list")
        unless ref $rss eq 'ARRAY' && @$rss;
    for my $rs (@$rss) {
        push @p, _keys('resourceSpans', $rs, qw(resource scopeSpans
                                                  schemaUrl));
        my $attrs = $rs->{resource}{attributes};
        push @p, _otlp_attrs('resource', $attrs);
        my @svc = grep { $_->{key} eq 'service.name' } @{ $attrs || [] };
        push @p, "resource: no service.name stringValue"
            unless @svc == 1 && _str($svc[0]{value}{stringValue});
        for my $ss (@{ $rs->{scopeSpans} || [] }) {
            push @p, _keys('scopeSpans', $ss, qw(scope spans schemaUrl));
            push @p, "scope: no name" unless _str($ss->{scope}{name});
            push @p, "scopeSpans: spans is not a non-empty list"
                unless ref $ss->{spans} eq 'ARRAY' && @{ $ss->{spans} };
            for my $s (@{ $ss->{spans} || [] }) {
                push @p, _otlp_span($s);
            }
        }
        push @p, "resourceSpans: scopeSpans is not a non-empty list"
            unless ref $rs->{scopeSpans} eq 'ARRAY' && @{ $rs->{scopeSpans} };
    }
    return @p;
}

sub _otlp_span {
    my ($s) = @_;
    my $id = $s->{spanId} // '?';
    my $w = "span $id";
    my @p = _keys($w, $s, qw(traceId spanId parentSpanId traceState name
                             kind startTimeUnixNano endTimeUnixNano
                             attributes droppedAttributesCount events
                             droppedEventsCount links droppedLinksCount
                             status flags));
    push @p, "$w: traceId is not 32 hex digits"
        unless ($s->{traceId} // '') =~ /^[0-9a-f]{32}\z/
               && $s->{traceId} !~ /^0+\z/;
    push @p, "$w: spanId is not 16 hex digits"
        unless $id =~ /^[0-9a-f]{16}\z/ && $id !~ /^0+\z/;
    push @p, "$w: parentSpanId is not 16 hex digits"
        if exists $s->{parentSpanId}
           && $s->{parentSpanId} !~ /^([0-9a-f]{16})?\z/;
    push @p, "$w: name is not a string" unless _str($s->{name});
    push @p, "$w: kind is not an integer 0-5"
        unless _num($s->{kind}) && $s->{kind} =~ /^[0-5]\z/;
    for my $t (qw(startTimeUnixNano endTimeUnixNano)) {
        push @p, "$w: $t is not a decimal string" unless _u64s($s->{$t})
                                                      && _str($s->{$t});
    }
    push @p, "$w: ends before it starts"
        if _u64s($s->{startTimeUnixNano}) && _u64s($s->{endTimeUnixNano})
           && length($s->{endTimeUnixNano}) == length($s->{startTimeUnixNano})
           && $s->{endTimeUnixNano} lt $s->{startTimeUnixNano};
    push @p, _otlp_attrs($w, $s->{attributes}) if exists $s->{attributes};
    for my $e (@{ $s->{events} || [] }) {
        push @p, _keys("$w event", $e, qw(timeUnixNano name attributes
                                          droppedAttributesCount));
        push @p, "$w: event timeUnixNano is not a decimal string"
            unless _u64s($e->{timeUnixNano});
        push @p, "$w: event name is not a string" unless _str($e->{name});
        push @p, _otlp_attrs("$w event", $e->{attributes})
            if exists $e->{attributes};
    }
    if (exists $s->{status}) {
        push @p, _keys("$w status", $s->{status}, qw(code message));
        push @p, "$w: status code is not 0, 1 or 2"
            if exists $s->{status}{code}
               && !(_num($s->{status}{code})
                    && $s->{status}{code} =~ /^[012]\z/);
    }
    return @p;
}

sub _zipkin_endpoint {
    my ($w, $e) = @_;
    return "$w: not an object" unless ref $e eq 'HASH';
    my @p = _keys($w, $e, qw(serviceName ipv4 ipv6 port));
    push @p, "$w: serviceName is not a string"
        if exists $e->{serviceName} && !_str($e->{serviceName});
    push @p, "$w: ipv4 is not an IPv4 address"
        if exists $e->{ipv4} && $e->{ipv4} !~ /^\d+\.\d+\.\d+\.\d+\z/;
    push @p, "$w: ipv6 is not a string"
        if exists $e->{ipv6} && !_str($e->{ipv6});
    push @p, "$w: port is not a number 1-65535"
        if exists $e->{port}
           && !(_num($e->{port}) && $e->{port} >= 1 && $e->{port} <= 65535);
    return @p;
}

# a Zipkin v2 span list (zipkin2 API, POST /api/v2/spans)
sub validate_zipkin {
    my ($doc) = @_;
    return ("Zipkin: not a non-empty list")
        unless ref $doc eq 'ARRAY' && @$doc;
    my @p;
    for my $s (@$doc) {
        unless (ref $s eq 'HASH') {
            push @p, "Zipkin: a span is not an object";
            next;
        }
        my $w = "span " . ($s->{id} // '?');
        push @p, _keys($w, $s, qw(traceId id parentId name kind timestamp
                                  duration localEndpoint remoteEndpoint
                                  annotations tags debug shared));
        push @p, "$w: traceId is not 16 or 32 hex digits"
            unless ($s->{traceId} // '') =~ /^[0-9a-f]{16}([0-9a-f]{16})?\z/;
        push @p, "$w: id is not 16 hex digits"
            unless ($s->{id} // '') =~ /^[0-9a-f]{16}\z/;
        push @p, "$w: parentId is not 16 hex digits"
            if exists $s->{parentId} && $s->{parentId} !~ /^[0-9a-f]{16}\z/;
        push @p, "$w: kind is not SERVER, CLIENT, PRODUCER or CONSUMER"
            if exists $s->{kind}
               && ($s->{kind} // '') !~ /^(SERVER|CLIENT|PRODUCER|CONSUMER)\z/;
        push @p, "$w: name is not a string"
            if exists $s->{name} && !_str($s->{name});
        push @p, "$w: timestamp is not a number of microseconds"
            unless _num($s->{timestamp}) && $s->{timestamp} > 0;
        push @p, "$w: duration is not a number >= 1"
            unless _num($s->{duration}) && $s->{duration} >= 1;
        push @p, _zipkin_endpoint("$w localEndpoint", $s->{localEndpoint});
        push @p, _zipkin_endpoint("$w remoteEndpoint", $s->{remoteEndpoint})
            if exists $s->{remoteEndpoint};
        if (exists $s->{tags}) {
            if (ref $s->{tags} ne 'HASH') {
                push @p, "$w: tags is not an object";
            } else {
                push @p, map { "$w: tag $_ is not a string" }
                         grep { !_str($s->{tags}{$_}) } sort keys %{ $s->{tags} };
            }
        }
        for my $a (@{ $s->{annotations} || [] }) {
            push @p, _keys("$w annotation", $a, qw(timestamp value));
            push @p, "$w: annotation timestamp is not a number"
                unless _num($a->{timestamp});
            push @p, "$w: annotation value is not a string"
                unless _str($a->{value});
        }
    }
    return @p;
}

1;
