#!/usr/bin/perl
# edgetrace_attribute: extra fields of the server span, evaluated at the end
# of the request in the final location, inherited by levels that set none;
# edgetrace_value_max_size truncates values (default 1k).  Each case sends
# its requests in traces of their own, so that it runs alone as well
# (EDGETRACE_CASE=regex).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);

my $redis = start_redis();
my $b = start_backend();
my $ngx = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_flush_interval 50ms;
    edgetrace_value_max_size 64;
    edgetrace on;
    edgetrace_attribute app.tier gateway;

    server {
        listen 127.0.0.1:%%PORT%%;

        location /inherit {
            return 200 "ok\n";
        }
        location /own {
            edgetrace_attribute app.user $http_x_user;
            edgetrace_attribute upstream.status $upstream_status;
            edgetrace_attribute app.bin $http_x_bin;
            proxy_pass http://127.0.0.1:%%BACKEND%%;
        }
        location /a {
            edgetrace_attribute loc a;
            rewrite ^ /b last;
        }
        location /b {
            edgetrace_attribute loc b;
            return 200 "b\n";
        }
        location /long {
            edgetrace_attribute app.long $http_x_long;
            edgetrace_span_name $http_x_name;
            return 200 "long\n";
        }
    }
EOF

# sends a request in a trace of its own; returns (response, server span,
# client span) of that trace
sub run {
    my ($path, $n, %o) = @_;
    my $t = new_trace_id();
    my $r = http_get($ngx->port, $path, %o, headers => [
                         @{ $o{headers} || [] },
                         ['traceparent', new_traceparent($t)]]);
    my @s = trace_spans($redis->port, $t, count => $n);
    return ($r, (grep { $_->{kind} eq 'server' } @s),
            (grep { $_->{kind} eq 'client' } @s));
}

case 'inherited from http' => sub {
    my ($r, $s) = run('/inherit', 1);
    is($s->{'app.tier'}, 'gateway', 'http-level attribute inherited');
};

case 'a location with its own: evaluated at the end, replaces the inherited'
    => sub {
    my ($r, $s, $c) = run('/own/x', 2,
                          headers => [['X-User', 'alice'],
                                      ['X-Bin', "\x80\xff\x01 a=b;c"]]);
    is($r->{status}, 200, 'answered');
    is($s->{'app.user'}, 'alice', 'attribute from a request header');
    is($s->{'upstream.status'}, '200', 'evaluated at the end of the request');
    is($s->{'app.bin'}, "\x80\xff\x01 a=b;c", 'bytes kept as they are');
    ok(!exists $s->{'app.tier'}, 'a level with its own attributes replaces');
    ok(!exists $c->{'app.user'}, 'not on the client span');
    my @f = @{ $s->{_fields} };
    my %pos;
    @pos{ @f[grep { !($_ % 2) } 0 .. $#f] } = 0 .. @f / 2;
    ok($pos{'app.user'} > $pos{'http.response.status_code'},
       'attributes come after the standard fields');
};

case 'the final location\'s attributes' => sub {
    my ($r, $s) = run('/a', 1);
    is($r->{body}, "b\n", 'rewritten to /b');
    is($s->{loc}, 'b', 'the final location\'s attribute');
    is($s->{name}, 'GET /b', 'named after the final location');
};

case 'truncation at edgetrace_value_max_size 64' => sub {
    my $long = join '', map { chr(ord('a') + $_ % 26) } 0 .. 199;
    my $path = '/long/' . ('p' x 194);
    my ($r, $s) = run($path, 1, headers => [['X-Long', $long],
                                            ['X-Name', $long],
                                            ['User-Agent', $long]]);
    is($r->{status}, 200, 'long values: answered');
    is($s->{'app.long'}, substr($long, 0, 64), 'attribute cut at 64 bytes');
    is($s->{'user_agent.original'}, substr($long, 0, 64), 'user agent cut');
    is($s->{name}, substr($long, 0, 64), 'span name cut');
    is($s->{'url.path'}, substr($path, 0, 64), 'url.path cut');
    is($s->{'app.tier'}, undef, 'only the location\'s attributes');
};

case 'a name whose variable is empty: the default name' => sub {
    my ($r, $s) = run('/long', 1);
    is($s->{name}, 'GET /long',
       'an empty span name falls back to the default');
};

my $ngx2 = start_nginx(redis => $redis, conf => <<'EOF');
    edgetrace_redis redis://127.0.0.1:%%REDIS%%;
    edgetrace_stream other;
    edgetrace_flush_interval 50ms;
    edgetrace on;

    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            edgetrace_attribute app.long $http_x_long;
            return 200 "ok\n";
        }
    }
EOF

case 'the default limit: 1k' => sub {
    my $big = 'z' x 3000;
    my $r = http_get($ngx2->port, '/', headers => [['X-Long', $big],
                                                   ['User-Agent', $big]]);
    is($r->{status}, 200, 'default limit: answered');
    # the only request to this nginx, on a stream of its own
    my ($e) = stream_entries($redis->port, 'other', count => 1);
    is(length $e->{'app.long'}, 1024, 'default limit: attribute cut at 1k');
    is(length $e->{'user_agent.original'}, 1024,
       'default limit: user agent cut');
};

is(scalar $ngx->crashes, 0, 'no worker crashed');
is(scalar $ngx2->crashes, 0, 'no worker crashed (second nginx)');

done_testing;
