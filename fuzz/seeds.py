#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into fuzz/corpus/TARGET/seed-*.

Random bytes almost never carry a valid ICMPv6 checksum, so without seeds the
RS/RA/echo/error parsers would be fuzzed only up to their checksum test. The
packets here are built independently of the Rust code (from RFC 4380, 4443
and 4861 layouts and the vectors in the project's reference notes), with
documentation addresses only. Usage: python3 fuzz/seeds.py
"""

import ipaddress
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

CLIENT_LL = "fe80::8000:5445:5245:444f"  # cone client link-local (Miredo)
SERVER_LL = "fe80::8000:f227:bec9:1c87"  # server link-local for 65.54.227.120
ALL_ROUTERS = "ff02::2"
TEREDO_V1 = "2001:0:4136:e378:8000:63bf:3fff:fdd2"  # 65.54.227.120, 192.0.2.45:40000
TEREDO_V4 = "2001:0:cb00:7178:0:efff:3fff:fdfe"  # 203.0.113.120, 192.0.2.1:4096
NATIVE = "2001:db8::1"


def a6(text):
    return ipaddress.IPv6Address(text).packed


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def ipv6(src, dst, next_header, payload, hop_limit=255):
    return struct.pack("!IHBB", 6 << 28, len(payload), next_header, hop_limit) + a6(src) + a6(dst) + payload


def icmpv6(src, dst, typ, code, body, hop_limit=255):
    """An IPv6 packet carrying ICMPv6 `typ`/`code` + `body`, checksum set (RFC 4443 §2.3)."""
    msg = struct.pack("!BBH", typ, code, 0) + body
    pseudo = a6(src) + a6(dst) + struct.pack("!IxxxB", len(msg), 58)
    msg = msg[:2] + struct.pack("!H", checksum(pseudo + msg)) + msg[4:]
    return ipv6(src, dst, 58, msg, hop_limit)


def rs(src=CLIENT_LL, options=b""):
    return icmpv6(src, ALL_ROUTERS, 133, 0, b"\0\0\0\0" + options)


def ra(prefix="2001:0:4136:e378::", mtu=1280):
    body = struct.pack("!BBHII", 0, 0, 0, 0, 0)[:12]  # hop limit, flags, lifetime, reachable, retrans
    pio = struct.pack("!BBBBIII", 3, 4, 64, 0x40, 0xFFFFFFFF, 0xFFFFFFFF, 0) + a6(prefix)
    opts = pio + (struct.pack("!BBHI", 5, 1, 0, mtu) if mtu is not None else b"")
    return icmpv6(SERVER_LL, CLIENT_LL, 134, 0, body + opts)


def echo(src, dst, typ=128, ident=0x1234, seq=1, data=b"shipworm", hop_limit=64):
    return icmpv6(src, dst, typ, 0, struct.pack("!HH", ident, seq) + data, hop_limit)


def bubble(src, dst, hop_limit=0):
    return ipv6(src, dst, 59, b"", hop_limit)


def unreachable(src, quoted, code=3):
    dst = str(ipaddress.IPv6Address(quoted[8:24]))
    return icmpv6(src, dst, 1, code, b"\0\0\0\0" + quoted, 64)


def origin(ip, port):
    return b"\0\0" + struct.pack("!H", port ^ 0xFFFF) + bytes(b ^ 0xFF for b in ipaddress.IPv4Address(ip).packed)


def auth(nonce=b"\x01\x02\x03\x04\x05\x06\x07\x08", client_id=b"", value=b"", confirmation=0):
    return b"\0\1" + bytes([len(client_id), len(value)]) + client_id + value + nonce + bytes([confirmation])


def server_input(local, remote_ip, remote_port, datagram, delay_ms=0):
    """Header of the `server` fuzz target: local bit, remote endpoint, delay, length."""
    head = bytes([local]) + ipaddress.IPv4Address(remote_ip).packed + struct.pack("!HH", remote_port, delay_ms)
    return head + bytes([min(len(datagram), 255)]) + datagram


def seeds():
    req = echo(TEREDO_V1, NATIVE)
    trailers = b"\x01\x04\xde\xad\xbe\xef" + b"\x05\x02\x9c\x40"  # nonce, random port (RFC 6081)
    return {
        "bubble": {"relay": bubble("fe80::1", TEREDO_V1), "indirect": bubble(TEREDO_V4, TEREDO_V1)},
        "addr": {
            "v1": a6(TEREDO_V1) + b"\x20\x01\x00\x00",
            "v4": a6(TEREDO_V4) + b"\x3f\xfe\x83\x1f",
        },
        "ndisc_rs": {"cone": rs(), "unspecified": rs("::"), "slla": rs(options=b"\x01\x01\0\0\0\0\0\0")},
        "ndisc_ra": {"teredo": ra(), "no-mtu": ra(mtu=None)},
        "echo": {"request": req, "reply": echo(NATIVE, TEREDO_V1, typ=129, hop_limit=60)},
        "icmp_error": {"unreachable": unreachable(NATIVE, req), "quote-bubble": unreachable(NATIVE, bubble(TEREDO_V4, TEREDO_V1), 0)},
        "encap": {
            "simple": bubble(TEREDO_V4, TEREDO_V1),
            "rs-auth": auth() + rs(),
            "ra-auth-origin": auth(confirmation=0) + origin("192.0.2.45", 40000) + ra(),
            "origin-bubble": origin("192.0.2.1", 4096) + bubble(TEREDO_V4, TEREDO_V1),
            "trailers": bubble(TEREDO_V4, TEREDO_V1) + trailers,
            "auth-id": auth(client_id=b"client", value=b"\xaa" * 20) + rs(),
        },
        "server": {
            "rs": server_input(0, "192.0.2.45", 40000, auth() + rs()),
            "rs-secondary": server_input(1, "192.0.2.45", 40000, auth() + rs()),
            "bubble": server_input(0, "192.0.2.1", 4096, bubble(TEREDO_V4, "2001:0:c000:201:0:efff:3fff:fdfe")),
            "echo": server_input(0, "192.0.2.45", 40000, req),
            "two": server_input(0, "192.0.2.45", 40000, auth() + rs())
            + server_input(1, "198.51.100.7", 3544, req, 1000),
        },
    }


def main():
    # The two RFC-confirmed checksums of a bare RS (reference notes §1.4).
    assert rs()[42:44] == b"\x12\x5d", rs()[42:44].hex()
    assert rs("fe80::ffff:ffff:ffff")[42:44] == b"\x7d\x37"
    for target, files in seeds().items():
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)
    print("seeds written to", os.path.join(HERE, "corpus"))


if __name__ == "__main__":
    main()
