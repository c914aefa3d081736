#!/usr/bin/perl
# Configuration errors: `nginx -t` fails with a clear message naming the
# directive or the value; a valid configuration passes.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Tls qw(make_pki);

# the file and line the emerg message names hold the directive itself
sub names_its_line {
    my ($out, $directive, $what) = @_;
    my ($file, $line) = $out =~ /\[emerg\].* in (\S+):(\d+)$/m;
    my $text = '';
    if (defined $file && open my $fh, '<', $file) {
        my @lines = <$fh>;
        $text = $lines[$line - 1] // '' if $line;
    }
    my ($name) = $directive =~ /^(\S+)/;
    like($text, qr/^\s*\Q$name\E\b/, "$what: the message names its line")
        or diag($out);
}

my $server = <<'EOF';
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { return 200; }
    }
EOF

# --- a valid configuration with every directive passes
my ($rc, $out) = nginx_t(conf => <<"EOF");
    edgetrace on;
    edgetrace_redis redis://user:pass\@127.0.0.1:6379/2;
    edgetrace_stream my:spans maxlen=1000;
    edgetrace_service_name gw;
    edgetrace_sample 0.25;
    edgetrace_context propagate;
    edgetrace_propagation w3c;
    edgetrace_span_name "\$request_method \$uri";
    edgetrace_attribute app.tier gateway;
    edgetrace_queue_size 1m;
    edgetrace_flush_interval 200ms;
    edgetrace_redis_connect_timeout 500ms;
    edgetrace_redis_timeout 2s;
    edgetrace_flush_timeout 1s;
    edgetrace_value_max_size 512;
    edgetrace_keep status=5xx status=429 slower=500ms;
    edgetrace_keep \$keep \${keep};
    edgetrace_sample_limit 100/s;
    map \$arg_k \$keep { default 0; yes 1; }
    map \$arg_t \$trace { default 1; off 0; }
    map \$arg_c \$mode { default inject; }
    server {
        listen 127.0.0.1:%%PORT%%;
        edgetrace_service_name gw2;
        location / { edgetrace \$trace; edgetrace_context \$mode; return 200; }
        location /m { edgetrace_status; }
    }
EOF
is($rc, 0, 'a valid configuration passes nginx -t') or diag($out);

for my $s ('k shards=256 maxlen=5', 'k maxlen=5 shards=1', '"a{b}" shards=1',
           'a}b shards=8')
{
    ($rc, $out) = nginx_t(conf => "edgetrace on; edgetrace_stream $s;\n"
                                  . $server);
    is($rc, 0, "edgetrace_stream $s is valid") or diag($out);
}

for my $u ('redis://127.0.0.1', 'redis://h:1/0', 'redis://:secret@h',
           'redis://[::1]:6379', 'unix:/run/redis.sock',
           'redis://h1:7000 cluster', 'redis://h:1,h:2,[::1]:3/ CLUSTER',
           'redis://:pw@h1:7000,h2:7001 cluster', 'rediss://x',
           'rediss://:pw@[::1]/3', 'rediss://h:1,h:2 cluster')
{
    ($rc, $out) = nginx_t(conf => "edgetrace on; edgetrace_redis $u;\n"
                                  . $server);
    is($rc, 0, "edgetrace_redis $u is valid") or diag($out);
}

for my $d (map { ("$_ 1ms", "$_ 1h") } qw(edgetrace_redis_connect_timeout
                                            edgetrace_redis_timeout
                                            edgetrace_flush_timeout))
{
    ($rc, $out) = nginx_t(conf => "edgetrace on; $d;\n" . $server);
    is($rc, 0, "$d is valid") or diag($out);
}

