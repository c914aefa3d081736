#!/usr/bin/perl
# Spans kept by an outcome rule (edgetrace.sampling=outcome, docs/stream.md)
# in the command: show says the trace is partial ("kept by outcome:
# downstream spans absent"), a head-sampled trace says nothing of it; top
# --sampling head|outcome sums up one kind or the other.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Edgetrace::Test qw(:all);
use Edgetrace::Cli qw(run_cli start_stack request);

# nothing head-sampled but sampled parents; every 5xx kept by its outcome
my ($redis, $b, $ngx) = start_stack(conf => <<'EOF');
    edgetrace_sample 0;
    edgetrace_keep status=5xx;
EOF

my $kept = request($redis, $ngx, '/dead');
my $kept1 = request($redis, $ngx, '/fail');
my $head = request($redis, $ngx, '/local',
                   headers => [['traceparent',
                                new_traceparent(new_trace_id())]]);

my @s = trace_spans($redis->port, $kept, count => 2);
is(scalar(grep { ($_->{'edgetrace.sampling'} // '') eq 'outcome' } @s), 2,
   'a 502 and its client span: kept by outcome');

case 'show: a trace kept by outcome says its downstream spans are absent'
    => sub {
    my $r = run_cli($redis, 'show', $kept);
    is($r->{rc}, 0, 'show: exit 0');
    my @lines = split /\n/, $r->{out};
    like($lines[0], qr/^trace $kept: 2 spans, 1 service, 2 errors/,
         'the summary line');
    is($lines[1], 'kept by outcome: downstream spans absent (2 spans kept '
                  . 'by an outcome rule; the services they called were told '
                  . 'sampled=0)', 'then the partial trace, said');
    is($lines[2], '', 'then a blank line');
    like($lines[3], qr/^OFFSET /, 'then the table');

    $r = run_cli($redis, 'show', $kept1);
    like($r->{out}, qr/^kept by outcome: downstream spans absent \(1 span kept by an outcome rule; the services it called were told sampled=0\)$/m,
         'one span: said in the singular');
};

case 'show: a head-sampled trace says nothing of it' => sub {
    my $r = run_cli($redis, 'show', $head);
    is($r->{rc}, 0, 'show: exit 0');
    unlike($r->{out}, qr/kept by outcome/, 'no partial-trace line');
    like($r->{out}, qr/\A[^\n]+\n\nOFFSET /, 'the table after the summary');
};

case 'top --sampling outcome and head' => sub {
    my $r = run_cli($redis, 'top', '--sampling', 'outcome', '--slowest', '0');
    is($r->{rc}, 0, 'top --sampling outcome: exit 0');
    like($r->{out}, qr/^edgetrace:spans: 3 spans kept by outcome in the last 15m\b/,
         'three spans kept by outcome, said in the first line');
    like($r->{out}, qr/^edge\s+server GET \/dead\s+1\s/m, 'GET /dead: one');
    like($r->{out}, qr/^edge\s+client GET\s+1\s/m, 'its client span: one');
    like($r->{out}, qr/^edge\s+server GET \/fail\s+1\s/m, 'GET /fail: one');
    unlike($r->{out}, qr{GET /local}, 'the head-sampled one: not there');

    $r = run_cli($redis, 'top', '--sampling', 'head', '--slowest', '0');
    is($r->{rc}, 0, 'top --sampling head: exit 0');
    like($r->{out}, qr/^edgetrace:spans: 1 span head-sampled in the last 15m\b/,
         'one head-sampled span');
    like($r->{out}, qr/^edge\s+server GET \/local\s+1\s/m, 'GET /local');

    $r = run_cli($redis, 'top', '--slowest', '0');
    like($r->{out}, qr/^edgetrace:spans: 4 spans in the last 15m\b/,
         'without --sampling: all of them');

    $r = run_cli($redis, 'top', '--sampling', 'tail');
    is($r->{rc}, 2, 'top --sampling tail: a usage error');
    like($r->{err}, qr/top: invalid --sampling "tail": head or outcome/,
         'says why');
};

done_testing();
