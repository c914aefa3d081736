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

    # none of the trace's spans, once a later trace's are in the stream
    my $none_exported = sub {
        my ($trace, $port) = @_;
        barrier($redis->port, $port // $h->port);
        my @s = trace_spans($redis->port, $trace, count => 1, timeout => 0);
        return !@s;
    };

    case "$mpm: a 5xx of an unsampled parent: kept, with its ids and its "
         . 'client span' => sub {
        for my $code (503, 500, 599) {
            my $path = "/api/status/$code";
            my ($trace, $parent, $hd) = unsampled();
            $b->clear;
            my $r = http_get($h->port, $path, headers => $hd);
            is($r->{status}, $code, "$path: answered");
            my @s = trace_spans($redis->port, $trace, count => 2,
                                settle => 0.2);
            is(scalar @s, 2, "$path: its server and client spans");
            my ($server) = grep { $_->{kind} eq 'server' } @s;
            my ($client) = grep { $_->{kind} eq 'client' } @s;
            is($server->{'edgetrace.sampling'}, 'outcome',
               "$path: server span edgetrace.sampling=outcome");
            is($client->{'edgetrace.sampling'}, 'outcome',
               "$path: client span edgetrace.sampling=outcome");
            is($server->{parent_id}, $parent, "$path: the parent it carried");
            is($client->{parent_id}, $server->{span_id},
               "$path: the client span's parent is the server span");
            is($server->{'http.response.status_code'}, $code,
               "$path: status");
            is($client->{'http.response.status_code'}, $code,
               "$path: the backend's status");
            my $ev = try_event($client, 0);
            ok($ev && defined $ev->{header_ms},
               "$path: the try's header time, as for a sampled request");
            my @req = $b->wait_requests(1);
            my @tp = upstream_flags($req[0]);
            is($tp[1], $trace, "$path: backend got the trace id");
            is($tp[2], $client->{span_id},
               "$path: backend's parent is the client span");
            is($tp[3], '00', "$path: backend got sampled=0");
        }
    };

    case "$mpm: a slow request: kept; a quick one and a 404 are not" => sub {
        my ($trace, $parent, $hd) = unsampled();
        $b->clear;
        my $r = http_get($h->port, '/api/slow/300', headers => $hd);
        is($r->{status}, 200, 'slow: answered');
        my @s = trace_spans($redis->port, $trace, count => 2, settle => 0.2);
        my ($server) = grep { $_->{kind} eq 'server' } @s;
        my ($client) = grep { $_->{kind} eq 'client' } @s;
        ok($server && $client, 'slow: server and client spans');
        is($server->{'edgetrace.sampling'}, 'outcome', 'slow: outcome');
        is($client->{'edgetrace.sampling'}, 'outcome',
           'slow: client outcome');
        ok(span_ms($server) >= 290, sprintf('slow: it lasted %.0f ms',
                                            span_ms($server)));
        ok(span_ms($client) >= 290 && $client->{end_ns} <= $server->{end_ns},
           'slow: the client span timed when the backend answered');
        is($server->{parent_id}, $parent, 'slow: the parent it carried');
        my @req = $b->wait_requests(1);
        is((upstream_flags($req[0]))[3], '00',
           'slow: backend got sampled=0');

        ($trace, $parent, $hd) = unsampled();
        $r = http_get($h->port, '/api/slow/20', headers => $hd);
        is($r->{status}, 200, 'quick: answered');
        ok($none_exported->($trace), 'quick: nothing exported');

        ($trace, $parent, $hd) = unsampled();
        $r = http_get($h->port, '/api/status/404', headers => $hd);
        is($r->{status}, 404, 'a 404: answered');
        ok($none_exported->($trace), 'a 404 (no rule): nothing exported');
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
            if ($kept) {
                my @s = grep { $_->{kind} eq 'server' }
                        trace_spans($redis->port, $trace, count => 1);
                is(scalar @s, 1, "$what: exported");
                is($s[0]{'edgetrace.sampling'}, 'outcome',
                   "$what: outcome");
                is($s[0]{parent_id}, $parent, "$what: the parent it carried");
            } else {
                ok($none_exported->($trace, $port), "$what: nothing exported");
            }
        }
    };

    case "$mpm: %{EDGETRACE_SAMPLING}e in a CustomLog" => sub {
        my ($t1, undef, $h1) = unsampled();
        http_get($h->port, '/api/status/502', headers => $h1);
        my ($t2, undef, $h2) = unsampled();
        http_get($h->port, '/api/ok', headers => $h2);
        my $t3 = new_trace_id();
        http_get($h->port, '/api/ok',
                 headers => [['traceparent', new_traceparent($t3)]]);
        my %log;
        wait_until(sub {
            %log = map { /^(\S+) "(\S*)" (\d+)/ ? ($1 => $2) : () }
                   split /\n/, Edgetrace::Test::_slurp($h->prefix
                                                       . '/keep.log');
            exists $log{$t3};
        }, 3);
        is($log{$t1}, 'outcome', 'a kept 502: outcome');
        is($log{$t2}, '', 'an unsampled 200: empty');
        is($log{$t3}, 'head', 'a sampled parent: head');
    };

    case "$mpm: counters add up" => sub {
        my $m = metrics($h->port, '/edgetrace-status');
        ok($m->{'edgetrace_requests_sampled_total{reason="outcome"}'} > 0,
           'requests_sampled_total{reason="outcome"} counted');
        is($m->{edgetrace_requests_rate_limited_total}, 0,
           'no limit: nothing rate-limited');
        ok($m->{'edgetrace_requests_sampled_total{reason="head"}'}
           + $m->{'edgetrace_requests_sampled_total{reason="outcome"}'}
           <= $m->{edgetrace_requests_total}, 'head + outcome <= requests');
        Edgetrace::Test::counters_match_redis($h, $redis,
                                              path => '/edgetrace-status',
                                              dropped => 0);
    };

    is(scalar $h->crashes, 0, "$mpm: no child crashed");
    $h->stop;
}

done_testing();
