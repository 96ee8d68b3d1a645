#!/usr/bin/env python3
"""Traffic for the relay lab test (test tool, not product).

  relay_traffic.py udp-recv PORT COUNT
      receive datagrams on [::]:PORT until COUNT distinct ones arrived or
      2 s passed without any (30 s at most before the first); prints
      "listening", then "received <distinct> corrupt <n> duplicate <n>".
  relay_traffic.py udp-send ADDR PORT COUNT SIZE
      send COUNT datagrams of SIZE bytes (>= 8) to [ADDR]:PORT, in bursts of
      50 with 1 ms between bursts; prints "sent <count>".
  relay_traffic.py flood COUNT SERVER
      one ICMPv6 Echo Request to each of COUNT random Teredo addresses under
      2001:0::/32 with server SERVER (random flags, port and mapped address),
      through a raw socket as fast as it goes; prints "flooded <count> in
      <seconds>".

Datagram i carries its number and then bytes derived from SHA-256(i), so
the receiver can tell a corrupted datagram from a lost one.
"""
import hashlib
import ipaddress
import os
import socket
import struct
import sys
import time


def payload(i, size):
    seed = hashlib.sha256(struct.pack("!Q", i)).digest()
    body = (seed * (size // len(seed) + 1))[: size - 8]
    return struct.pack("!Q", i) + body


def udp_recv(port, count):
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        s.bind(("::", port))
        print("listening", flush=True)
        seen, corrupt, dup = set(), 0, 0
        s.settimeout(30)
        while len(seen) < count:
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            s.settimeout(2)
            if len(data) < 8:
                corrupt += 1
                continue
            i = struct.unpack("!Q", data[:8])[0]
            if data != payload(i, len(data)):
                corrupt += 1
            elif i in seen:
                dup += 1
            else:
                seen.add(i)
    print("received %d corrupt %d duplicate %d" % (len(seen), corrupt, dup), flush=True)


def udp_send(addr, port, count, size):
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        for i in range(count):
            s.sendto(payload(i, size), (addr, port))
            if i % 50 == 49:
                time.sleep(0.001)
    print("sent %d" % count, flush=True)


def flood(count, server):
    srv = ipaddress.IPv4Address(server).packed
    t0 = time.monotonic()
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
        for i in range(count):
            dst = ipaddress.IPv6Address(b"\x20\x01\x00\x00" + srv + os.urandom(8))
            # Echo Request; the kernel fills in the checksum of raw ICMPv6.
            msg = struct.pack("!BBHHH", 128, 0, 0, 0x464C, i & 0xFFFF) + b"flood"
            try:
                s.sendto(msg, (str(dst), 0))
            except OSError:
                pass  # ENOBUFS under the burst: that datagram is lost
    print("flooded %d in %.3f" % (count, time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "udp-recv":
        udp_recv(int(args[0]), int(args[1]))
    elif cmd == "udp-send":
        udp_send(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "flood":
        flood(int(args[0]), args[1])
    else:
        sys.exit(__doc__)
