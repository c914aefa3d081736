package Edgetrace::Shard;

# The shards of a sharded stream, computed in Perl from the rule
# docs/stream.md ("Sharded streams") gives other consumers, so that tests
# check the C code against the documentation rather than against itself.
#
#   shard_key('edgetrace:spans', 2, 4)   # 'edgetrace:spans:2{1}'
#   shard_keys('edgetrace:spans', 4)     # the four, in shard order
#   shard_of($trace_id, 4)               # 0 .. 3
#   slot('123456789')                    # Redis Cluster's key slot

use strict;
use warnings;

use Exporter 'import';

our @EXPORT_OK = qw(crc16 slot shard_key shard_keys shard_of);
our %EXPORT_TAGS = (all => \@EXPORT_OK);


# CRC16/XMODEM: polynomial 0x1021, initial value 0, no reflection
sub crc16 {
    my ($s) = @_;
    my $crc = 0;
    for my $c (unpack 'C*', $s) {
        $crc ^= $c << 8;
        for (1 .. 8) {
            $crc = $crc & 0x8000 ? (($crc << 1) ^ 0x1021) & 0xffff
                                 : ($crc << 1) & 0xffff;
        }
    }
    return $crc;
}

# the key's slot: only its hash tag when it has one ("{...}", not empty)
sub slot {
    my ($key) = @_;
    $key = $1 if $key =~ /^[^{]*\{([^}]+)\}/s;
    return crc16($key) % 16384;
}

# KEY:i{j}, j the smallest number whose slot is in the i-th of n ranges
sub shard_key {
    my ($key, $i, $n) = @_;
    return $key if $n == 1;
    for (my $j = 0; ; $j++) {
        return "$key:$i\{$j\}" if int(slot("$j") * $n / 16384) == $i;
    }
}

sub shard_keys {
    my ($key, $n) = @_;
    return map { shard_key($key, $_, $n) } 0 .. $n - 1;
}

# the last 16 hex digits of the trace id, big-endian, modulo n (in two
# 32-bit halves: no 64-bit arithmetic needed)
sub shard_of {
    my ($trace_id, $n) = @_;
    my $hi = hex substr($trace_id, 16, 8);
    my $lo = hex substr($trace_id, 24, 8);
    return (($hi % $n) * (4294967296 % $n) + $lo % $n) % $n;
}

1;
