#!/usr/bin/env bash
# Issue 4, Teredo client: Shipworm's client reaches a native IPv6 host
# through Debian's Miredo relay, and carries bulk data both ways.
#  - client1 → native ping: the direct IPv6 connectivity test (RFC 4380
#    §5.2.9) goes through the server, the reply comes back via the relay,
#    which the client then trusts;
#  - native → client1 ping, then 4 MiB of random data over TCP each way
#    (native → client1 and client1 → native), SHA-256 equal at both ends
#    (throughput printed);
#  - native → client2 (a second Shipworm client that never talked to the
#    relay): the relay's indirect bubble arrives through the server with an
#    origin indication, the client's direct bubble opens its NAT, the echo
#    requests are delivered.
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=miredo}"
BYTES=$((4 << 20))

lab_test_begin client_native
lab_require "lab up" lab_up
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"
lab_require "start the Miredo relay" lab_start_miredo_relay
t0=$(lab_now)
lab_require "start shipworm client in client1" lab_start_shipworm_client client1
lab_require "start shipworm client in client2" lab_start_shipworm_client client2
a1='' a2=''
lab_require "client1 (shipworm) qualifies within 10 s" lab_wait_teredo_addr client1 10 a1
lab_require "client2 (shipworm) qualifies within 10 s" lab_wait_teredo_addr client2 10 a2
lab_pass "both clients qualified in $(lab_since "$t0") s: $a1, $a2"

t=$(lab_now)
if lab_ping client1 "$LAB_NATIVE_IP6" 3; then
    lab_pass "client1 → native via the relay ($(lab_since "$t") s): $LAB_PING_SUMMARY"
else
    lab_fail "client1 → native via the relay: ${LAB_PING_SUMMARY:-no output}"
fi
t=$(lab_now)
if lab_ping native "$a1" 3; then
    lab_pass "native → client1 ($(lab_since "$t") s): $LAB_PING_SUMMARY"
else
    lab_fail "native → client1: ${LAB_PING_SUMMARY:-no output}"
fi

if lab_tcp_transfer native client1 "$a1" "$BYTES"; then
    lab_pass "TCP native → client1: $LAB_XFER_SUMMARY"
else
    lab_fail "TCP native → client1: $LAB_XFER_SUMMARY"
fi
if lab_tcp_transfer client1 native "$LAB_NATIVE_IP6" "$BYTES"; then
    lab_pass "TCP client1 → native: $LAB_XFER_SUMMARY"
else
    lab_fail "TCP client1 → native: $LAB_XFER_SUMMARY"
fi

t=$(lab_now)
if lab_ping native "$a2" 3; then
    lab_pass "native → client2, a fresh peer of the relay ($(lab_since "$t") s): $LAB_PING_SUMMARY"
else
    lab_fail "native → client2, a fresh peer of the relay: ${LAB_PING_SUMMARY:-no output}"
fi
lab_finish
