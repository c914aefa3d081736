package Edgetrace::Tls;

# Certificates for the TLS tests, made with `openssl` at test time in a
# temporary directory: nothing secret is committed.
#
#   my $pki = Edgetrace::Tls::make_pki();
#   $pki->{ca}                    the CA that signs everything below
#   $pki->{server}, {server_key}  127.0.0.1 and localhost (IP and DNS SANs)
#   $pki->{renewed}, {renewed_key} the same names, a second certificate
#   $pki->{expired}, {expired_key} the same names, valid in January 2020
#   $pki->{wrong_name}, ...        for other.example only
#   $pki->{client}, {client_key}  a client certificate (mutual TLS)
#   $pki->{other_ca}              a CA that signed nothing here
#   $pki->{foreign}, ...           127.0.0.1, signed by a third CA
#
# redis_tls_args($pki, port => P, cert => 'server', auth_clients => 'no')
# gives redis-server's arguments for a TLS port beside its plain one.

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();

our @EXPORT_OK = qw(make_pki redis_tls_args);

sub _openssl {
    my ($dir, @args) = @_;
    my $out = `cd '$dir' && openssl @args 2>&1`;
    die "openssl @args failed:\n$out" if $?;
    return $out;
}

sub _write {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!\n";
    print $fh $text;
    close $fh or die "$path: $!\n";
}

# a CA: NAME.crt and NAME.key, and what `openssl ca` needs to sign with it
sub _ca {
    my ($dir, $name) = @_;
    _openssl($dir, "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
             "-nodes -keyout $name.key -out $name.crt -days 3650",
             "-subj '/CN=edgetrace test $name'",
             "-addext basicConstraints=critical,CA:TRUE",
             "-addext keyUsage=critical,keyCertSign,cRLSign");
    mkdir "$dir/$name.db";
    _write("$dir/$name.db/index.txt", '');
    _write("$dir/$name.db/serial", sprintf("%04X\n", 4096 + int(rand(4096))));
    _write("$dir/$name.cnf", <<"CNF");
[ca]
default_ca = this
[this]
dir = $dir/$name.db
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
certificate = $dir/$name.crt
private_key = $dir/$name.key
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
CNF
}

# NAME.crt and NAME.key signed by CA, with the subject alternative names
# "san" and the validity "days" from now, or "start" to "end"
sub _cert {
    my ($dir, $ca, $name, %o) = @_;
    my $ext = $o{client} ? 'extendedKeyUsage=clientAuth'
                         : 'extendedKeyUsage=serverAuth';
    _openssl($dir, "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
             "-nodes -keyout $name.key -out $name.csr",
             "-subj '/CN=$name'",
             ($o{san} ? "-addext subjectAltName=$o{san}" : ()),
             "-addext $ext");
    my @when = $o{start} ? ("-startdate $o{start}", "-enddate $o{end}")
                         : ('-days ' . ($o{days} || 3650));
    _openssl($dir, "ca -batch -notext -config $ca.cnf -in $name.csr",
             "-out $name.crt", @when);
}

sub make_pki {
    my (%o) = @_;
    my $dir = $o{dir} || File::Temp::tempdir('et-pki-XXXXXX', TMPDIR => 1,
                                             CLEANUP => 1);
    my $here = 'IP:127.0.0.1,DNS:localhost';

    _ca($dir, 'ca');
    _ca($dir, 'other_ca');
    _ca($dir, 'third_ca');

    _cert($dir, 'ca', 'server', san => $here);
    _cert($dir, 'ca', 'renewed', san => $here);
    _cert($dir, 'ca', 'expired', san => $here,
          start => '20200101000000Z', end => '20200102000000Z');
    _cert($dir, 'ca', 'wrong_name', san => 'DNS:other.example');
    _cert($dir, 'ca', 'client', client => 1);
    _cert($dir, 'third_ca', 'foreign', san => $here);

    my %pki = (dir => $dir);
    for my $n (qw(ca other_ca third_ca)) {
        $pki{$n} = "$dir/$n.crt";
    }
    for my $n (qw(server renewed expired wrong_name client foreign)) {
        $pki{$n} = "$dir/$n.crt";
        $pki{"${n}_key"} = "$dir/$n.key";
    }
    return \%pki;
}

# redis-server's arguments for a TLS port "port" serving certificate
# "cert" (a name of make_pki's), asking for client certificates as
# "auth_clients" says (no, yes, optional)
sub redis_tls_args {
    my ($pki, %o) = @_;
    my $cert = $o{cert} || 'server';
    return ('--tls-port', $o{port},
            '--tls-cert-file', $pki->{$cert},
            '--tls-key-file', $pki->{"${cert}_key"},
            '--tls-ca-cert-file', $pki->{ca},
            '--tls-auth-clients', $o{auth_clients} || 'no');
}

1;
