package Edgetrace::Backend;

# Upstreams that speak what nginx's other upstream modules speak, each
# recording what it received, as the HTTP backend of Edgetrace::Test does:
#
#   my $f = start_fastcgi();   # a FastCGI responder (fastcgi_pass)
#   my $u = start_uwsgi();     # a uwsgi server (uwsgi_pass)
#   my $c = start_scgi();      # an SCGI server (scgi_pass)
#       ->port ->requests ->clear ->wait_requests ->stop, as start_backend;
#       each request: { params => [[name, value], ...], body_length }
#       param_values($req, 'HTTP_TRACEPARENT'): every value of one param
#       A request for /status/NNN is answered NNN, anything else 200;
#       the body lists the params ("name=value", one a line).
#
#   my $n = start_echo_nginx(listen => 'http2');   # h2c (grpc_pass)
#   my $s = start_echo_nginx(listen => 'ssl', dir => $d);   # TLS
#       a plain nginx (no edgetrace) that answers 200 and records each
#       request: { method, uri, version, scheme, headers => [[n, v], ...] }
#       with the headers that carry trace context, when sent.  With ssl,
#       a certificate from self_signed() is in the nginx prefix.
#
# Core Perl only; the processes are the harness's, stopped with the others.

use strict;
use warnings;

use Exporter 'import';
use Edgetrace::Test qw(start_backend start_nginx backend_log);

our @EXPORT_OK = qw(start_fastcgi start_uwsgi start_scgi start_echo_nginx
                    param_values self_signed);

our %EXPORT_TAGS = (all => \@EXPORT_OK);

sub param_values {
    my ($req, $name) = @_;
    return map { $_->[1] } grep { $_->[0] eq $name } @{ $req->{params} };
}

