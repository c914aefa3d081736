#!/usr/bin/perl
# EdgeTraceKeep (docs/httpd.md), under each MPM: at 1% head sampling, every
# 5xx and every slow request is exported at its end with its client span,
# marked edgetrace.sampling=outcome, with the trace id and parent it
# carried, while its backend got sampled=0; 200s at about the head ratio;
# rules with expressions in the server, a virtual host and a <Location>,
# added up along the merge, "EdgeTraceKeep Off" dropping the inherited
# ones; %{EDGETRACE_SAMPLING}e in a CustomLog.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Httpd qw(:all);
use Edgetrace::Keep qw(:all);

my $b = start_backend();

my $conf = <<'EOF';
EdgeTraceRedis redis://127.0.0.1:%%REDIS%%
EdgeTraceFlushInterval 20ms
EdgeTrace On
EdgeTraceSample 0.01
EdgeTraceKeep status=5xx slower=200ms
EdgeTraceKeep "expr=%{HTTP:X-Keep-Main} == '1'"
Header always set X-Trace-Id "%{EDGETRACE_TRACE_ID}e"

LogFormat "%{EDGETRACE_TRACE_ID}e \"%{EDGETRACE_SAMPLING}e\" %>s" keep
CustomLog "%%PREFIX%%/keep.log" keep

ProxyPass /api/ http://127.0.0.1:%%BACKEND%%/

<Location /edgetrace-status>
    EdgeTrace Off
    SetHandler edgetrace-status
</Location>

Listen 127.0.0.1:%%PORT2%%
<VirtualHost 127.0.0.1:%%PORT2%%>
    EdgeTraceKeep "expr=%{HTTP:X-Keep-Srv} == 'yes'"
    ProxyPass /inherit http://127.0.0.1:%%BACKEND%%/status/503
    ProxyPass /ok http://127.0.0.1:%%BACKEND%%/ok
    ProxyPass /off http://127.0.0.1:%%BACKEND%%/status/503
    ProxyPass /off-404 http://127.0.0.1:%%BACKEND%%/status/404
    <Location /own>
        EdgeTraceKeep "expr=%{QUERY_STRING} == 'keep=1'" status=404
    </Location>
    <Location /off>
        EdgeTraceKeep Off
    </Location>
    <Location /off-404>
        EdgeTraceKeep Off status=404
    </Location>
</VirtualHost>
EOF

for my $mpm (mpms()) {
    my $redis = start_redis();
    my $h = start_httpd(mpm => $mpm, redis => $redis, conf => $conf,
                        files => { barrier => "ok\n", 'own/x' => "x\n" });
    my $port2 = $h->ports->{PORT2};

    case "$mpm: a 5xx of an unsampled parent: kept, with its ids and its "
         . 'client span' => sub {
        kept_5xx_case(port => $h->port, redis => $redis, backend => $b,
                      api => '/api/');
    };

    case "$mpm: a slow request: kept; a quick one and a 404 are not" => sub {
        slow_case(port => $h->port, redis => $redis, backend => $b,
                  api => '/api/');
    };

    case "$mpm: 1% head sampling: every 5xx and slow request kept, 200s "
         . 'at the ratio' => sub {
        head_ratio_case(port => $h->port, redis => $redis, backend => $b,
                        metrics => '/edgetrace-status', api => '/api/');
    };

    case "$mpm: rules with expressions: server, virtual host, <Location>; "
         . 'added up' => sub {
        my @cases = (
            # [port, path, headers, kept, what]
            [$h->port, '/barrier', [['X-Keep-Main', '1']], 1,
             'server: its expression keeps'],
            [$h->port, '/barrier', [['X-Keep-Main', '0']], 0,
             'server: false does not keep'],
            [$h->port, '/barrier', [], 0, 'server: a 200: not kept'],
            [$port2, '/ok', [['X-Keep-Srv', 'yes']], 1,
             'virtual host: its own expression keeps'],
            [$port2, '/ok', [['X-Keep-Main', '1']], 1,
             'virtual host: the server\'s expression added'],
            [$port2, '/inherit', [], 1,
             'virtual host: the server\'s status=5xx added: a 503 kept'],
            [$port2, '/ok', [], 0, 'virtual host: a 200: not kept'],
            [$port2, '/own/x?keep=1', [], 1,
             '<Location>: its own expression keeps'],
            [$port2, '/own/missing', [], 1,
             '<Location>: its own status=404 keeps'],
            [$port2, '/own/x', [['X-Keep-Srv', 'yes']], 1,
             '<Location>: the virtual host\'s expression added'],
            [$port2, '/own/x', [], 0, '<Location>: a 200: not kept'],
            [$port2, '/missing', [], 0,
             'a 404 outside the <Location>: not kept'],
            [$port2, '/off', [['X-Keep-Srv', 'yes'], ['X-Keep-Main', '1']],
             0, 'Off: the inherited rules dropped, a 503 not kept'],
            [$port2, '/off-404', [['X-Keep-Srv', 'yes']], 1,
             'Off with a rule of its own: that rule keeps'],
        );
        for my $c (@cases) {
            my ($port, $path, $hdrs, $kept, $what) = @$c;
            my ($trace, $parent, $hd) = unsampled();
            http_get($port, $path, headers => [@$hd, @$hdrs]);
            kept_or_not($redis, $port, $trace, $parent, $kept, $what);
        }
    };

    case "$mpm: %{EDGETRACE_SAMPLING}e in a CustomLog" => sub {
        sampling_log_case(port => $h->port, api => '/api/',
                          log => $h->prefix . '/keep.log');
    };

    case "$mpm: counters add up" => sub {
        keep_counters_case(server => $h, redis => $redis,
                           metrics => '/edgetrace-status');
    };

    is(scalar $h->crashes, 0, "$mpm: no child crashed");
    $h->stop;
}

done_testing();
