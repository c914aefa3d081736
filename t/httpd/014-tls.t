#!/usr/bin/perl
# EdgeTraceRedisSSL* (docs/httpd.md), under each MPM: the cases nginx's
# t/nginx/045-tls.t runs (t/lib/Edgetrace/TlsCases.pm): spans exported
# over rediss:// with a valid CA, by IP address and by name; a wrong CA,
# an expired certificate, a wrong IP or name, and mutual TLS without the
# client certificate refused with the reason, counted, nothing sent;
# mutual TLS with it; Redis restarted while connected, the counters
# adding up.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);
use Edgetrace::TlsCases qw(tls_cases);

for my $mpm (mpms()) {
    my $start = sub {
        my (%c) = @_;
        my $ssl = join '', map { "EdgeTraceRedisSSL$_->[0] $_->[1]\n" }
                           grep { defined $_->[1] }
                           ['CACertificateFile', $c{ca}],
                           ['CertificateFile', $c{cert}],
                           ['CertificateKeyFile', $c{key}],
                           ['Name', $c{name}];
        return start_httpd(mpm => $mpm, files => { x => "x\n" },
                           conf => <<"EOF");
EdgeTraceRedis $c{url}
${ssl}EdgeTraceStream $c{stream}
EdgeTraceFlushInterval 20ms
EdgeTrace On
<Location /edgetrace-status>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>
EOF
    };

    note("--- $mpm");
    tls_cases(start => $start, metrics => '/edgetrace-status');
}

done_testing;
