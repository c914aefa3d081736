#!/usr/bin/perl
# rediss:// (docs/nginx.md "edgetrace_redis_ssl_trusted_certificate"),
# against redis-servers with TLS ports and certificates made now with
# openssl: spans exported with a valid CA, by IP address and by name; a
# wrong CA, an expired certificate, a wrong IP or name, and mutual TLS
# without the client certificate refused with the reason, counted, and
# nothing sent; mutual TLS with it; Redis restarted while connected, with
# an expired certificate (refused again) and then a renewed one, the
# counters adding up (t/lib/Edgetrace/TlsCases.pm).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::TlsCases qw(tls_cases);

sub start {
    my (%c) = @_;
    my $ssl = join '', map { "    edgetrace_redis_ssl_$_->[0] $_->[1];\n" }
                       grep { defined $_->[1] }
                       ['trusted_certificate', $c{ca}],
                       ['certificate', $c{cert}],
                       ['certificate_key', $c{key}],
                       ['name', $c{name}];
    return start_nginx(conf => <<"EOF");
    edgetrace on;
    edgetrace_redis $c{url};
$ssl    edgetrace_stream $c{stream};
    edgetrace_flush_interval 20ms;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /x { return 200 "x\\n"; }
        location /metrics { edgetrace off; edgetrace_status; }
    }
EOF
}

tls_cases(start => \&start, metrics => '/metrics');

done_testing;
