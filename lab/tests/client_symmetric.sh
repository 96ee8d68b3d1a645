#!/usr/bin/env bash
# Shipworm's Teredo client behind a symmetric NAT (NAT1 with MASQUERADE
# --random: a new port per destination), against the server under test:
#  - the RS to the server's secondary address comes back with another
#    mapping than the primary's (RFC 4380 §5.2.1 step 7), and the client
#    says clearly that it cannot work there yet (RFC 6081 support is to
#    come) instead of configuring an address that peers cannot reach;
#  - the tunnel carries no Teredo address;
#  - while a Miredo client behind the cone NAT2 qualifies as usual (the lab
#    is the same apart from NAT1's type).
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=miredo}"

lab_test_begin client_symmetric
lab_require "lab up, NAT1 symmetric" lab_up --nat1 symmetric
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"

lab_start_shipworm_client client1
log=$LAB_DIR/shipworm-client1.log
reported() { grep -q 'behind a symmetric NAT' "$log"; }
if lab_wait_for 10 reported; then
    lab_pass "client1 reports: $(grep -o 'behind a symmetric NAT.*' "$log" | head -n 1 | cut -c1-160)"
else
    lab_fail "client1 did not report the symmetric NAT within 10 s; log tail: $(tail -n 3 "$log" | tr '\n' ' ')"
fi
lab_check "client1: Teredo addresses on its tunnel" "" "$(lab_teredo_addr client1)"

lab_start_miredo_client client2
a2=''
if lab_wait_teredo_addr client2 10 a2; then
    lab_pass "client2 (Miredo, cone NAT2) qualified: $a2"
else
    lab_fail "client2 (Miredo, cone NAT2) did not qualify"
fi
lab_finish
