#!/usr/bin/env bash
# Shipworm's Teredo client behind NAT1, against the server under test:
#  - it qualifies (RFC 4380 §5.2.1) and configures its tunnel as Miredo's
#    hook would: the address decodes to server 198.51.100.1 and the mapping
#    NAT1 really chose, MTU 1280, fe80::ffff:ffff:ffff/64, and a default
#    route with metric 1029; the qualification time is printed;
#  - IPv6 works: ping to the native host (through Miredo's relay); the
#    data path has its own tests (client_native, client_p2p);
#  - it recovers when the server restarts while it re-qualifies (recovery
#    time printed);
#  - a new IPv4 address on client1 is noticed through rtnetlink and
#    re-qualifies within 2 s (asserted), with the new mapping;
#  - SIGTERM removes the tunnel;
#  - with --hook, the hook gets Miredo's environment (up, then down and
#    destroy at SIGTERM) and Shipworm configures no address itself.
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=miredo}"

lab_test_begin client_qualify
lab_require "lab up" lab_up
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"
lab_require "start the Miredo relay" lab_start_miredo_relay

log=$LAB_DIR/shipworm-client1.log
# Lines of the client's log matching a pattern (0 when none).
log_count() { grep -c -- "$1" "$log" 2>/dev/null; }
log_count_above() { (($(log_count "$1") > $2)); }

# The port NAT1 chose for <client-ip>[:<client-port>] → server:3544
# (conntrack reply dport).
nat1_port() {
    lab_exec nat1 conntrack -L -p udp --src "$1" ${2:+--sport "$2"} \
        --dst "$LAB_SERVER_IP" --dport 3544 2>/dev/null |
        grep -o 'dport=[0-9]*' | tail -n 1 | cut -d= -f2
}

check_address() {  # <what> <addr> <client-ip> [client-port]
    local server port mapped flags
    read -r server port mapped flags < <(lab_teredo_decode "$2")
    lab_check "$1: prefix" 2001:0000 "$(lab_ipv6_expand "$2" | cut -d: -f1-2)"
    lab_check "$1: server field" "$LAB_SERVER_IP" "$server"
    lab_check "$1: mapped IPv4" "$LAB_NAT1_WAN" "$mapped"
    lab_check "$1: mapped port (NAT1 conntrack)" "$(nat1_port "$3" "${4:-}" || echo none)" "$port"
}

# --- qualification and interface set-up
t0=$(lab_now)
lab_require "start shipworm client" lab_start_shipworm_client client1
client_pid=$LAB_LAST_PID
addr=''
if lab_wait_teredo_addr client1 10 addr; then
    lab_pass "client1 (shipworm) qualified and configured teredo in $(lab_since "$t0") s: $addr"
else
    lab_fail "client1 (shipworm) got no Teredo address within 10 s"
    lab_finish
fi
echo "     client: $(grep -o 'qualified in .*' "$log" | head -n 1)"
check_address "address" "$addr" "$LAB_CLIENT1_IP"
link=$(lab_exec client1 ip -o link show dev teredo)
lab_check "tunnel MTU" 1280 "$(grep -o 'mtu [0-9]*' <<<"$link" | cut -d' ' -f2)"
lab_check "tunnel txqueuelen" 1000 "$(grep -o 'qlen [0-9]*' <<<"$link" | cut -d' ' -f2)"
lab_check "link-local address" fe80::ffff:ffff:ffff/64 \
    "$(lab_exec client1 ip -6 -o address show dev teredo scope link | awk '{ print $4 }')"
lab_check "default route metric" 1029 \
    "$(lab_exec client1 ip -6 route show default dev teredo | grep -o 'metric [0-9]*' | cut -d' ' -f2)"
lab_check "on-link Teredo prefix" "2001::/32" \
    "$(lab_exec client1 ip -6 route show 2001::/32 dev teredo | awk '{ print $1 }')"

# --- data path
if lab_ping client1 "$LAB_NATIVE_IP6" 3; then
    lab_pass "client1 (shipworm) → native via the relay: $LAB_PING_SUMMARY"
else
    lab_fail "client1 (shipworm) → native via the relay: ${LAB_PING_SUMMARY:-no output}"
