#!/usr/bin/perl
# HTTP/2 clients, cleartext with prior knowledge (h2c) and over TLS (ALPN):
# the W3C context is continued and forwarded to the HTTP/1.x upstream once,
# tracestate lines (separate HTTP/2 fields) are one list, and the server
# span says network.protocol.version "2" with the status the client got.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Temp ();
use Edgetrace::Test qw(:all);

for my $prog ('curl', 'openssl') {
    system("command -v $prog >/dev/null") == 0
        or die "$prog is missing (scripts/deps test installs curl)\n";
}

sub slurp {
    open my $fh, '<', $_[0] or die "$_[0]: $!";
    local $/;
    return scalar <$fh>;
}

# a self-signed certificate for 127.0.0.1, made for this test
my $dir = File::Temp::tempdir('et-h2-XXXXXX', TMPDIR => 1, CLEANUP => 1);
system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $dir/key.pem"
       . " -out $dir/cert.pem -days 1 -subj /CN=127.0.0.1 2>$dir/err") == 0
    or die "openssl could not make a certificate:\n" . slurp("$dir/err");

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, ports => { TLS => free_port() },
                      files => { 'cert.pem' => slurp("$dir/cert.pem"),
                                 'key.pem' => slurp("$dir/key.pem") },
                      conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;
        listen 127.0.0.1:%%PORT2%% http2;
        listen 127.0.0.1:%%TLS%% ssl http2;

        ssl_certificate %%PREFIX%%/html/cert.pem;
        ssl_certificate_key %%PREFIX%%/html/key.pem;

        location / {
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /fixed {
            proxy_set_header traceparent $edgetrace_traceparent;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
    }
EOF

my %how = (
    h2c => [['--http2-prior-knowledge'],
            'http://127.0.0.1:' . $ngx->ports->{PORT2}],
    tls => [['--http2', '--insecure'],
            'https://127.0.0.1:' . $ngx->ports->{TLS}],
);

# one request with curl: (status, the HTTP version curl used)
sub h2_get {
    my ($how, $path, @headers) = @_;
    my ($opt, $base) = @{ $how{$how} };
    open my $fh, '-|', 'curl', '--silent', '--show-error', '--max-time', '10',
         @$opt, '--output', '/dev/null',
         '--write-out', '%{http_code} %{http_version}',
         (map { ('--header', "$_->[0]: $_->[1]") } @headers), "$base$path"
        or die "curl: $!";
    my $out = <$fh> // '';
    close $fh;
    return split / /, $out;
}

for my $how ('h2c', 'tls') {
    my $T = new_trace_id();
    my $P = new_span_id();

    # --- continued, forwarded once, tracestate lines joined
    $b->clear;
    my ($status, $version) = h2_get($how, '/api/h2',
                                    ['traceparent', "00-$T-$P-01"],
                                    ['tracestate', 'congo=t61rcWkgMzE'],
                                    ['tracestate', 'rojo=1,congo=2']);
    is("$status $version", '200 2', "$how: answered 200 over HTTP/2");

    my ($up) = $b->wait_requests(1);
    my @tp = Edgetrace::Test::Backend->header_values($up, 'traceparent');
    my @ts = Edgetrace::Test::Backend->header_values($up, 'tracestate');
    is(scalar @tp, 1, "$how: one traceparent upstream");
    my (undef, $t, $s, $flags) = parse_traceparent($tp[0]);
    is("$t $flags", "$T 01", "$how: the client's trace, sampled");
    is_deeply(\@ts, ['congo=t61rcWkgMzE,rojo=1'],
              "$how: the tracestate fields are one list, forwarded once");

    my @spans = trace_spans($redis->port, $T, count => 2);
    my ($server) = grep { $_->{kind} eq 'server' } @spans;
    my ($client) = grep { $_->{kind} eq 'client' } @spans;
    is($server->{parent_id}, $P, "$how: the server span's parent");
    is($client->{parent_id}, $server->{span_id},
       "$how: the client span is the server span's child");
    is($s, $client->{span_id}, "$how: upstream's parent is the client span");
    is($server->{'network.protocol.version'}, '2',
       "$how: network.protocol.version 2");
    is($server->{'url.scheme'}, $how eq 'tls' ? 'https' : 'http',
       "$how: url.scheme");
    is($server->{'server.address'}, '127.0.0.1',
       "$how: server.address from :authority");
    is($server->{'url.path'}, '/api/h2', "$how: url.path");
    is($server->{'http.response.status_code'}, '200',
       "$how: status code 200");
    is($server->{tracestate}, 'congo=t61rcWkgMzE,rojo=1',
       "$how: the span's tracestate");

    # --- an upstream error: the status the client got, on both spans
    $T = new_trace_id();
    $b->clear;
    ($status, $version) = h2_get($how, '/status/503',
                                 ['traceparent', "00-$T-$P-01"]);
    is("$status $version", '503 2', "$how: 503 over HTTP/2");
    @spans = trace_spans($redis->port, $T, count => 2);
    ($server) = grep { $_->{kind} eq 'server' } @spans;
    ($client) = grep { $_->{kind} eq 'client' } @spans;
    is_deeply([@$server{qw(http.response.status_code status error.type)}],
              ['503', 'error', '503'], "$how: server span: 503, error");
    is($client->{'http.response.status_code'}, '503',
       "$how: client span: 503");

    # --- the admin's proxy_set_header wins over HTTP/2 fields too: once
    $T = new_trace_id();
    $b->clear;
    ($status) = h2_get($how, '/fixed', ['traceparent', "00-$T-$P-01"]);
    is($status, 200, "$how: proxy_set_header traceparent: answered");
    ($up) = $b->wait_requests(1);
    @tp = Edgetrace::Test::Backend->header_values($up, 'traceparent');
    @spans = trace_spans($redis->port, $T, count => 2);
    ($client) = grep { $_->{kind} eq 'client' } @spans;
    is_deeply(\@tp, ["00-$T-$client->{span_id}-01"],
              "$how: proxy_set_header traceparent: exactly one upstream");

    # --- two traceparent fields: invalid, a new root, only ours upstream
    $T = new_trace_id();
    $b->clear;
    ($status) = h2_get($how, '/api/two', ['traceparent', "00-$T-$P-01"],
                       ['traceparent', "00-$T-$P-01"]);
    is($status, 200, "$how: two traceparents: answered");
    ($up) = $b->wait_requests(1);
    @tp = Edgetrace::Test::Backend->header_values($up, 'traceparent');
    is(scalar @tp, 1, "$how: two traceparents: one upstream");
    ($t) = (parse_traceparent($tp[0]))[1];
    isnt($t, $T, "$how: two traceparents: a new trace");
    @spans = trace_spans($redis->port, $t, count => 2);
    ($server) = grep { $_->{kind} eq 'server' } @spans;
    ok($server && !exists $server->{parent_id},
       "$how: two traceparents: a root span in Redis");
}

is_deeply([$ngx->crashes], [], 'no worker crashed');

done_testing;
