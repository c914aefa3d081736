package Edgetrace::Browser;

# A real headless browser for the tests: Debian's chromium, driven by
# chromedriver's WebDriver HTTP API (core Perl's HTTP::Tiny and JSON::PP).
#
#   my $b = start_browser();             # chromedriver + a headless chromium
#   $b->get("http://127.0.0.1:$port/#/map");
#   $b->wait_js('return !!document.querySelector("#edges")', 10);
#   my $x = $b->js('return document.title');   # a script's result
#   $b->click('#search-go');  $b->type('input[name=q]', 'word');
#   $b->alert_text;   # the open dialog's text, or undef when none is open
#   $b->screenshot("build/ui/map.png");
#   $b->stop;         # quits chromium, stops chromedriver by PID, removes
#                     # the profile directory
#
# A missing chromium or chromedriver makes the test die: it never skips.
# chromedriver and chromium are registered with Edgetrace::Test, so they
# are stopped when the test ends however it ends.

use strict;
use warnings;

use Exporter 'import';
use File::Path ();
use File::Temp ();
use HTTP::Tiny;
use JSON::PP ();
use MIME::Base64 ();
use Time::HiRes ();

use Edgetrace::Test ();

our @EXPORT_OK = qw(start_browser);

my $json = JSON::PP->new->utf8->canonical->allow_nonref;
my @live;    # the sessions not stopped yet

# a test that dies still leaves no chromium behind (this END runs before
# Edgetrace::Test's, which stops chromedriver)
END {
    $_->stop for grep { $_ } @live;
}


sub start_browser {
    my (%o) = @_;
    my $driver = Edgetrace::Test::_need('chromedriver');
    my $chromium = Edgetrace::Test::_need('chromium');
    my $port = Edgetrace::Test::free_port();
    my $profile = File::Temp::tempdir('et-chromium-XXXXXX', TMPDIR => 1);
    my $pid = Edgetrace::Test::_spawn('chromedriver',
                                      cmd => [$driver, "--port=$port"]);
    Edgetrace::Test::wait_port($port, 15, $pid);

    my $self = bless { port => $port, pid => $pid, profile => $profile,
                       http => HTTP::Tiny->new(timeout => 60) },
                     'Edgetrace::Browser::Session';

    # the binary is Debian's wrapper's target: /usr/bin/chromium is a
    # shell script that chromedriver cannot tell from the browser
    my $bin = -x '/usr/lib/chromium/chromium' ? '/usr/lib/chromium/chromium'
                                               : $chromium;
    my $r = $self->_call(POST => '/session', { capabilities => {
        alwaysMatch => {
            browserName => 'chrome',
            # a dialog stays open for alert_text to see it
            unhandledPromptBehavior => 'ignore',
            'goog:chromeOptions' => {
                binary => $bin,
                args => ['--headless=new', '--no-sandbox', '--disable-gpu',
                         '--no-first-run', '--disable-extensions',
                         '--disable-dev-shm-usage',
                         '--window-size=1400,1000',
                         "--user-data-dir=$profile"],
            },
        },
    } });
    $self->{session} = $r->{sessionId}
        or die "chromedriver: no session: " . $json->encode($r) . "\n";

    # chromium's own PID, a child of chromedriver, to stop it by PID
    ($self->{chromium}) = grep {
        Edgetrace::Test::_cmdline($_) =~ /chrom/
    } Edgetrace::Test::_children($pid);

    push @live, $self;
    return $self;
}


package Edgetrace::Browser::Session;

sub chromium_pid { $_[0]{chromium} }

sub _call {
    my ($self, $method, $path, $body) = @_;
    my $r = $self->{http}->request($method,
        "http://127.0.0.1:$self->{port}$path",
        defined $body ? { content => $json->encode($body),
                          headers => { 'Content-Type' => 'application/json' } }
                      : {});
    my $j = eval { $json->decode($r->{content}) } || {};
    return ($j->{value}, $r->{status}) if wantarray;
    die "WebDriver $method $path: $r->{status} $r->{content}\n"
        unless $r->{success};
    return $j->{value};
}

sub _s { "/session/$_[0]{session}" }

sub get {
    my ($self, $url) = @_;
    $self->_call(POST => $self->_s . '/url', { url => $url });
}

# the result of a script run in the page (WebDriver's execute/sync,
# which the page's Content-Security-Policy does not govern)
sub js {
    my ($self, $script, @args) = @_;
    return scalar $self->_call(POST => $self->_s . '/execute/sync',
                               { script => $script, args => \@args });
}

# waits until the script returns true; returns its last result
sub wait_js {
    my ($self, $script, $timeout, @args) = @_;
    my $until = Time::HiRes::time() + ($timeout || 10);
    my $v;
    while (1) {
        $v = eval { $self->js($script, @args) };
        return $v if $v;
        return $v if Time::HiRes::time() >= $until;
        Time::HiRes::sleep(0.05);
    }
}

sub _element {
    my ($self, $css) = @_;
    my $e = $self->_call(POST => $self->_s . '/element',
                         { using => 'css selector', value => $css });
    return (values %$e)[0];
}

sub click {
    my ($self, $css) = @_;
    $self->_call(POST => $self->_s . '/element/' . $self->_element($css)
                         . '/click', {});
}

sub type {
    my ($self, $css, $text) = @_;
    my $e = $self->_element($css);
    $self->_call(POST => $self->_s . "/element/$e/clear", {});
    $self->_call(POST => $self->_s . "/element/$e/value", { text => $text });
}

# the open dialog's text (alert, confirm, prompt), or undef
sub alert_text {
    my ($self) = @_;
    my ($v, $status) = $self->_call(GET => $self->_s . '/alert/text');
    return $status == 200 ? $v : undef;
}

sub screenshot {
    my ($self, $file) = @_;
    my $png = MIME::Base64::decode_base64(
        $self->_call(GET => $self->_s . '/screenshot'));
    open my $fh, '>:raw', $file or die "$file: $!";
    print $fh $png;
    close $fh;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    if ($self->{session}) {
        eval { $self->_call(DELETE => $self->_s) };
        delete $self->{session};
    }
    Edgetrace::Test::stop_pid($self->{chromium}) if $self->{chromium};
    Edgetrace::Test::stop_pid($self->{pid});
    File::Path::remove_tree($self->{profile});
    delete $self->{pid};
}

1;
