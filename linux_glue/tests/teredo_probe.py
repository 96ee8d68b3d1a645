#!/usr/bin/env python3
"""Minimal Teredo client probe for server_cli.sh (test tool, not product code).

Usage: teredo_probe.py SERVER_IPV4 LOCAL_IPV4 NATIVE_IPV6

1. Sends a Router Solicitation with the cone bit clear and expects the Router
   Advertisement from SERVER_IPV4:3544 (RFC 4380 §5.3.2).
2. Sends one with the cone bit set and expects the RA from the *other*
   address, SERVER_IPV4 + 1.
3. Builds its Teredo address from the RA (prefix, server, origin indication)
   and sends an ICMPv6 echo request to NATIVE_IPV6 through the server, which
   must forward it natively (RFC 4380 §5.3.1); the caller checks it arrived.
Prints one line per step; exits 1 on the first failure.
"""
import ipaddress
import socket
import struct
import sys

server = ipaddress.IPv4Address(sys.argv[1])
local = sys.argv[2]
native = ipaddress.IPv6Address(sys.argv[3])
ALL_ROUTERS = ipaddress.IPv6Address("ff02::2")
LL_RESTRICTED = ipaddress.IPv6Address("fe80::ffff:ffff:ffff")
LL_CONE = ipaddress.IPv6Address("fe80::8000:5445:5245:444f")


def checksum(src, dst, payload):
    data = src.packed + dst.packed + struct.pack("!II", len(payload), 58) + payload
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv6(src, dst, icmp):
    icmp = icmp[:2] + struct.pack("!H", checksum(src, dst, icmp)) + icmp[4:]
    hop = 255 if dst == ALL_ROUTERS else 64
    return struct.pack("!IHBB", 6 << 28, len(icmp), 58, hop) + src.packed + dst.packed + icmp


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((local, 0))
sock.settimeout(2)


def solicit(src_ll, expect_from):
    nonce = b"\x11\x22\x33\x44\x55\x66\x77\x88"
    auth = b"\x00\x01\x00\x00" + nonce + b"\x00"
    rs = bytes([133, 0, 0, 0, 0, 0, 0, 0])
    sock.sendto(auth + ipv6(src_ll, ALL_ROUTERS, rs), (str(server), 3544))
    try:
        data, peer = sock.recvfrom(2048)
    except socket.timeout:
        fail("no RA for RS from %s" % src_ll)
    if peer != (str(expect_from), 3544):
        fail("RA for RS from %s came from %s, want %s:3544" % (src_ll, peer, expect_from))
    if data[:2] == b"\x00\x01":
        data = data[13 + data[2] + data[3]:]
    if data[:2] != b"\x00\x00":
        fail("RA without origin indication")
    port = struct.unpack("!H", data[2:4])[0] ^ 0xFFFF
    mapped = ipaddress.IPv4Address(bytes(b ^ 0xFF for b in data[4:8]))
    packet = data[8:]
    if packet[6] != 58 or packet[40] != 134:
        fail("reply is not a Router Advertisement")
    print("ok   RA from %s:3544 for RS from %s, mapping %s:%d" % (peer[0], src_ll, mapped, port))
    return packet, port, mapped


solicit(LL_RESTRICTED, server)
packet, port, mapped = solicit(LL_CONE, server + 1)

# Prefix Information option: type 3, length 4; the prefix is at offset 16.
options = packet[40 + 16:]
while options and options[0] != 3:
    options = options[options[1] * 8:]
if not options:
    fail("RA without a Prefix Information option")
prefix = options[16:24]
teredo = ipaddress.IPv6Address(
    prefix + struct.pack("!HH", 0, port ^ 0xFFFF) + bytes(b ^ 0xFF for b in mapped.packed)
)
echo = bytes([128, 0, 0, 0]) + struct.pack("!HH", 0x5357, 1) + b"shipworm"
sock.sendto(ipv6(teredo, native, echo), (str(server), 3544))
print("ok   echo request sent from %s to %s via the server" % (teredo, native))