sub _status_of {
    my ($params) = @_;
    my ($uri) = map { $_->[1] } grep { $_->[0] eq 'REQUEST_URI' } @$params;
    return ($uri // '') =~ m{/status/(\d{3})} ? $1 : 200;
}

sub _write_all {
    my ($c, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $w = syswrite($c, $data, length($data) - $off, $off);
        return 0 unless $w;
        $off += $w;
    }
    return 1;
}

sub _body_of {
    my ($params) = @_;
    return join '', map { "$_->[0]=$_->[1]\n" } @$params;
}

# the CGI response FastCGI and SCGI answer with
sub _cgi_response {
    my ($params) = @_;
    my $body = _body_of($params);
    return "Status: " . _status_of($params) . "\r\n"
         . "Content-Type: text/plain\r\n"
         . "Content-Length: " . length($body) . "\r\n\r\n" . $body;
}


# ---------------------------------------------------------------------------
# FastCGI: records of 8-byte headers (version 1, type, request id, content
# length, padding); a responder reads BEGIN_REQUEST, PARAMS up to an empty
# one, STDIN up to an empty one, and answers STDOUT (a CGI response), an
# empty STDOUT and END_REQUEST

use constant { FCGI_BEGIN_REQUEST => 1, FCGI_END_REQUEST => 3,
               FCGI_PARAMS => 4, FCGI_STDIN => 5, FCGI_STDOUT => 6,
               FCGI_KEEP_CONN => 1 };

sub start_fastcgi { start_backend(conn => \&_fastcgi_conn) }

sub _fcgi_record {
    my ($c, $buf) = @_;
    my $h = Edgetrace::Test::_backend_read_n($c, $buf, 8) // return;
    my ($version, $type, $id, $len, $pad) = unpack 'CCnnC', $h;
    die "fastcgi: version $version\n" unless $version == 1;
    my $content = Edgetrace::Test::_backend_read_n($c, $buf, $len + $pad)
                  // return;
    return ($type, $id, substr($content, 0, $len));
}

sub _fcgi_write {
    my ($c, $type, $id, $content) = @_;
    return _write_all($c, pack('CCnnCC', 1, $type, $id, length $content, 0, 0)
                          . $content);
}

# FastCGI name-value pairs: each length in 1 byte, or in 4 with the top bit
sub _fcgi_pairs {
    my ($data) = @_;
    my @pairs;
    while (length $data) {
        my @len;
        for (1 .. 2) {
            my $b = unpack 'C', $data;
            if ($b & 0x80) {
                push @len, unpack('N', substr($data, 0, 4, '')) & 0x7fffffff;
            } else {
                push @len, $b;
                substr($data, 0, 1, '');
            }
        }
        push @pairs, [substr($data, 0, $len[0], ''),
                      substr($data, 0, $len[1], '')];
    }
    return @pairs;
}

sub _fastcgi_conn {
    my ($c, $log) = @_;
    my $buf = '';

    while (1) {
        my ($type, $id, $content) = _fcgi_record($c, \$buf) or return;
        die "fastcgi: record $type before BEGIN_REQUEST\n"
            unless $type == FCGI_BEGIN_REQUEST;
        my (undef, $flags) = unpack 'nC', $content;

        my ($params, $stdin) = ('', '');
        my ($params_done, $stdin_done) = (0, 0);
        while (!$stdin_done) {
            my ($t, undef, $data) = _fcgi_record($c, \$buf) or return;
            if ($t == FCGI_PARAMS) {
                if (length $data) {
                    $params .= $data;
                } else {
                    $params_done = 1;
                }
            } elsif ($t == FCGI_STDIN) {
                if (length $data) {
                    $stdin .= $data;
                } else {
                    $stdin_done = 1;
                }
            }
        }
        die "fastcgi: STDIN ended before PARAMS\n" unless $params_done;

        my @params = _fcgi_pairs($params);
        backend_log($log, { params => \@params,
                            body_length => length $stdin });

        my $out = _cgi_response(\@params);
        while (length $out) {
            _fcgi_write($c, FCGI_STDOUT, $id, substr($out, 0, 32768, ''))
                or return;
        }
        _fcgi_write($c, FCGI_STDOUT, $id, '') or return;
        _fcgi_write($c, FCGI_END_REQUEST, $id, pack('NCx3', 0, 0)) or return;

        return unless $flags & FCGI_KEEP_CONN;
    }
}


# ---------------------------------------------------------------------------
# uwsgi: a 4-byte header (modifier1, the vars' size little-endian,
# modifier2), the vars (each name and value after its 16-bit little-endian
# length), then the body; the answer is an HTTP response, and the
# connection closes

sub start_uwsgi { start_backend(conn => \&_uwsgi_conn) }

sub _uwsgi_conn {
    my ($c, $log) = @_;
    my $buf = '';

    my $h = Edgetrace::Test::_backend_read_n($c, \$buf, 4) // return;
    my ($mod1, $size, $mod2) = unpack 'CvC', $h;
    my $vars = Edgetrace::Test::_backend_read_n($c, \$buf, $size) // return;

    my @params;
    while (length $vars) {
        my $n = unpack 'v', substr($vars, 0, 2, '');
        my $name = substr($vars, 0, $n, '');
        my $m = unpack 'v', substr($vars, 0, 2, '');
        push @params, [$name, substr($vars, 0, $m, '')];
    }

    my ($cl) = map { $_->[1] } grep { $_->[0] eq 'CONTENT_LENGTH' } @params;
    my $body_in = '';
    if ($cl) {
        $body_in = Edgetrace::Test::_backend_read_n($c, \$buf, $cl) // return;
    }

    backend_log($log, { params => \@params, modifier1 => $mod1,
                        modifier2 => $mod2, body_length => length $body_in });

    my $status = _status_of(\@params);
    my $body = _body_of(\@params);
    _write_all($c, "HTTP/1.1 $status Status\r\n"
                   . "Content-Type: text/plain\r\n"
                   . "Content-Length: " . length($body) . "\r\n"
                   . "Connection: close\r\n\r\n" . $body);
}


# ---------------------------------------------------------------------------
# SCGI: a netstring ("<length>:" the headers ",") of NUL-terminated names and
# values, CONTENT_LENGTH first, then the body; the answer is a CGI response,
# and the connection closes

sub start_scgi { start_backend(conn => \&_scgi_conn) }

sub _scgi_conn {
    my ($c, $log) = @_;
    my $buf = '';

    my $len = Edgetrace::Test::_backend_read_line($c, \$buf, ':')
              // return;
    die "scgi: bad netstring length\n" unless $len =~ /^(\d+):\z/;
    my $headers = Edgetrace::Test::_backend_read_n($c, \$buf, $1 + 1)
                  // return;
    die "scgi: the netstring does not end with ','\n"
        unless chop($headers) eq ',';

    my @fields = split /\0/, $headers, -1;
    pop @fields;    # after the last NUL
    my @params;
    push @params, [splice @fields, 0, 2] while @fields;

    my $body_in = Edgetrace::Test::_backend_read_n($c, \$buf,
                                                    $params[0][1]) // return;
    backend_log($log, { params => \@params, body_length => length $body_in });
    _write_all($c, _cgi_response(\@params));
}


# ---------------------------------------------------------------------------
# a second nginx as the upstream, for protocols core Perl does not speak

# the request headers that carry trace context (nginx logs one value each)
my @echo_headers = qw(traceparent tracestate b3 x-b3-traceid x-b3-spanid
                      x-b3-sampled);

sub start_echo_nginx {
    my (%o) = @_;
    my $listen = $o{listen} // '';
    my ($ssl, %files) = ('');

    my $vars = join ',', map { (my $v = $_) =~ tr/-/_/;
                               qq{["$_","\$http_$v"]} } @echo_headers;

    if ($listen =~ /\bssl\b/) {
        %files = self_signed();
        $ssl = "ssl_certificate %%PREFIX%%/html/cert.pem;\n"
             . "        ssl_certificate_key %%PREFIX%%/html/key.pem;";
    }

    my $ngx = start_nginx(module => 0, files => \%files, conf => <<"EOF");
    log_format echo escape=json
        '{"method":"\$request_method","uri":"\$request_uri",'
        '"version":"\$server_protocol","scheme":"\$scheme",'
        '"headers":[$vars]}';

    server {
        listen 127.0.0.1:%%PORT%% $listen;
        $ssl
        access_log %%PREFIX%%/requests.log echo;

        location / {
            return 200 "echo\\n";
        }
        location ~ /status/404\$ {
            return 404;
        }
        location ~ /status/503\$ {
            return 503;
        }
    }
EOF

    return bless { port => $ngx->port, pid => $ngx->pid, nginx => $ngx,
                   log => $ngx->prefix . '/requests.log' },
                 'Edgetrace::Backend::Nginx';
}

# self_signed(): a certificate for 127.0.0.1 and its key, made now (nothing
# secret is kept); returns ('cert.pem' => PEM, 'key.pem' => PEM), as
# start_nginx's files take them
sub self_signed {
    my $dir = Edgetrace::Test::_tempdir('et-cert-XXXXXX');
    system("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256"
           . " -nodes -days 1 -subj /CN=127.0.0.1"
           . " -addext subjectAltName=IP:127.0.0.1"
           . " -keyout $dir/key.pem -out $dir/cert.pem 2>$dir/err") == 0
        or die "openssl could not make a certificate (scripts/deps test"
               . " installs openssl):\n" . Edgetrace::Test::_slurp("$dir/err");
    return map { $_ => Edgetrace::Test::_slurp("$dir/$_") }
           qw(cert.pem key.pem);
}


package Edgetrace::Backend::Nginx;

our @ISA = ('Edgetrace::Test::Backend');

sub nginx { $_[0]{nginx} }
sub stop { $_[0]{nginx}->stop }

# headers nginx logged empty were not sent
sub requests {
    my ($self) = @_;
    my @r = $self->SUPER::requests;
    for my $r (@r) {
        $r->{headers} = [grep { length $_->[1] } @{ $r->{headers} }];
    }
    return @r;
}

1;