my @cases = (
    ['edgetrace_sample 1.5',        qr/"1\.5"/],
    ['edgetrace_sample -0.1',       qr/"-0\.1"/],
    ['edgetrace_sample abc',        qr/"abc"/],
    ['edgetrace_redis garbage',     qr/"garbage"/],
    ['edgetrace_redis http://h:1',  qr/"http:\/\/h:1"/],
    ['edgetrace_redis redis://h:99999', qr/"redis:\/\/h:99999"/],
    ['edgetrace_redis redis://a:1,b:2',
     qr/"redis:\/\/a:1,b:2": several hosts need cluster mode/],
    ['edgetrace_redis redis://a:1,b:2/3 cluster',
     qr/"redis:\/\/a:1,b:2\/3": a cluster has database 0 only/],
    ['edgetrace_redis unix:/r.sock cluster',
     qr/"unix:\/r.sock": a cluster's seeds are "redis:\/\/host:port/],
    ['edgetrace_redis redis://a:1,a:1 cluster',
     qr/a seed is given twice/],
    ['edgetrace_redis redis://a:1 clustered',
     qr/invalid parameter "clustered"/],
    ['edgetrace_redis redis://a:1 cluster x',
     qr/invalid number of arguments in "edgetrace_redis"/],
    ['edgetrace_stream k maxlen=abc', qr/maxlen=abc/],
    ['edgetrace_stream k bogus=1',  qr/bogus=1/],
    ['edgetrace_stream k shards=0',
     qr/invalid parameter "shards=0": shards must be 1 to 256/],
    ['edgetrace_stream k shards=257',
     qr/invalid parameter "shards=257": shards must be 1 to 256/],
    ['edgetrace_stream k shards=x',
     qr/invalid parameter "shards=x": shards must be a decimal number/],
    ['edgetrace_stream k shards=',  qr/"shards=": shards has no value/],
    ['edgetrace_stream k shards=2 maxlen=5 shards=4',
     qr/"edgetrace_stream" directive|invalid number of arguments/],
    ['edgetrace_stream k shards=2 shards=4',
     qr/invalid parameter "shards=4": shards is duplicate/],
    ['edgetrace_stream k maxlen=1 maxlen=2',
     qr/invalid parameter "maxlen=2": maxlen is duplicate/],
    ['edgetrace_stream "a{b}" shards=2',
     qr/invalid stream key "a\{b\}": .*"\{".*hash tag/],
    ['edgetrace_context bogus',     qr/"bogus"/],
    ['edgetrace_propagation bogus', qr/"bogus"/],
    ['edgetrace_propagation w3c w3c', qr/duplicate/],
    ['edgetrace maybe',             qr/"maybe"/],
    ['edgetrace_attribute trace_id x', qr/"trace_id".*reserved/],
    ['edgetrace_attribute event.0 x',  qr/"event\.0".*reserved/],
    ['edgetrace_flush_interval 10s', qr/edgetrace_flush_interval/],
    ['edgetrace_queue_size 1k',     qr/edgetrace_queue_size/],
    ['edgetrace_value_max_size 0',  qr/edgetrace_value_max_size/],
    ['edgetrace_flush_interval 5s',
     qr/"edgetrace_flush_interval" directive must be from 1ms to 1s/],
    ['edgetrace_flush_interval 0',
     qr/"edgetrace_flush_interval" directive must be from 1ms to 1s/],
    ['edgetrace_value_max_size 100m',
     qr/"edgetrace_value_max_size" directive must be from 1 to 64k/],
    ['edgetrace_queue_size 4095',
     qr/"edgetrace_queue_size" directive must be at least 4k/],
    ['edgetrace_service_name ""',
     qr/"edgetrace_service_name" directive must be 1 to 255 bytes/],
    ['edgetrace_span_name ""',
     qr/"edgetrace_span_name" directive must not be empty/],
    ['edgetrace_queue_size big',
                        qr/"edgetrace_queue_size" directive invalid value/],
    # the timeouts: 1ms to 1h
    (map { (["$_ 0", qr/"$_" directive must be from 1ms to 1h/],
            ["$_ 2h", qr/"$_" directive must be from 1ms to 1h/]) }
         qw(edgetrace_redis_connect_timeout edgetrace_redis_timeout
            edgetrace_flush_timeout)),
    ['edgetrace_redis redis://a:1; edgetrace_redis redis://b:2',
                                    qr/is duplicate/],
    # edgetrace_keep and edgetrace_sample_limit (docs/nginx.md)
    ['edgetrace_keep status=6xx',   qr/invalid rule "status=6xx": it is not a status/],
    ['edgetrace_keep status=99',    qr/invalid rule "status=99": it is not a status/],
    ['edgetrace_keep status=600',   qr/invalid rule "status=600": it is not a status/],
    ['edgetrace_keep status=',      qr/invalid rule "status=": it is not a status/],
    ['edgetrace_keep slower=-1',    qr/invalid rule "slower=-1": it is not a duration/],
    ['edgetrace_keep slower=10x',
                     qr/invalid rule "slower=10x": it has a unit other than/],
    ['edgetrace_keep slower=0',     qr/invalid rule "slower=0": it must be longer than 0/],
    ['edgetrace_keep slower=2d',    qr/invalid rule "slower=2d": it is longer than 1d/],
    ['edgetrace_keep slower=',      qr/invalid rule "slower=": it has no duration/],
    ['edgetrace_keep 5xx',          qr/invalid rule "5xx": it must be status=/],
    ['edgetrace_keep $a$b',         qr/invalid rule "\$a\$b": it must be status=/],
    ['edgetrace_keep status=5xx; edgetrace_keep off', qr/is duplicate/],
    ['edgetrace_keep off; edgetrace_keep status=5xx', qr/is duplicate/],
    ['edgetrace_sample_limit 0/s',  qr/invalid limit "0\/s": it must be 1\/s to 1000000\/s/],
    ['edgetrace_sample_limit 100',  qr/invalid limit "100": it is not a rate/],
    ['edgetrace_sample_limit 100/m', qr/invalid limit "100\/m": it is not a rate/],
    ['edgetrace_sample_limit -1/s', qr/invalid limit "-1\/s": it must be 1\/s/],
    ['edgetrace_sample_limit 1/s; edgetrace_sample_limit 2/s', qr/is duplicate/],
);

for my $case (@cases) {
    my ($directive, $re) = @$case;
    my $on = $directive =~ /^edgetrace / ? '' : "edgetrace on;\n";
    ($rc, $out) = nginx_t(conf => "$on$directive;\n$server");
    isnt($rc, 0, "$directive: nginx -t fails");
    ok($rc < 128, "$directive: no crash (rc $rc)");
    like($out, qr/\[emerg\]/, "$directive: an emerg message");
    like($out, $re, "$directive: the message is clear") or diag($out);
    names_its_line($out, (split /; /, $directive)[-1], $directive);
}

($rc, $out) = nginx_t(conf => "edgetrace on;\nedgetrace_service_name "
                              . ('s' x 256) . ";\n$server");
isnt($rc, 0, 'a 256-byte edgetrace_service_name: fails');
like($out, qr/"edgetrace_service_name" directive must be 1 to 255 bytes/,
     'a 256-byte edgetrace_service_name: says why');
names_its_line($out, 'edgetrace_service_name',
               'a 256-byte edgetrace_service_name');

# --- in a server block, the server's own line
($rc, $out) = nginx_t(conf => <<'EOF');
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        edgetrace_service_name "";
        location / { return 200; }
    }
