#!/usr/bin/env bash
# Shipworm's *relay* (RFC 4380 §5.4) between Teredo clients behind NAT1/NAT2
# and the native host (which routes 2001::/32 via 2001:db8:1::10), with the
# server under test:
#  - start-up: refuses to run (exit 2, naming the sysctl) while IPv6
#    forwarding is off; then the tunnel: MTU 1280, txqueuelen 2048,
#    2001::/32 metric 1024;
#  - a Miredo client behind NAT1 and the native host reach each other
#    through it: ping both ways, a TCP transfer each way with SHA-256
#    compared, a UDP burst each way with every datagram checked;
#  - the same (ping, TCP and UDP both ways) with Shipworm's own client
#    behind NAT2;
#  - forged traffic does not get through: an echo request for the native
#    host with client1's Teredo source sent from another IPv4 endpoint, and
#    one with a native source;
#  - a flood of new peers (echo requests from the native host to 5,000
#    random Teredo addresses) does not disturb a ping running through it;
#  - SIGTERM removes the route and the tunnel.
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=miredo}"

lab_test_begin relay
lab_require "lab up" lab_up
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"
bin=$(lab__shipworm_bin) || { lab_fail "no shipworm binary"; lab_finish; }
log=$LAB_DIR/shipworm-relay.log
tool=$LAB_ROOT/relay_traffic.py

# --- start-up check: no forwarding, no relay
lab_exec relay sysctl -q -w net.ipv6.conf.all.forwarding=0
out=$(lab_exec relay timeout 5 "$bin" relay --bind "$LAB_RELAY_IP" 2>&1)
rc=$?
lab_check "exit status without IPv6 forwarding" 2 "$rc"
if grep -q "sysctl -w net.ipv6.conf.all.forwarding=1" <<<"$out"; then
    lab_pass "the refusal names the sysctl to run"
else
    lab_fail "the refusal does not name the sysctl: $out"
fi
lab_check "no tunnel left behind" "" "$(lab_exec relay ip -o link show dev teredo 2>/dev/null)"
lab_exec relay sysctl -q -w net.ipv6.conf.all.forwarding=1

# --- set-up
t0=$(lab_now)
lab_require "start the shipworm relay" lab_start_shipworm_relay
lab_pass "shipworm relay routes 2001::/32 in $(lab_since "$t0") s"
link=$(lab_exec relay ip -o link show dev teredo)
lab_check "tunnel MTU" 1280 "$(grep -o 'mtu [0-9]*' <<<"$link" | cut -d' ' -f2)"
lab_check "tunnel txqueuelen" 2048 "$(grep -o 'qlen [0-9]*' <<<"$link" | cut -d' ' -f2)"
lab_check "prefix route metric" 1024 \
    "$(lab_exec relay ip -6 route show 2001::/32 dev teredo | grep -o 'metric [0-9]*' | cut -d' ' -f2)"

lab_start_miredo_client client1
a1=''
lab_wait_teredo_addr client1 10 a1 || { lab_fail "client1 (Miredo) did not qualify"; lab_finish; }
lab_pass "client1 (Miredo) qualified: $a1"

# --- Miredo client <-> native through our relay
ping_path() {  # <from> <description> <dst> [count]
    local t0
    t0=$(lab_now)
    if lab_ping "$1" "$3" "${4:-3}"; then
        lab_pass "$2: $LAB_PING_SUMMARY (done in $(lab_since "$t0") s)"
    else
        lab_fail "$2: ${LAB_PING_SUMMARY:-no output}"
    fi
}
ping_path client1 "client1 (Miredo) -> native" "$LAB_NATIVE_IP6"
ping_path native "native -> client1 (Miredo)" "$a1"
if lab_exec nat1 conntrack -L -p udp --dst "$LAB_RELAY_IP" 2>/dev/null | grep -v UNREPLIED | grep -q .; then
    lab_pass "client1's traffic goes through the relay (answered NAT1 mapping to $LAB_RELAY_IP)"
else
    lab_fail "NAT1 has no answered mapping to the relay ($LAB_RELAY_IP)"
fi

xfer() {  # <from> <to> <to-addr> <description>
    if lab_tcp_transfer "$1" "$2" "$3" $((4 << 20)); then
        lab_pass "TCP $4: $LAB_XFER_SUMMARY"
    else
        lab_fail "TCP $4: $LAB_XFER_SUMMARY"
    fi
}
xfer client1 native "$LAB_NATIVE_IP6" "client1 -> native"
xfer native client1 "$a1" "native -> client1"

udp_burst() {  # <from> <to> <to-addr> <description>
    local count=2000 size=1200 port=$((30000 + RANDOM % 10000)) rlog=$LAB_DIR/udp.$RANDOM.log
    local got corrupt dup
    lab_spawn "$2" "$rlog" python3 "$tool" udp-recv "$port" "$count"
    local rx=$LAB_LAST_PID
    lab_wait_for 5 grep -q '^listening' "$rlog"
    lab_exec "$1" python3 "$tool" udp-send "$3" "$port" "$count" "$size" >/dev/null
    lab_wait_for 10 lab__dead "$rx"
    lab_stop "$rx"
    read -r _ got _ corrupt _ dup < <(grep '^received' "$rlog")
    if [[ -z ${got:-} ]]; then
        lab_fail "UDP burst $4: the receiver reported nothing"
    elif ((corrupt == 0 && dup == 0 && got * 100 >= count * 95)); then
        lab_pass "UDP burst $4: $got/$count datagrams of $size bytes, none corrupt or duplicated"
    else
        lab_fail "UDP burst $4: $got/$count received (95% needed), $corrupt corrupt, $dup duplicated"
    fi
}
udp_burst client1 native "$LAB_NATIVE_IP6" "client1 -> native"
udp_burst native client1 "$a1" "native -> client1"

