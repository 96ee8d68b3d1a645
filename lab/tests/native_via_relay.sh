#!/usr/bin/env bash
# Issue 3, Teredo server: a Miredo client reaches a native IPv6 host through
# Debian's Miredo relay.  The client finds the relay with a direct IPv6
# connectivity test (RFC 4380 §5.2.9): its echo request goes through the
# server, which forwards it natively; the reply comes back via the relay.
# Then the native host pings back, and pings a client that never talked to
# the relay: the relay's indirect bubble must be forwarded by the server
# (RFC 4380 §5.4.2, §5.3.1).
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=miredo}"

lab_test_begin native_via_relay
lab_require "lab up" lab_up
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"
lab_require "start the Miredo relay" lab_start_miredo_relay
lab_start_miredo_client client1
lab_start_miredo_client client2
a1='' a2=''
lab_wait_teredo_addr client1 10 a1 || { lab_fail "client1 did not qualify"; lab_finish; }
lab_wait_teredo_addr client2 10 a2 || { lab_fail "client2 did not qualify"; lab_finish; }
lab_pass "both clients qualified: $a1, $a2"

ping_path() {  # <from> <description> <dst>
    local t0
    t0=$(lab_now)
    if lab_ping "$1" "$3" 3; then
        lab_pass "$2: $LAB_PING_SUMMARY (done in $(lab_since "$t0") s)"
    else
        lab_fail "$2: $LAB_PING_SUMMARY"
    fi
}
ping_path client1 "client1 -> native $LAB_NATIVE_IP6" "$LAB_NATIVE_IP6"
ping_path native "native -> client1" "$a1"
ping_path native "native -> client2 (fresh peer)" "$a2"

if lab_exec nat1 conntrack -L -p udp --dst "$LAB_RELAY_IP" 2>/dev/null | grep -v UNREPLIED | grep -q .; then
    lab_pass "client1's traffic goes through the relay ($LAB_RELAY_IP; answered NAT1 mapping)"
else
    lab_fail "NAT1 has no answered mapping to the relay ($LAB_RELAY_IP)"
fi
lab_finish