EOF
isnt($rc, 0, 'edgetrace_service_name "" in a server: fails');
names_its_line($out, 'edgetrace_service_name', 'edgetrace_service_name ""');

($rc, $out) = nginx_t(conf => <<'EOF');
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            edgetrace_span_name "";
            return 200;
        }
    }
EOF
isnt($rc, 0, 'edgetrace_span_name "" in a location: fails');
names_its_line($out, 'edgetrace_span_name', 'edgetrace_span_name ""');

# --- on and off in any case, as nginx's own flags
for my $v ('On', 'ON', 'oFF', 'Off') {
    ($rc, $out) = nginx_t(conf => "edgetrace $v;\n$server");
    is($rc, 0, "edgetrace $v is valid") or diag($out);
}

# --- the formats edgetrace_propagation names
($rc, $out) = nginx_t(conf => "edgetrace on;\n"
                              . "edgetrace_propagation b3 b3multi w3c;\n"
                              . $server);
is($rc, 0, 'edgetrace_propagation b3 b3multi w3c is valid') or diag($out);

for my $bad ('b3 b3', 'w3c zipkin', 'B3') {
    ($rc, $out) = nginx_t(conf => "edgetrace on;\n"
                                  . "edgetrace_propagation $bad;\n"
                                  . $server);
    isnt($rc, 0, "edgetrace_propagation $bad is refused");
    like($out, qr/edgetrace_propagation|format/,
         "edgetrace_propagation $bad: says why");
}

# --- http-level directives elsewhere
for my $d ('edgetrace_redis redis://127.0.0.1:6379',
           'edgetrace_stream k', 'edgetrace_queue_size 1m',
           'edgetrace_flush_interval 100ms')
{
    my ($name) = split / /, $d;
    ($rc, $out) = nginx_t(conf => <<"EOF");
    edgetrace on;
    server {
        listen 127.0.0.1:%%PORT%%;
        $d;
        location / { return 200; }
    }
EOF
    isnt($rc, 0, "$name in a server block: nginx -t fails");
    like($out, qr/"$name" directive is not allowed here/,
         "$name in a server block: not allowed here");
}

