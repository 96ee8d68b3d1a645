#!/usr/bin/env python3
"""Forged Teredo traffic for the lab's negative tests (test tool, not product).

  teredo_forge.py ra SRC:PORT DST:PORT --server IP --mapping IP:PORT [--nonce HEX]
      one Router Advertisement from a spoofed IPv4 source (raw socket): the
      Teredo server's link-local address to fe80::ffff:ffff:ffff, hop limit
      255, one Prefix Information option (2001:0:<server>::/64), MTU 1280,
      an origin indication carrying --mapping, and an authentication header
      with --nonce (16 hex digits), or none without --nonce.
  teredo_forge.py echo SRC:PORT DST:PORT --src6 ADDR --dst6 ADDR [--ident N] [--seq N]
      one ICMPv6 Echo Request (IPv6 in UDP, no Teredo header) from a spoofed
      IPv4 source, with a marker in its payload.
  teredo_forge.py sniff IFACE
      prints "listening", then "delivered seq=N src=ADDR ident=N" for every marked
      Echo Request that arrives on IFACE (a client's tunnel: what the client
      delivered to the host); runs until killed.
  teredo_forge.py fake-server IP1 IP2 --bad IP:PORT --good IP:PORT --server IP
      a Teredo server that answers every Router Solicitation on IP1:3544 and
      IP2:3544 twice: at once with a wrong nonce and mapping --bad, then,
      0.3 s later, with the right nonce and mapping --good.  Prints a line
      per RS; runs until killed.
  teredo_forge.py mapping ADDR
      the mapping "IP:PORT" embedded in a Teredo address.
  teredo_forge.py teredo SERVER IP:PORT
      the Teredo address (flags 0) of mapping IP:PORT at server SERVER.

The raw socket (IP_HDRINCL) lets a node on the "internet" send as any
address, for instance as the running server's 198.51.100.1:3544, through
the hole the client's NAT keeps open for that address and port.
"""
import argparse
import ipaddress
import os
import select
import socket
import struct
import sys
import time

SERVER_LL = ipaddress.IPv6Address("fe80::8000:f227:39cc:9bfe")
CLIENT_LL = ipaddress.IPv6Address("fe80::ffff:ffff:ffff")
TEREDO_PORT = 3544


def csum16(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def icmpv6(src, dst, msg, hop):
    """An IPv6 packet carrying ICMPv6 message `msg` (checksum filled in)."""
    pseudo = src.packed + dst.packed + struct.pack("!II", len(msg), 58)
    msg = msg[:2] + struct.pack("!H", csum16(pseudo + msg)) + msg[4:]
    return struct.pack("!IHBB", 6 << 28, len(msg), 58, hop) + src.packed + dst.packed + msg


def auth_header(nonce):
    """RFC 4380 §5.1.1: ID-len 0, AU-len 0, nonce, confirmation 0."""
    return b"\x00\x01\x00\x00" + nonce + b"\x00"


def origin(ip, port):
    """RFC 4380 §5.1.1 origin indication: obfuscated port and address."""
    return b"\x00\x00" + struct.pack("!H", port ^ 0xFFFF) + bytes(b ^ 0xFF for b in ipaddress.IPv4Address(ip).packed)


def router_advertisement(server, mapping, nonce):
    prefix = b"\x20\x01\x00\x00" + ipaddress.IPv4Address(server).packed + bytes(8)
    # PIO: type 3, len 4, /64, L and A, valid and preferred lifetimes, prefix.
    pio = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 86400, 0) + prefix
    mtu = struct.pack("!BBHI", 5, 1, 0, 1280)
    ra = struct.pack("!BBHBBHII", 134, 0, 0, 0, 0, 0, 0, 0) + pio + mtu
    head = auth_header(nonce) if nonce is not None else b""
    return head + origin(*mapping) + icmpv6(SERVER_LL, CLIENT_LL, ra, 255)


MARKER = b"shipworm lab forged echo"
ECHO_IDENT = 0x5357


def echo_request(src6, dst6, ident, seq):
    msg = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + MARKER
    return icmpv6(ipaddress.IPv6Address(src6), ipaddress.IPv6Address(dst6), msg, 64)


