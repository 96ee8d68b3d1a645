#!/usr/bin/env bash
# Issue 4, Teredo client: Teredo clients behind two NATs reach each other.
#  - Shipworm ↔ Shipworm (client1 behind NAT1, client2 behind NAT2): ping
#    both ways, then 1 MiB of random data over TCP from client2 to client1,
#    SHA-256 equal at both ends.  The first packets wait in the peer's queue
#    while the bubbles (RFC 4380 §5.2.4, §5.2.6; the indirect one forwarded
#    by the server with an origin indication) open both NATs;
#  - Shipworm ↔ Miredo: client2 becomes a Miredo client, pinged from
#    client1 and pinging client1 back.
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=miredo}"

lab_test_begin client_p2p
lab_require "lab up" lab_up
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"
lab_require "start shipworm client in client1" lab_start_shipworm_client client1
lab_require "start shipworm client in client2" lab_start_shipworm_client client2
c2_pid=$LAB_LAST_PID
a1='' a2=''
lab_require "client1 (shipworm) qualifies within 10 s" lab_wait_teredo_addr client1 10 a1
lab_require "client2 (shipworm) qualifies within 10 s" lab_wait_teredo_addr client2 10 a2

ping_check() {  # <from> <to-addr> <what>
    local t
    t=$(lab_now)
    if lab_ping "$1" "$2" 3; then
        lab_pass "$3 ($(lab_since "$t") s): $LAB_PING_SUMMARY"
    else
        lab_fail "$3: ${LAB_PING_SUMMARY:-no output}"
    fi
}

ping_check client1 "$a2" "client1 (shipworm) → client2 (shipworm)"
ping_check client2 "$a1" "client2 (shipworm) → client1 (shipworm)"
if lab_tcp_transfer client2 client1 "$a1" $((1 << 20)); then
    lab_pass "TCP client2 → client1 (shipworm ↔ shipworm): $LAB_XFER_SUMMARY"
else
    lab_fail "TCP client2 → client1 (shipworm ↔ shipworm): $LAB_XFER_SUMMARY"
fi

# --- ours ↔ Miredo: client2's tunnel goes with its Shipworm client.
lab_stop "$c2_pid"
lab_require "start the Miredo client in client2" lab_start_miredo_client client2
m2=''
lab_require "client2 (miredo) qualifies within 10 s" lab_wait_teredo_addr client2 10 m2
ping_check client1 "$m2" "client1 (shipworm) → client2 (miredo)"
ping_check client2 "$a1" "client2 (miredo) → client1 (shipworm)"
lab_finish