($rc, $out) = nginx_t(conf => <<'EOF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { edgetrace_service_name x; }
    }
EOF
isnt($rc, 0, 'edgetrace_service_name in a location: fails');
like($out, qr/"edgetrace_service_name" directive is not allowed here/,
     'edgetrace_service_name in a location: not allowed here');

($rc, $out) = nginx_t(conf => "edgetrace_status;\n$server");
isnt($rc, 0, 'edgetrace_status at the http level: fails');
like($out, qr/"edgetrace_status" directive is not allowed here/,
     'edgetrace_status: location only');

($rc, $out) = nginx_t(conf => <<'EOF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { edgetrace_status on; }
    }
EOF
isnt($rc, 0, 'edgetrace_status with an argument: fails');
like($out, qr/invalid number of arguments in "edgetrace_status"/,
     'edgetrace_status takes no argument');

# --- TLS to Redis (docs/nginx.md "edgetrace_redis_ssl_trusted_certificate"):
# the files are read by nginx -t, and each error names its directive's line
my $pki = make_pki();
my $ssl = "edgetrace_redis_ssl";

($rc, $out) = nginx_t(conf => <<"EOF");
    edgetrace on;
    edgetrace_redis rediss://:pw\@localhost:6380/1;
    ${ssl}_trusted_certificate $pki->{ca};
    ${ssl}_certificate $pki->{client};
    ${ssl}_certificate_key $pki->{client_key};
    ${ssl}_name redis.internal;
$server
EOF
is($rc, 0, 'rediss:// with every edgetrace_redis_ssl_* passes nginx -t')
    or diag($out);

my @tls_cases = (
    ["${ssl}_name r.example",
     qr/"${ssl}_name" needs a rediss:\/\/ URL in /],
    ["edgetrace_redis redis://h; ${ssl}_trusted_certificate $pki->{ca}",
     qr/"${ssl}_trusted_certificate" needs a rediss:\/\/ URL in /],
    ["edgetrace_redis rediss://h; ${ssl}_certificate $pki->{client}",
     qr/"${ssl}_certificate" needs its key in /],
    ["edgetrace_redis rediss://h; ${ssl}_certificate_key $pki->{client_key}",
     qr/"${ssl}_certificate_key" needs its certificate in /],
    ["edgetrace_redis rediss://h; ${ssl}_trusted_certificate /nonexistent/ca.pem",
     qr/"${ssl}_trusted_certificate" cannot load the CA file "\/nonexistent\/ca.pem": No such file or directory/],
    ["edgetrace_redis rediss://h; ${ssl}_trusted_certificate $pki->{client_key}",
     qr/"${ssl}_trusted_certificate" cannot load the CA file .*: no certificate or crl found/],
    ["edgetrace_redis rediss://h; ${ssl}_certificate $pki->{client}; "
     . "${ssl}_certificate_key $pki->{server_key}",
     qr/"${ssl}_certificate_key" cannot load the key .*: key values mismatch/],
    ["edgetrace_redis rediss://h; ${ssl}_certificate_key $pki->{client_key}; "
     . "${ssl}_certificate /nonexistent/c.pem",
     qr/"${ssl}_certificate" cannot load the certificate "\/nonexistent\/c.pem"/],
    ["edgetrace_redis rediss://h; ${ssl}_name a; ${ssl}_name b",
     qr/"${ssl}_name" directive is duplicate/],
    ["edgetrace_redis rediss://h; ${ssl}_name \"\"",
     qr/"${ssl}_name" directive invalid value/],
);

for my $case (@tls_cases) {
    my ($directive, $re) = @$case;
    ($rc, $out) = nginx_t(conf => "edgetrace on;\n"
                                  . join('', map { "$_;\n" }
                                                 split /; /, $directive)
                                  . $server);
    isnt($rc, 0, "$directive: nginx -t fails");
    like($out, $re, "$directive: the message is clear") or diag($out);
    names_its_line($out, (split /; /, $directive)[-1], $directive);
}

($rc, $out) = nginx_t(conf => <<"EOF");
    edgetrace on;
    edgetrace_redis rediss://h;
    server {
        listen 127.0.0.1:%%PORT%%;
        ${ssl}_name x;
        location / { return 200; }
    }
EOF
like($out, qr/"${ssl}_name" directive is not allowed here/,
     "${ssl}_name in a server block: not allowed here");

done_testing;