def send_spoofed(src, dst, payload):
    """One UDP datagram from any IPv4 source, through a raw socket."""
    (sip, sport), (dip, dport) = src, dst
    s, d = ipaddress.IPv4Address(sip).packed, ipaddress.IPv4Address(dip).packed
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ck = csum16(s + d + struct.pack("!BBH", 0, 17, len(udp)) + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", ck) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), os.getpid() & 0xFFFF, 0, 64, 17, 0, s, d)
    ip = ip[:10] + struct.pack("!H", csum16(ip)) + ip[12:]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
        sock.sendto(ip + udp, (dip, 0))


def endpoint(text):
    ip, _, port = text.rpartition(":")
    return str(ipaddress.IPv4Address(ip)), int(port)


def teredo_mapping(addr):
    b = ipaddress.IPv6Address(addr).packed
    port = struct.unpack("!H", b[10:12])[0] ^ 0xFFFF
    ip = ipaddress.IPv4Address(bytes(x ^ 0xFF for x in b[12:16]))
    return "%s:%d" % (ip, port)


def teredo_address(server, mapping):
    ip, port = mapping
    b = (b"\x20\x01\x00\x00" + ipaddress.IPv4Address(server).packed + b"\x00\x00"
         + struct.pack("!H", port ^ 0xFFFF) + bytes(x ^ 0xFF for x in ipaddress.IPv4Address(ip).packed))
    return str(ipaddress.IPv6Address(b))


def rs_nonce(data):
    """The nonce of a Router Solicitation with an authentication header."""
    if len(data) < 13 or data[:2] != b"\x00\x01":
        return None
    end = 13 + data[2] + data[3]
    packet = data[end:]
    if len(packet) < 41 or packet[6] != 58 or packet[40] != 133:
        return None
    return data[4 + data[2] + data[3]:12 + data[2] + data[3]]


def sniff(iface):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.bind((iface, 0))
    print("listening on %s" % iface, flush=True)
    while True:
        packet, (_, _, pkttype, _, _) = sock.recvfrom(65536)
        if pkttype == socket.PACKET_OUTGOING or len(packet) < 48 or packet[0] >> 4 != 6:
            continue
        if packet[6] != 58 or packet[40] != 128 or MARKER not in packet[48:]:
            continue
        ident, seq = struct.unpack("!HH", packet[44:48])
        src = ipaddress.IPv6Address(packet[8:24])
        print("delivered seq=%d src=%s ident=%d" % (seq, src, ident), flush=True)


def fake_server(args):
    socks = []
    for ip in (args.ip1, args.ip2):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, TEREDO_PORT))
        socks.append(s)
    print("listening on %s:%d and %s:%d" % (args.ip1, TEREDO_PORT, args.ip2, TEREDO_PORT), flush=True)
    bad, good = endpoint(args.bad), endpoint(args.good)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            data, peer = s.recvfrom(2048)
            nonce = rs_nonce(data)
            if nonce is None:
                continue
            wrong = bytes(b ^ 0x5A for b in nonce)
            s.sendto(router_advertisement(args.server, bad, wrong), peer)
            time.sleep(0.3)
            s.sendto(router_advertisement(args.server, good, nonce), peer)
            print("RS from %s:%d to %s: answered wrong nonce (%s:%d), then right nonce (%s:%d)"
                  % (peer[0], peer[1], s.getsockname()[0], *bad, *good), flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    ra = sub.add_parser("ra")
    ra.add_argument("src", type=endpoint)
    ra.add_argument("dst", type=endpoint)
    ra.add_argument("--server", required=True)
    ra.add_argument("--mapping", required=True, type=endpoint)
    ra.add_argument("--nonce", type=bytes.fromhex)
    echo = sub.add_parser("echo")
    echo.add_argument("src", type=endpoint)
    echo.add_argument("dst", type=endpoint)
    echo.add_argument("--src6", required=True)
    echo.add_argument("--dst6", required=True)
    echo.add_argument("--ident", type=int, default=ECHO_IDENT)
    echo.add_argument("--seq", type=int, default=1)
    sn = sub.add_parser("sniff")
    sn.add_argument("iface")
    fs = sub.add_parser("fake-server")
    fs.add_argument("ip1")
    fs.add_argument("ip2")
    fs.add_argument("--server", required=True)
    fs.add_argument("--bad", required=True)
    fs.add_argument("--good", required=True)
    mp = sub.add_parser("mapping")
    mp.add_argument("addr")
    ta = sub.add_parser("teredo")
    ta.add_argument("server")
    ta.add_argument("mapping", type=endpoint)
    a = p.parse_args()
    if a.cmd == "ra":
        send_spoofed(a.src, a.dst, router_advertisement(a.server, a.mapping, a.nonce))
    elif a.cmd == "echo":
        send_spoofed(a.src, a.dst, echo_request(a.src6, a.dst6, a.ident, a.seq))
    elif a.cmd == "sniff":
        sniff(a.iface)
    elif a.cmd == "fake-server":
        fake_server(a)
    elif a.cmd == "teredo":
        print(teredo_address(a.server, a.mapping))
    else:
        print(teredo_mapping(a.addr))


if __name__ == "__main__":
    sys.exit(main())
