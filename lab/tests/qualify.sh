#!/usr/bin/env bash
# Issue 3, Teredo server: Debian's Miredo client behind NAT1 qualifies
# against the server under test (RFC 4380 §5.2.1, §5.3.2) and builds its
# address from the RA: prefix 2001:0::/32, server 198.51.100.1, and the
# NAT's mapping (198.51.100.21 and the port NAT1 chose) from the origin
# indication.
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=miredo}"

lab_test_begin qualify
lab_require "lab up" lab_up
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"

t0=$(lab_now)
lab_start_miredo_client client1
addr=''
if lab_wait_teredo_addr client1 10 addr; then
    lab_pass "client1 qualified in $(lab_since "$t0") s: $addr"
else
    lab_fail "client1 got no Teredo address within 10 s"
    lab_finish
fi

read -r server port mapped flags < <(lab_teredo_decode "$addr")
lab_check "prefix" 2001:0000 "$(lab_ipv6_expand "$addr" | cut -d: -f1-2)"
lab_check "server field" "$LAB_SERVER_IP" "$server"
lab_check "mapped IPv4" "$LAB_NAT1_WAN" "$mapped"
# The port NAT1 really chose: reply direction of its conntrack entry to the
# server (the last dport= of the line).
nat_port=$(lab_exec nat1 conntrack -L -p udp --dst "$LAB_SERVER_IP" --dport 3544 2>/dev/null |
    grep -o 'dport=[0-9]*' | tail -n 1 | cut -d= -f2)
lab_check "mapped port (NAT1 conntrack)" "${nat_port:-none}" "$port"
lab_check "tunnel MTU (RA MTU option)" 1280 \
    "$(lab_exec client1 ip -o link show dev teredo | grep -o 'mtu [0-9]*' | cut -d' ' -f2)"
echo "     flags 0x$flags (chosen by the client)"
lab_finish
