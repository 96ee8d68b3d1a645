#!/usr/bin/env python3
"""A one-name DNS server for the lab's client_dns test (test tool, not product).

  fake_dns.py ADDR NAME ANSWER_FILE
      listens on UDP ADDR:53 and prints "listening" once bound.  A query for
      NAME (case-insensitive, final dot optional) of type A gets the IPv4
      address that ANSWER_FILE holds at that moment (the file is read again
      for every query, so a test can change the answer mid-run), with TTL 0;
      any other type for NAME gets an empty NOERROR answer; any other name
      gets NXDOMAIN.  An empty or missing ANSWER_FILE means NXDOMAIN for NAME
      too.  Prints "query NAME TYPE -> RESULT" per query; runs until killed.

Only what a stub resolver's A query needs: one question, no compression in
the question, no EDNS (an OPT record in the query is ignored).
"""
import ipaddress
import socket
import struct
import sys

TYPE_A = 1
RCODE_NXDOMAIN = 3


def parse_question(msg):
    """(id, flags, qname, qtype, end of the question) or None."""
    if len(msg) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", msg[:6])
    if flags & 0x8000 or qdcount != 1:  # an answer, or not one question
        return None
    labels, i = [], 12
    while True:
        if i >= len(msg):
            return None
        n = msg[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(msg):
            return None
        labels.append(msg[i:i + n].decode("ascii", "replace"))
        i += n
    if i + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack("!HH", msg[i:i + 4])
    return ident, flags, ".".join(labels).lower(), qtype, i + 4


def answer_for(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return str(ipaddress.IPv4Address(text)) if text else None


def main():
    addr, name, path = sys.argv[1], sys.argv[2].lower().rstrip("."), sys.argv[3]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, 53))
    print("listening", flush=True)
    while True:
        msg, peer = sock.recvfrom(512)
        q = parse_question(msg)
        if q is None:
            continue
        ident, flags, qname, qtype, end = q
        a = answer_for(path) if qname == name else None
        # QR, the query's RD, RA; AA.
        rflags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080
        answers = b""
        if qname != name or a is None:
            rflags |= RCODE_NXDOMAIN
            result = "NXDOMAIN"
        elif qtype == TYPE_A:
            # Name: a pointer to the question's (offset 12); TTL 0.
            answers = struct.pack("!HHHIH", 0xC00C, TYPE_A, 1, 0, 4) + socket.inet_aton(a)
            result = a
        else:
            result = "no data"
        header = struct.pack("!HHHHHH", ident, rflags, 1, 1 if answers else 0, 0, 0)
        sock.sendto(header + msg[12:end] + answers, peer)
        print(f"query {qname} {qtype} -> {result}", flush=True)


if __name__ == "__main__":
    main()
