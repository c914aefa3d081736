#!/usr/bin/perl
# Every configuration example in README.md and docs/*.md loads as copied:
# each block fenced as nginx passes `nginx -t`, each fenced as apache
# passes `apache2 -t`, with the modules from the build.
#
# How the docs mark their blocks (docs/README.md says the same):
#
#   ```nginx            a whole nginx.conf when it starts with load_module,
#                       else a fragment of the http block
#   ```nginx server     a fragment of a server block
#   ```nginx location   a fragment of a location block
#   ```apache           a fragment of the main server configuration (what
#                       goes into apache2.conf or conf-enabled/), with
#                       mod_edgetrace loaded as a2enmod loads it
#
# The only rewrites: a load_module line of ngx_http_edgetrace_module.so
# loads the build's module instead; "listen N;" listens on 127.0.0.1 at a
# free port.  Fragments are checked inside the harness's own configuration
# (Edgetrace::Test's nginx_t, Edgetrace::Httpd's httpd_t), which loads the
# module, its MPM and the modules a Debian apache2 enables by default.
#
# Every other code block is fenced with its language (sh, console, text,
# json): an indented or unlabelled block cannot hide a configuration.  A
# json block parses as JSON (docs/serve.md's answers).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use JSON::PP ();
use Edgetrace::Test qw(nginx_t module_path);
use Edgetrace::Httpd qw(httpd_t);

my $root = "$FindBin::Bin/../..";
my @docs = ("README.md", map { s{^\Q$root\E/}{}r } glob("$root/docs/*.md"));

# what Debian's apache2 enables by default that the harness does not load
my $debian_modules = join "\n",
    map { "LoadModule ${_}_module /usr/lib/apache2/modules/mod_$_.so" }
    qw(authz_host mime);

my %known = map { $_ => 1 } qw(nginx apache sh console text json);

# (file, line, language, context, text) of every fenced block; indented
# code blocks are reported as errors
sub blocks {
    my ($file) = @_;
    open my $fh, '<', "$root/$file" or die "$file: $!";
    my (@found, @bad, $open, $prev);
    $prev = '';
    while (my $l = <$fh>) {
        if ($open) {
            if ($l =~ /^```\s*$/) {
                push @found, $open;
                undef $open;
            } else {
                $open->{text} .= $l;
            }
        } elsif ($l =~ /^```(\S*)\s*(\S*)/) {
            $open = { file => $file, line => $., lang => $1, ctx => $2,
                      text => '' };
        } elsif ($l =~ /^    \S/ && $prev =~ /^\s*$/) {
            push @bad, "$file:$.: an indented code block: fence it with"
                       . " its language";
        }
        $prev = $l;
    }
    push @bad, "$file: a fence opened at line $open->{line} is not closed"
        if $open;
    return (\@found, \@bad);
}

sub rewrite_nginx {
    my ($text) = @_;
    my $so = module_path();
    $text =~ s{^(\s*)load_module\s+\S*ngx_http_edgetrace_module\.so;}
              {$1load_module $so;}mg;
    $text =~ s{^(\s*)listen\s+\d+;}{$1listen 127.0.0.1:%%PORT%%;}mg;
    return $text;
}

sub check_nginx {
    my ($b) = @_;
    my $text = rewrite_nginx($b->{text});
    my %how;
    if ($text =~ /\A(?:\s*#.*\n|\s*\n)*\s*load_module\b/) {
        die "$b->{file}:$b->{line}: a whole nginx.conf takes no context\n"
            if $b->{ctx};
        %how = (file => $text);
    } elsif ($b->{ctx} eq '') {
        %how = (conf => $text);
    } elsif ($b->{ctx} eq 'server') {
        %how = (conf => "server {\n    listen 127.0.0.1:%%PORT%%;\n"
                        . "$text\n}\n");
    } elsif ($b->{ctx} eq 'location') {
        %how = (conf => "server {\n    listen 127.0.0.1:%%PORT%%;\n"
                        . "    location / {\n$text\n    }\n}\n");
    } else {
        die "$b->{file}:$b->{line}: unknown nginx context '$b->{ctx}'\n";
    }
    return nginx_t(%how);
}

sub check_apache {
    my ($b) = @_;
    die "$b->{file}:$b->{line}: apache blocks take no context\n"
        if $b->{ctx};
    return httpd_t(conf => $b->{text}, main => $debian_modules);
}

my (@all, $nginx, $apache);
for my $file (@docs) {
    my ($found, $bad) = blocks($file);
    ok(!@$bad, "$file: every code block is fenced") or diag(join "\n", @$bad);
    for my $b (@$found) {
        ok($known{$b->{lang}}, "$b->{file}:$b->{line}: fenced with a known"
                               . " language ('$b->{lang}')");
        push @all, $b;
    }
}

for my $b (grep { $_->{lang} eq 'nginx' || $_->{lang} eq 'apache' } @all) {
    my ($rc, $out) = $b->{lang} eq 'nginx' ? check_nginx($b)
                                           : check_apache($b);
    my $cmd = $b->{lang} eq 'nginx' ? 'nginx -t' : 'apache2 -t';
    is($rc, 0, "$b->{file}:$b->{line}: $cmd passes")
        or diag("$out\n--- the block:\n$b->{text}");
    # whatever the server says beside its verdict is a warning
    my $verdict = qr/^Syntax\ OK$
                     |^nginx:\ (?:the\ )?configuration\ file\ \S+
                       \ (?:syntax\ is\ ok|test\ is\ successful)$/x;
    my @said = grep { !/$verdict/ } split /\n/, $out;
    is_deeply(\@said, [], "$b->{file}:$b->{line}: $cmd says nothing else");
    $b->{lang} eq 'nginx' ? $nginx++ : $apache++;

    # nginx -t cannot see this one: a status page left traced makes every
    # scrape a span
    if ($b->{text} =~ /^\s*(?:edgetrace_status;|SetHandler edgetrace-status)/m)
    {
        like($b->{text}, qr/^\s*(?:edgetrace off;|EdgeTrace Off)\s*$/m,
             "$b->{file}:$b->{line}: the status page is not traced");
    }
}

for my $b (grep { $_->{lang} eq 'json' } @all) {
    ok(eval { JSON::PP->new->utf8->decode($b->{text}); 1 },
       "$b->{file}:$b->{line}: valid JSON") or diag($@);
}

# the README's two install examples at least: a test that found nothing
# would pass on docs that lost their blocks
cmp_ok($nginx // 0, '>=', 2, 'nginx blocks found and checked');
cmp_ok($apache // 0, '>=', 2, 'apache blocks found and checked');

# the docs are the user's: they cite neither the contract's sections nor
# the runs that produced a figure by a name a reader cannot place
for my $file (@docs) {
    open my $fh, '<', "$root/$file" or die "$file: $!";
    my $text = do { local $/; <$fh> };
    unlike($text, qr/\bSPEC\b|\bsection \d/, "$file: no contract sections");
    unlike($text, qr/\bsession\s+\d/i, "$file: no run names");
}

done_testing();
