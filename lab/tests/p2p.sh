#!/usr/bin/env bash
# Issue 3, Teredo server: two Miredo clients behind two (cone) NATs reach
# each other directly over IPv6.  The first packets need the server: each
# client's indirect bubble goes to the peer's server, which forwards it with
# an origin indication (RFC 4380 §5.2.6, §5.3.1), opening both NATs.
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=miredo}"

lab_test_begin p2p
lab_require "lab up" lab_up
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"
lab_start_miredo_client client1
lab_start_miredo_client client2
a1='' a2=''
lab_wait_teredo_addr client1 10 a1 || { lab_fail "client1 did not qualify"; lab_finish; }
lab_wait_teredo_addr client2 10 a2 || { lab_fail "client2 did not qualify"; lab_finish; }
lab_pass "both clients qualified: $a1, $a2"

ping_between() {  # <from> <to-node> <to-addr>
    local t0
    t0=$(lab_now)
    if lab_ping "$1" "$3" 3; then
        lab_pass "$1 -> $2: $LAB_PING_SUMMARY (done in $(lab_since "$t0") s)"
    else
        lab_fail "$1 -> $2: $LAB_PING_SUMMARY"
    fi
}
ping_between client1 client2 "$a2"
ping_between client2 client1 "$a1"

# Direct path: NAT1 holds a mapping straight to NAT2's WAN address that saw
# replies (no [UNREPLIED]), so the data did not go through the server, which
# never carries data (RFC 4380 §3.4).
if lab_exec nat1 conntrack -L -p udp --dst "$LAB_NAT2_WAN" 2>/dev/null | grep -v UNREPLIED | grep -q .; then
    lab_pass "traffic is direct: NAT1's mapping to NAT2 ($LAB_NAT2_WAN) saw replies"
else
    lab_fail "NAT1 has no answered mapping to NAT2 ($LAB_NAT2_WAN): no direct path"
fi
lab_finish