fi

# --- server restart while the client re-qualifies
lab_stop "$LAB_SERVER_PID"
n_req=$(log_count 'qualifying again')
n_done=$(log_count 're-qualified in')
# Flapping client1's default route is a network change: the client
# re-qualifies at once, and its Router Solicitations go unanswered.
lab_exec client1 ip route del default
lab_exec client1 ip route add default via 192.0.2.1
if lab_wait_for 2 log_count_above 'qualifying again' "$n_req"; then
    lab_pass "default route change noticed: re-qualifying with the server down"
else
    lab_fail "default route change not noticed within 2 s"
fi
t_restart=$(lab_now)
lab_require "restart the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"
if lab_wait_for 10 log_count_above 're-qualified in' "$n_done"; then
    lab_pass "recovered $(lab_since "$t_restart") s after the server restart"
else
    lab_fail "no recovery within 10 s of the server restart"
fi
lab_check "address after the restart" "$addr" "$(lab_teredo_addr client1)"

# --- a new IPv4 address on client1 (NAT1 maps it to a new port)
n_done=$(log_count 're-qualified in')
t_move=$(lab_now)
lab__ip client1 <<EOF
address del $LAB_CLIENT1_IP/26 dev lan0
address add 192.0.2.3/26 dev lan0
route add default via 192.0.2.1
EOF
if lab_wait_for 2 log_count_above 're-qualified in' "$n_done"; then
    took=$(lab_since "$t_move")
    lab_pass "re-qualified $took s after the IPv4 address change (limit 2 s)"
else
    lab_fail "no re-qualification within 2 s of the IPv4 address change"
fi
new=$(lab_teredo_addr client1)
if [[ -n $new && $new != "$addr" ]]; then
    lab_pass "new address $new replaced $addr"
    check_address "new address" "$new" 192.0.2.3
else
    lab_fail "address after the move: expected a new one, got '${new:-none}'"
fi

if lab_ping client1 "$LAB_NATIVE_IP6" 3; then
    lab_pass "client1 → native with the new address: $LAB_PING_SUMMARY"
else
    lab_fail "client1 → native with the new address: ${LAB_PING_SUMMARY:-no output}"
fi

# --- SIGTERM removes the tunnel
lab_stop "$client_pid"
if lab_exec client1 ip link show dev teredo >/dev/null 2>&1; then
    lab_fail "teredo interface still exists after SIGTERM"
else
    lab_pass "SIGTERM: client stopped, teredo interface gone"
fi
lab_check "clean stop logged" 1 "$(log_count 'SIGTERM received, stopping')"

# --- hook mode: Shipworm creates the tunnel, the hook does the rest
hook=$LAB_DIR/hook.sh
calls=$LAB_DIR/hook-calls
cat >"$hook" <<HOOK
#!/bin/sh
echo "\$STATE \$ADDRESS \$LLADDRESS \$MTU \$OLD_STATE \$IFACE" >>"$calls"
HOOK
chmod +x "$hook"
lab_require "start shipworm client with a hook" lab_start_shipworm_client client1 --hook "$hook"
hook_pid=$LAB_LAST_PID
if lab_wait_for 10 grep -q '^up ' "$calls"; then
    read -r state haddr hll hmtu hold hif < <(grep '^up ' "$calls")
    lab_check "hook environment (STATE LLADDRESS MTU OLD_STATE IFACE)" \
        "up fe80::ffff:ffff:ffff 1280 down teredo" "$state $hll $hmtu $hold $hif"
    # Two clients have used 192.0.2.3 now: pick the hook client's entry.
    check_address "hook ADDRESS" "$haddr" 192.0.2.3 \
        "$(grep -o 'from UDP [0-9.]*:[0-9]*' "$log" | cut -d: -f2)"
else
    lab_fail "hook not called with STATE=up within 10 s"
fi
lab_check "with a hook, addresses left to it" "" "$(lab_teredo_addr client1)"
lab_stop "$hook_pid"
lab_check "hook calls at SIGTERM" "down destroy" "$(tail -n 2 "$calls" | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')"
lab_finish
