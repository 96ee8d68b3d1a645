#!/usr/bin/env python3
"""One TCP transfer over IPv6 with a SHA-256 at both ends (lab test tool).

  tcp_xfer.py recv PORT            accept one connection on [::]:PORT, read to
                                   EOF; prints "listening", then
                                   "received <bytes> <sha256> <seconds>"
  tcp_xfer.py send ADDR PORT FILE  send FILE; prints "sent <bytes> <sha256>
                                   <seconds>"

Every socket operation times out after 30 s, so a broken path fails the
test instead of hanging it.
"""
import hashlib
import socket
import sys
import time

TIMEOUT = 30
CHUNK = 1 << 16


def recv(port):
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("::", port))
        srv.listen(1)
        srv.settimeout(TIMEOUT)
        print("listening", flush=True)
        conn, _ = srv.accept()
    with conn:
        conn.settimeout(TIMEOUT)
        h, n, t0 = hashlib.sha256(), 0, time.monotonic()
        while True:
            data = conn.recv(CHUNK)
            if not data:
                break
            h.update(data)
            n += len(data)
    print("received %d %s %.3f" % (n, h.hexdigest(), time.monotonic() - t0), flush=True)


def send(addr, port, path):
    with open(path, "rb") as f:
        data = f.read()
    t0 = time.monotonic()
    with socket.create_connection((addr, port), timeout=TIMEOUT) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        # Wait for the receiver to close: everything has been read then.
        while conn.recv(CHUNK):
            pass
    print("sent %d %s %.3f" % (len(data), hashlib.sha256(data).hexdigest(), time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["recv"]:
        recv(int(sys.argv[2]))
    elif sys.argv[1:2] == ["send"]:
        send(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
