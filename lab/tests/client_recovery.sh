#!/usr/bin/env bash
# Issue 4, Teredo client: recovery from NAT changes the client cannot see
# (they happen in the NAT's namespace, so no rtnetlink event reaches it);
# only its next refresh (RFC 4380 §5.2.5: an RS 75–100 % of 30 s after the
# last datagram from the server) can find them.  Two Shipworm clients, one
# change each, at the same moment (so the test waits for one refresh, not
# two):
#  - NAT1 loses its state (`conntrack -F`, as after a router restart):
#    client1's next refresh RS re-creates the mapping; MASQUERADE keeps the
#    port, so the address stays; the time until the RS left is printed;
#  - NAT2's WAN address changes (.22 → .23; MASQUERADE follows and drops
#    the old entries): client2's refresh learns the new mapping and moves to
#    a new address (time printed) that decodes to .23 and NAT2's new port.
# Both must happen within 40 s (refresh interval + one RS timeout + slack).
# Then IPv6 works again: client2 → client1 as fresh peers (the indirect
# bubble needs client1's mapping at the server to be back), client1 →
# client2, native → client2's new address through the relay, client1 →
# native.  (A server restart is client_qualify's.)
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=miredo}"
NAT2_NEW_WAN=198.51.100.23
LIMIT=40

lab_test_begin client_recovery
lab_require "lab up" lab_up
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"
lab_require "start the Miredo relay" lab_start_miredo_relay
lab_require "start shipworm client in client1" lab_start_shipworm_client client1
lab_require "start shipworm client in client2" lab_start_shipworm_client client2
log2=$LAB_DIR/shipworm-client2.log
a1='' a2=''
lab_require "client1 (shipworm) qualifies within 10 s" lab_wait_teredo_addr client1 10 a1
lab_require "client2 (shipworm) qualifies within 10 s" lab_wait_teredo_addr client2 10 a2
lab_require "client1 → native before the changes" lab_ping client1 "$LAB_NATIVE_IP6" 1
lab_require "client2 → native before the changes" lab_ping client2 "$LAB_NATIVE_IP6" 1

# The port <nat> maps <client-ip> → server:3544 to (conntrack reply dport).
nat_port() {  # <nat> <client-ip>
    lab_exec "$1" conntrack -L -p udp --src "$2" --dst "$LAB_SERVER_IP" --dport 3544 2>/dev/null |
        grep -o 'dport=[0-9]*' | tail -n 1 | cut -d= -f2
}
mapping_changes() { grep -c 'mapping changed' "$log2"; }

port1=$(nat_port nat1 "$LAB_CLIENT1_IP")
n_changes=$(mapping_changes)
t0=$(lab_now)
lab_exec nat1 conntrack -F 2>/dev/null
lab__ip nat2 <<EOF || lab_fail "cannot change NAT2's WAN address"
address del $LAB_NAT2_WAN/24 dev wan0
address add $NAT2_NEW_WAN/24 dev wan0
EOF
[[ -z $(nat_port nat1 "$LAB_CLIENT1_IP") ]] || lab_fail "conntrack -F left NAT1's mapping in place"
lab_pass "NAT1 state flushed (mapping port was $port1), NAT2's WAN address now $NAT2_NEW_WAN"

# Poll both until done or LIMIT: the refresh RS through NAT1 re-creates the
# conntrack entry; client2 logs the new mapping.
t1='' t2=''
deadline=$((t0 + LIMIT * 1000000))
while [[ -z $t1 || -z $t2 ]] && (($(lab_now) < deadline)); do
    [[ -z $t1 && -n $(nat_port nat1 "$LAB_CLIENT1_IP") ]] && t1=$(lab_since "$t0")
    [[ -z $t2 ]] && (($(mapping_changes) > n_changes)) && t2=$(lab_since "$t0")
    sleep 0.1
done
if [[ -n $t1 ]]; then
    lab_pass "client1's refresh re-created the NAT1 mapping $t1 s after the flush (limit $LIMIT s)"
else
    lab_fail "client1 sent no RS through NAT1 within $LIMIT s of the flush"
fi
if [[ -n $t2 ]]; then
    lab_pass "client2 noticed the new mapping $t2 s after the WAN change (limit $LIMIT s): $(grep 'mapping changed' "$log2" | tail -n 1 | sed 's/.*: mapping/mapping/')"
else
    lab_fail "client2 did not notice the WAN address change within $LIMIT s"
fi

# client1: the same port again, so the same address (and a consistent one).
lab_check "client1's address after the flush" "$a1" "$(lab_teredo_addr client1)"
read -r _ p1 m1 _ < <(lab_teredo_decode "$a1")
lab_check "client1's mapping = NAT1's new entry" "$LAB_NAT1_WAN:$(nat_port nat1 "$LAB_CLIENT1_IP")" "$m1:$p1"
# client2: a new address with the new mapping.
n2=$(lab_teredo_addr client2)
if [[ -n $n2 && $n2 != "$a2" ]]; then
    read -r _ p2 m2 _ < <(lab_teredo_decode "$n2")
    lab_check "client2's new mapping = NAT2's entry" "$NAT2_NEW_WAN:$(nat_port nat2 "$LAB_CLIENT2_IP")" "$m2:$p2"
else
    lab_fail "client2's address after the WAN change: expected a new one, got '${n2:-none}'"
fi

ping_check() {  # <from> <to-addr> <what>
    local t
    t=$(lab_now)
    if lab_ping "$1" "$2" 3; then
        lab_pass "$3 ($(lab_since "$t") s): $LAB_PING_SUMMARY"
    else
        lab_fail "$3: ${LAB_PING_SUMMARY:-no output}"
    fi
}
ping_check client2 "$a1" "client2 → client1 (fresh peers, through the server)"
[[ -n $n2 ]] && ping_check client1 "$n2" "client1 → client2's new address"
[[ -n $n2 ]] && ping_check native "$n2" "native → client2's new address via the relay"
ping_check client1 "$LAB_NATIVE_IP6" "client1 → native"
lab_finish