# --- Shipworm's client behind NAT2 through our relay
lab_start_shipworm_client client2
a2=''
if lab_wait_teredo_addr client2 10 a2; then
    lab_pass "client2 (shipworm) qualified: $a2"
    ping_path client2 "client2 (shipworm) -> native" "$LAB_NATIVE_IP6"
    ping_path native "native -> client2 (shipworm)" "$a2"
    xfer client2 native "$LAB_NATIVE_IP6" "client2 (shipworm) -> native"
    xfer native client2 "$a2" "native -> client2 (shipworm)"
    udp_burst client2 native "$LAB_NATIVE_IP6" "client2 (shipworm) -> native"
    udp_burst native client2 "$a2" "native -> client2 (shipworm)"
else
    lab_fail "client2 (shipworm) did not qualify"
fi

# --- forged traffic: nothing reaches the native host
echos() { lab_exec native awk '$1 == "Icmp6InEchos" { print $2 }' /proc/net/snmp6; }
n0=$(echos)
for i in 1 2 3 4 5; do
    # client1's Teredo source, but from NAT2's WAN address: not its mapping.
    lab_exec nat2 python3 "$LAB_ROOT/teredo_forge.py" echo "$LAB_NAT2_WAN:4$i$i$i" \
        "$LAB_RELAY_IP:3544" --src6 "$a1" --dst6 "$LAB_NATIVE_IP6" --ident $((0x4600 + i))
    # A native source: a relay only takes Teredo sources from UDP.
    lab_exec nat2 python3 "$LAB_ROOT/teredo_forge.py" echo "$LAB_NAT2_WAN:4$i$i$i" \
        "$LAB_RELAY_IP:3544" --src6 "$LAB_SERVER_IP6" --dst6 "$LAB_NATIVE_IP6" --ident $((0x4610 + i))
done
sleep 1
lab_check "forged echo requests that reached the native host" 0 $(($(echos) - n0))
lab_ping client1 "$LAB_NATIVE_IP6" 1 >/dev/null
if (($(echos) > n0)); then
    lab_pass "(control: client1's genuine echo request is counted there)"
else
    lab_fail "control: client1's genuine echo request was not counted on the native host"
fi

# --- a flood of new peers does not disturb an established flow
flow=$LAB_DIR/flow-ping.log
lab_spawn native "$flow" ping -6 -n -c 60 -i 0.05 -W 2 "$a1"
flow_pid=$LAB_LAST_PID
sleep 0.5
t0=$(lab_now)
flooded=$(lab_exec native python3 "$tool" flood 5000 "$LAB_SERVER_IP")
wait "$flow_pid"
lab__forget "$flow_pid"
loss=$(awk '/packets transmitted/ { print $1 - $4 }' "$flow")
if [[ $loss == 0 ]]; then
    lab_pass "ping native -> client1 during the flood ($flooded, $(lab_since "$t0") s): $(grep 'packets transmitted' "$flow")"
else
    lab_fail "ping native -> client1 during the flood ($flooded): ${loss:-?} lost; $(grep 'packets transmitted' "$flow")"
fi
if lab__alive "$LAB_RELAY_PID"; then lab_pass "the relay survived the flood"; else lab_fail "the relay died in the flood"; fi
ping_path client1 "client1 -> native after the flood" "$LAB_NATIVE_IP6"

n=$(grep -c ' stats: ' "$log")
kill -USR1 "$LAB_RELAY_PID"
if lab_wait_for 5 lab__more_lines "$log" ' stats: ' "$n"; then
    stats=$(grep ' stats: ' "$log" | tail -n 1 | sed 's/.*stats: //')
    lab_pass "SIGUSR1: $stats"
    echo "     $(grep -E ' UDP: ' "$log" | tail -n 1 | sed 's/.* UDP: /UDP: /')"
    # The forged packets reached the relay and were refused there (not lost).
    lab_check "relay drops: spoofed Teredo source" 5 "$(lab_status_count "$stats" spoofed_source)"
    lab_check "relay drops: non-Teredo source" 5 "$(lab_status_count "$stats" non_teredo_source)"
    peers=$(grep -o -E '^[0-9]+ peers' <<<"$stats" | cut -d' ' -f1)
    limited=$(lab_status_count "$stats" new_peer_limited)
    if ((${peers:-5000} < 1000 && limited > 0)); then
        lab_pass "the flood was rate-limited: $peers peers, $limited new peers refused"
    else
        lab_fail "the flood was not rate-limited: ${peers:-?} peers, $limited refused"
    fi
else
    lab_fail "SIGUSR1 logged no stats"
fi

# --- SIGTERM: route and tunnel removed
lab_stop "$LAB_RELAY_PID"
lab_check "tunnel after SIGTERM" "" "$(lab_exec relay ip -o link show dev teredo 2>/dev/null)"
lab_check "2001::/32 route after SIGTERM" "" "$(lab_exec relay ip -6 route show 2001::/32 2>/dev/null)"
lab_finish
