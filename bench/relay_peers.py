#!/usr/bin/env python3
"""Many Teredo peers for a relay's memory benchmark (bench/relay_memory.sh).

  relay_peers.py ping COUNT RATE START
      in the native host: one ICMPv6 Echo Request to each of COUNT Teredo
      addresses, peer i at START + i / RATE (START: Unix time, float).
  relay_peers.py answer COUNT RATE START DELAY RELAY PORT
      in the peers' node: peer i's bubble from its own mapping to the
      relay's RELAY:PORT at START + i / RATE + DELAY, so the relay, which
      has just made an entry and bubbled peer i, trusts it.

Peer i (0 <= i < 64,000): server 203.0.113.(1 + i % 250), mapping
198.51.100.60 port 10000 + i, flags 0 (RFC 4380 §4: the mapping is stored
inverted).  Each prints "sent <n> in <seconds> s, <late> late" (late: sent
more than 100 ms after its slot, i.e. the pacing did not hold).
"""
import socket
import struct
import sys
import time

MAPPING_IP = "198.51.100.60"
NATIVE = "2001:db8:1::100"


def peer(i):
    """(Teredo address bytes, mapped port) of peer i."""
    server = socket.inet_aton("203.0.113.%d" % (1 + i % 250))
    port = 10000 + i
    mapped = socket.inet_aton(MAPPING_IP)
    inv = bytes(b ^ 0xFF for b in mapped)
    addr = b"\x20\x01\x00\x00" + server + b"\x00\x00" + struct.pack("!H", port ^ 0xFFFF) + inv
    return addr, port


def paced(count, rate, start, delay, send):
    late = 0
    for i in range(count):
        slot = start + i / rate + delay
        wait = slot - time.time()
        if wait > 0:
            time.sleep(wait)
        elif wait < -0.1:
            late += 1
        send(i)
    return late


def ping(count, rate, start):
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    # Type 128, code 0; the kernel fills in the checksum of a raw ICMPv6
    # socket.  16 bytes of payload, as a small ping.
    def send(i):
        msg = struct.pack("!BBHHH", 128, 0, 0, 0x5357, i & 0xFFFF) + b"relay-memory-ben"
        s.sendto(msg, (socket.inet_ntop(socket.AF_INET6, peer(i)[0]), 0))
    t0 = time.time()
    late = paced(count, rate, start, 0.0, send)
    print("sent %d in %.1f s, %d late" % (count, time.time() - t0, late), flush=True)


def answer(count, rate, start, delay, relay, port):
    # A raw UDP socket: the kernel adds the IPv4 header from this node's
    # address, we write UDP headers with any source port (checksum 0: none,
    # allowed over IPv4).
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    native = socket.inet_pton(socket.AF_INET6, NATIVE)

    def send(i):
        addr, sport = peer(i)
        # A bubble (RFC 4380 §2.8): IPv6 header, next header 59, no payload.
        ipv6 = struct.pack("!IHBB", 6 << 28, 0, 59, 255) + addr + native
        udp = struct.pack("!HHHH", sport, port, 8 + len(ipv6), 0) + ipv6
        s.sendto(udp, (relay, 0))
    t0 = time.time()
    late = paced(count, rate, start, delay, send)
    print("sent %d in %.1f s, %d late" % (count, time.time() - t0, late), flush=True)


def main():
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == "ping":
        ping(int(a[1]), float(a[2]), float(a[3]))
    elif len(a) == 7 and a[0] == "answer":
        answer(int(a[1]), float(a[2]), float(a[3]), float(a[4]), a[5], int(a[6]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
