#!/usr/bin/perl
# mod_edgetrace configuration: every directive merged parent to child with
# a real unset state (EdgeTrace Off in a nested <Location> beats On above
# it, and the reverse), virtual hosts with their own service.name,
# EdgeTraceAttribute literals and expressions added up along the way, and
# a clear startup error for every malformed, out-of-range or misplaced
# directive (a service name over 255 bytes, a timeout over an hour).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);
use Edgetrace::Tls qw(make_pki);

# the line httpd names holds the directive at fault
sub names_its_line {
    my ($out, $name, $what) = @_;
    my ($line, $file) = $out =~ /Syntax error on line (\d+) of ([^:]+):/;
    my $text = '';
    if (defined $file && open my $fh, '<', $file) {
        my @lines = <$fh>;
        $text = $lines[$line - 1] // '';
    }
    like($text, qr/^\s*\Q$name\E\b/, "names its line: $what")
        or diag $out;
}

# --- startup errors: `apache2 -t` fails and says why
my @errors = (
    ['EdgeTrace maybe',                      qr/EdgeTrace.*On or Off/i],
    ['EdgeTraceRedis redis://h:99999',       qr/EdgeTraceRedis.*port/i],
    ['EdgeTraceRedis ftp://x',               qr/EdgeTraceRedis "ftp:\/\/x"/],
    ['EdgeTraceRedis redis://a:1,b:2',       qr/EdgeTraceRedis "redis:\/\/a:1,b:2": several hosts need cluster mode/],
    ['EdgeTraceRedis redis://a:1,b:2/3 cluster', qr/a cluster has database 0 only/],
    ['EdgeTraceRedis unix:/r.sock cluster',  qr/a cluster's seeds are "redis:\/\/host:port/],
    ['EdgeTraceRedis redis://a:1,a:1 cluster', qr/a seed is given twice/],
    ['EdgeTraceRedis redis://a:1 clustered', qr/EdgeTraceRedis: invalid parameter "clustered"/],
    ['EdgeTraceRedis redis://a:1 cluster x', qr/EdgeTraceRedis takes 1-2 arguments/],
    ['EdgeTraceStream k maxlen=x',           qr/EdgeTraceStream "maxlen=x"/],
    ['EdgeTraceStream k bogus=1',            qr/EdgeTraceStream "bogus=1"/],
    ['EdgeTraceStream ""',                   qr/EdgeTraceStream takes one, two or three arguments/],
    ['EdgeTraceStream k shards=0',           qr/EdgeTraceStream "shards=0": shards must be 1 to 256/],
    ['EdgeTraceStream k shards=257',         qr/EdgeTraceStream "shards=257": shards must be 1 to 256/],
    ['EdgeTraceStream k shards=x',           qr/EdgeTraceStream "shards=x": shards must be a decimal number/],
    ['EdgeTraceStream k shards=2 shards=4',  qr/EdgeTraceStream "shards=4": shards is duplicate/],
    ['EdgeTraceStream k maxlen=1 maxlen=1',  qr/EdgeTraceStream "maxlen=1": maxlen is duplicate/],
    ['EdgeTraceStream k maxlen=1 shards=2 x', qr/EdgeTraceStream takes one, two or three arguments/],
    ['EdgeTraceStream a{b} shards=2',        qr/EdgeTraceStream "a\{b\}": .*"\{".*hash tag/],
    ['EdgeTraceSample 1.5',                  qr/EdgeTraceSample "1.5"/],
    ['EdgeTraceSample -0',                   qr/EdgeTraceSample "-0"/],
    ['EdgeTraceSample nan',                  qr/EdgeTraceSample "nan"/],
    ['EdgeTraceContext trust',               qr/EdgeTraceContext "trust"/],
    ['EdgeTracePropagation w3c jaeger',      qr/EdgeTracePropagation "jaeger"/],
    ['EdgeTracePropagation w3c w3c',         qr/"w3c" is given twice/],
    ['EdgeTracePropagation',                 qr/EdgeTracePropagation needs/],
    ['EdgeTraceAttribute trace_id x',        qr/"trace_id".*reserved/],
    ['EdgeTraceAttribute event.0 x',         qr/"event\.0".*reserved/],
    ['EdgeTraceAttribute "a b" x',           qr/"a b".*printable/],
    ['EdgeTraceAttribute k "expr=%{"',       qr/cannot parse expression/],
    ["EdgeTraceAttribute k 1\nEdgeTraceAttribute k 2",
                                             qr/"k" is set twice/],
    ['EdgeTraceSpanName "expr=%{FOO"',       qr/cannot parse expression/],
    ['EdgeTraceServiceName ""',              qr/EdgeTraceServiceName takes one argument/],
    ['EdgeTraceServiceName ' . ('s' x 256),  qr/EdgeTraceServiceName "s{256}": must be 1 to 255 bytes/],
    ['EdgeTraceSpanName ""',                 qr/EdgeTraceSpanName takes one argument/],
    ['EdgeTraceValueMaxSize 100m',           qr/from 1 to 64k/],
    ['EdgeTraceValueMaxSize 0',              qr/from 1 to 64k/],
    ['EdgeTraceFlushInterval 5s',            qr/from 1ms to 1s/],
    ['EdgeTraceQueueSize 1x',                qr/EdgeTraceQueueSize "1x"/],
    ['EdgeTraceQueueSize 1k',                qr/EdgeTraceQueueSize "1k": must be at least 4k/],
    ['EdgeTraceValueMaxSize 100k',           qr/from 1 to 64k/],
    ['EdgeTraceFlushInterval 2s',            qr/EdgeTraceFlushInterval "2s": must be from 1ms to 1s/],
    ['EdgeTraceFlushInterval fast',          qr/EdgeTraceFlushInterval "fast"/],
    ['EdgeTraceRedisTimeout 0',              qr/EdgeTraceRedisTimeout "0": must be from 1ms to 1h/],
    ['EdgeTraceRedisTimeout 2h',             qr/EdgeTraceRedisTimeout "2h": must be from 1ms to 1h/],
    ['EdgeTraceRedisConnectTimeout 61mi',    qr/EdgeTraceRedisConnectTimeout "61mi": must be from 1ms to 1h/],
    ['EdgeTraceFlushTimeout 1x',             qr/EdgeTraceFlushTimeout "1x": must be a time such as 100ms or 5s/],
    ['EdgeTraceKeep status=6xx',             qr/EdgeTraceKeep "status=6xx": it is not a status/],
    ['EdgeTraceKeep status=99',              qr/EdgeTraceKeep "status=99": it is not a status/],
    ['EdgeTraceKeep slower=-1',              qr/EdgeTraceKeep "slower=-1": it /],
    ['EdgeTraceKeep slower=10x',             qr/EdgeTraceKeep "slower=10x": it has a unit other than/],
    ['EdgeTraceKeep slower=0',               qr/EdgeTraceKeep "slower=0": it must be longer than 0/],
    ['EdgeTraceKeep status=5xx 5xx',         qr/EdgeTraceKeep "5xx": a rule is status=CODE/],
    ['EdgeTraceKeep "expr=%{REQUEST_STATUS"', qr/EdgeTraceKeep: cannot parse expression/],
    ['EdgeTraceKeep',                        qr/EdgeTraceKeep requires at least one argument/],
    ['EdgeTraceSampleLimit 100',             qr/EdgeTraceSampleLimit "100": it is not a rate/],
    ['EdgeTraceSampleLimit 0/s',             qr/EdgeTraceSampleLimit "0\/s": it must be 1\/s to 1000000\/s/],
    ["<VirtualHost 127.0.0.1:%%PORT%%>\nEdgeTraceSampleLimit 10/s\n</VirtualHost>",
                                             qr/EdgeTraceSampleLimit cannot occur within <VirtualHost>/],
    ["<VirtualHost 127.0.0.1:%%PORT%%>\nEdgeTraceRedis redis://h\n</VirtualHost>",
                                             qr/EdgeTraceRedis cannot occur within <VirtualHost>/],
    ["<VirtualHost 127.0.0.1:%%PORT%%>\nEdgeTraceStream k\n</VirtualHost>",
                                             qr/EdgeTraceStream cannot occur within <VirtualHost>/],
    ["<Location />\nEdgeTraceRedis redis://h\n</Location>",
                                             qr/EdgeTraceRedis not allowed in <Location> context/],
    ["<Location />\nEdgeTraceServiceName x\n</Location>",
                                             qr/EdgeTraceServiceName not allowed in <Location> context/],
);

for my $case (@errors) {
    my ($conf, $want) = @$case;
    my ($rc, $out) = httpd_t(conf => $conf);
    (my $what = $conf) =~ s/\n/ | /g;
    isnt($rc, 0, "refused: $what");
    like($out, $want, "said why: $what") or diag $out;

    my ($name) = map { /^(\w+)/ } grep { !/^</ } split /\n/, $conf;
    names_its_line($out, $name, $what);
}

# --- TLS to Redis (docs/httpd.md "EdgeTraceRedisSSLCACertificateFile"):
# the files are read by apache2 -t, and each error names the line of the
# directive at fault, wherever it stands
my $pki = make_pki();
my $ssl = 'EdgeTraceRedisSSL';

my ($rc, $out) = httpd_t(conf => <<"EOF");
EdgeTraceRedis rediss://:pw\@localhost:6380/1
${ssl}CACertificateFile $pki->{ca}
${ssl}CertificateFile $pki->{client}
${ssl}CertificateKeyFile $pki->{client_key}
${ssl}Name redis.internal
EOF
is($rc, 0, 'rediss:// with every EdgeTraceRedisSSL* passes apache2 -t')
    or diag $out;

for my $u ('rediss://x', 'rediss://:pw@[::1]/3') {
    ($rc, $out) = httpd_t(conf => "EdgeTraceRedis $u");
    is($rc, 0, "EdgeTraceRedis $u is valid") or diag $out;
}

my @tls_errors = (
    ["${ssl}Name r.example", "${ssl}Name",
     qr/${ssl}Name needs a rediss:\/\/ URL/],
    ["${ssl}CACertificateFile $pki->{ca}\nEdgeTraceRedis redis://h",
     "${ssl}CACertificateFile",
     qr/${ssl}CACertificateFile needs a rediss:\/\/ URL/],
    ["EdgeTraceRedis rediss://h\n${ssl}CertificateFile $pki->{client}",
     "${ssl}CertificateFile", qr/${ssl}CertificateFile needs its key/],
    ["${ssl}CertificateKeyFile $pki->{client_key}\nEdgeTraceRedis rediss://h",
     "${ssl}CertificateKeyFile",
     qr/${ssl}CertificateKeyFile needs its certificate/],
    ["EdgeTraceRedis rediss://h\n${ssl}CACertificateFile /nonexistent/ca.pem",
     "${ssl}CACertificateFile",
     qr/${ssl}CACertificateFile cannot load the CA file "\/nonexistent\/ca.pem": No such file or directory/],
    ["EdgeTraceRedis rediss://h\n${ssl}CACertificateFile $pki->{client_key}",
     "${ssl}CACertificateFile",
     qr/cannot load the CA file .*: no certificate or crl found/],
    ["${ssl}CertificateKeyFile $pki->{server_key}\nEdgeTraceRedis rediss://h\n"
     . "${ssl}CertificateFile $pki->{client}",
     "${ssl}CertificateKeyFile",
     qr/${ssl}CertificateKeyFile cannot load the key .*: key values mismatch/],
    ["EdgeTraceRedis rediss://h\n${ssl}Name a\n${ssl}Name b", "${ssl}Name",
     qr/${ssl}Name is given twice/],
    ["EdgeTraceRedis rediss://h\n<VirtualHost 127.0.0.1:%%PORT%%>\n"
     . "${ssl}Name a\n</VirtualHost>", "${ssl}Name",
     qr/${ssl}Name cannot occur within <VirtualHost>/],
);

for my $case (@tls_errors) {
    my ($conf, $name, $want) = @$case;
    ($rc, $out) = httpd_t(conf => $conf);
    (my $what = $conf) =~ s/\n/ | /g;
    isnt($rc, 0, "refused: $what");
    like($out, $want, "said why: $what") or diag $out;
    names_its_line($out, $name, $what);
}

# the stream's options in any order; a key with "{" unsharded
for my $v ('k shards=256 maxlen=5', 'k maxlen=5 shards=1', 'a{b} shards=1',
           "k maxlen=1\nEdgeTraceStream k maxlen=2")
{
    my ($rc, $out) = httpd_t(conf => "EdgeTraceStream $v");
    (my $what = $v) =~ s/\n/ | /g;
    is($rc, 0, "EdgeTraceStream $what is valid") or diag $out;
}

# a cluster's seeds
for my $v ('redis://h1:7000 cluster', 'redis://h:1,h:2,[::1]:3/ Cluster',
           'redis://:pw@h1:7000,h2:7001 cluster', 'rediss://h:1,h:2 cluster')
{
    my ($rc, $out) = httpd_t(conf => "EdgeTraceRedis $v");
    is($rc, 0, "EdgeTraceRedis $v is valid") or diag $out;
}

# On and Off in any case, as httpd's own flags
for my $v ('on', 'ON', 'off', 'oFf') {
    my ($rc, $out) = httpd_t(conf => "EdgeTrace $v");
    is($rc, 0, "EdgeTrace $v is valid") or diag $out;
}

($rc, $out) = httpd_t(conf => <<'EOF');
EdgeTrace On
EdgeTraceRedis unix:/run/redis.sock
EdgeTraceStream traces maxlen=0
EdgeTraceSample .25
EdgeTracePropagation b3multi w3c
EdgeTraceAttribute deployment.environment prod
EdgeTraceQueueSize 16m
EdgeTraceFlushInterval 250ms
EdgeTraceRedisTimeout 2
EdgeTraceKeep status=5xx status=429 slower=1s500ms
EdgeTraceKeep "expr=%{REQUEST_STATUS} == 404" Off
EdgeTraceSampleLimit 1000000/s
EOF
is($rc, 0, 'a full valid configuration passes apache2 -t') or diag $out;

($rc, $out) = httpd_t(conf => 'EdgeTraceServiceName ' . ('s' x 255));
is($rc, 0, 'a service name of 255 bytes is valid') or diag $out;

($rc, $out) = httpd_t(conf => 'EdgeTrace On', main => '',
                      module => 1);
is($rc, 0, 'loaded before mod_proxy: fine');

# --- merging, and attributes, under each MPM
my $redis = start_redis();
my $b = start_backend();

for my $mpm (mpms()) {
    my $h = start_httpd(mpm => $mpm, redis => $redis, files => {
                            'ht/.htaccess' => "EdgeTrace Off\n",
                            'ht/x.txt' => "x\n",
                            'ht2/.htaccess' => "EdgeTraceSpanName from-htaccess\n"
                                . "EdgeTraceAttribute app.dir "
                                . "\"expr=%{REQUEST_URI}\"\n",
                            'ht2/x.txt' => "x\n",
                        }, conf => <<'EOF');
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTraceServiceName main-svc
EdgeTrace On
EdgeTraceAttribute deployment.environment test
EdgeTraceAttribute tier main

ProxyPass /ht !
ProxyPass /ht2 !
ProxyPass / http://127.0.0.1:%%BACKEND%%/
<Directory "%%PREFIX%%/htdocs">
    AllowOverride FileInfo
</Directory>

<Location /a>
    EdgeTraceAttribute tier a
    EdgeTraceAttribute client.ua "expr=%{HTTP_USER_AGENT}"
    EdgeTraceAttribute http.route /a
</Location>
<Location /a/off>
    EdgeTrace Off
</Location>
<Location /a/off/on>
    EdgeTrace On
</Location>
<Location /rated>
    EdgeTraceSample 0
</Location>
<Location /rated/inner>
    EdgeTraceSpanName inner
</Location>

Listen 127.0.0.1:%%PORT2%%
<VirtualHost 127.0.0.1:%%PORT2%%>
    EdgeTraceServiceName vhost-svc
    ProxyPass / http://127.0.0.1:%%BACKEND%%/
</VirtualHost>
EOF

    my @s = spans($h->port, '/a/x', 2, ['User-Agent', "ua\xff\"x\\"]);
    my ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv->{tier}, 'a', "$mpm: a child's attribute wins over its parent's");
    is($srv->{'deployment.environment'}, 'test',
       "$mpm: the parent's other attributes stay");
    is($srv->{'client.ua'}, "ua\xff\"x\\", "$mpm: expression, bytes as sent");
    is($srv->{'http.route'}, '/a', "$mpm: literal");
    is($srv->{'service.name'}, 'main-svc', "$mpm: EdgeTraceServiceName");

    @s = spans($h->port, '/a/off/x', 0);
    is(scalar @s, 0, "$mpm: Off in a nested Location beats On above");

    @s = spans($h->port, '/a/off/on/x', 2);
    is(scalar @s, 2, "$mpm: On again deeper");
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv && $srv->{tier}, 'a', "$mpm: attributes still merged deeper");

    @s = spans($h->port, '/rated/inner', 0);
    is(scalar @s, 0, "$mpm: EdgeTraceSample 0 inherited");
    my ($up) = $b->wait_requests(1);
    my @tp = Edgetrace::Test::Backend->header_values($up, 'traceparent');
    like($tp[0] // '', qr/-02$/, "$mpm: unsampled, still propagated");

    # .htaccess, with AllowOverride FileInfo as for mod_headers
    my ($r, @e) = traced_request($redis, $b, $h->port, '/ht/x.txt', 0);
    is($r->{status}, 200, "$mpm: .htaccess: served");
    is(scalar @e, 0, "$mpm: EdgeTrace Off in .htaccess");
    ($r, @e) = traced_request($redis, $b, $h->port, '/ht2/x.txt', 1);
    is($e[0] && $e[0]{name}, 'from-htaccess',
       "$mpm: EdgeTraceSpanName in .htaccess");
    is($e[0] && $e[0]{'app.dir'}, '/ht2/x.txt',
       "$mpm: EdgeTraceAttribute with an expression in .htaccess");

    @s = spans($h->ports->{PORT2}, '/v', 2);
    ($srv) = grep { $_->{kind} eq 'server' } @s;
    is($srv && $srv->{'service.name'}, 'vhost-svc',
       "$mpm: the virtual host's service.name");
    is($srv && $srv->{'deployment.environment'}, 'test',
       "$mpm: the main server's attributes reach the virtual host");

    $h->stop;
    is_deeply([$h->crashes], [], "$mpm: no crash");
}

sub spans {
    my ($port, $path, $n, @headers) = @_;
    my ($r, @e) = traced_request($redis, $b, $port, $path, $n,
                                 headers => \@headers);
    die "$path: $r->{status}" unless $r->{status} == 200;
    return @e;
}

done_testing();
