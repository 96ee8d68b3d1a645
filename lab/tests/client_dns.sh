#!/usr/bin/env bash
# Shipworm's client finds its server by name, with its own resolver
# (linux_glue/src/dns.rs), and finds it again when the server is lost:
#  - client1 gets its own /etc/resolv.conf (nameserver 127.0.0.1, search
#    lab.example) and /etc/hosts (localhost only) through ip-netns(8)'s
#    /etc/netns/<ns>/ bind mounts; lab/fake_dns.py on client1's 127.0.0.1
#    answers A queries for teredo.lab.example from a file the test rewrites,
#    NXDOMAIN for anything else;
#  - `shipworm client --server teredo` (no dot: the search domain applies)
#    qualifies with the lab's server 198.51.100.1 as the DNS answer says;
#  - the name then points to a second Shipworm server on 198.51.100.3/.4 and
#    the first server stops; a default route flap re-qualifies at once (as in
#    client_qualify); after the RS timeouts (3 × 4 s) the address is lost,
#    which makes the client resolve the name again: it must log "server now
#    resolves to 198.51.100.3" and qualify with the new server (its address
#    decodes to server .3), within LIMIT s of the flap (time printed).
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=shipworm}"
NAME=teredo.lab.example
NEW_SERVER=198.51.100.3
NEW_SERVER2=198.51.100.4
LIMIT=20

lab_test_begin client_dns
lab_require "lab up" lab_up
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"

# --- client1's resolver: its own files and a fake DNS server on 127.0.0.1
lab_require "client1's resolv.conf" lab_etc_file client1 resolv.conf <<EOF
nameserver 127.0.0.1
search lab.example
options timeout:1 attempts:2
EOF
lab_require "client1's hosts" lab_etc_file client1 hosts <<EOF
127.0.0.1 localhost
EOF
answer=$LAB_DIR/dns-answer
dns_log=$LAB_DIR/fake-dns.log
echo "$LAB_SERVER_IP" >"$answer"
lab_spawn client1 "$dns_log" python3 "$LAB_ROOT/fake_dns.py" 127.0.0.1 "$NAME" "$answer"
lab_require "fake DNS server listening on client1's 127.0.0.1:53" \
    lab_wait_for 5 grep -q '^listening' "$dns_log"
lab_check "client1 sees its own resolv.conf" "nameserver 127.0.0.1" \
    "$(lab_exec client1 head -n 1 /etc/resolv.conf)"

log=$LAB_DIR/shipworm-client1.log
log_count() { grep -c -- "$1" "$log" 2>/dev/null; }
# The server field of client1's Teredo address is <ip>.
# shellcheck disable=SC2317  # called through lab_wait_for
addr_server_is() {
    local a s
    a=$(lab_teredo_addr client1) || return 1
    read -r s _ < <(lab_teredo_decode "$a")
    [[ $s == "$1" ]]
}

# --- qualification with the server the name resolves to
bin=$(lab__shipworm_bin) || lab_require "shipworm binary" false
t0=$(lab_now)
lab_spawn client1 "$log" "$bin" client --server teredo --log-level debug \
    --status-socket "$LAB_DIR/status-client1.sock"
client_pid=$LAB_LAST_PID
if lab_wait_for 10 addr_server_is "$LAB_SERVER_IP"; then
    lab_pass "client1 resolved 'teredo' and qualified with $LAB_SERVER_IP in $(lab_since "$t0") s: $(lab_teredo_addr client1)"
else
    lab_fail "client1 did not qualify with $LAB_SERVER_IP within 10 s"
    lab_finish
fi
lab_check "DNS query for the search-qualified name answered" 1 \
    "$(grep -c "^query $NAME 1 -> $LAB_SERVER_IP\$" "$dns_log")"
lab_check "client start-up line names the resolved server" 1 \
    "$(log_count "server $LAB_SERVER_IP\$")"

# --- the name moves to a second server; the first one goes away
lab__ip server <<EOF || lab_require "add $NEW_SERVER and $NEW_SERVER2 to the server node" false
address add $NEW_SERVER/24 dev eth0
address add $NEW_SERVER2/24 dev eth0
EOF
lab_spawn server "$LAB_DIR/server-shipworm-2.log" "$bin" server "$NEW_SERVER" \
    --status-socket "$LAB_DIR/status-server2.sock"
server2_pid=$LAB_LAST_PID
# shellcheck disable=SC2317  # called through lab_wait_for
new_server_ready() {
    lab__alive "$server2_pid" && lab_udp_bound server "$NEW_SERVER" 3544 &&
        lab_udp_bound server "$NEW_SERVER2" 3544
}
lab_require "second shipworm server bound to $NEW_SERVER and $NEW_SERVER2" \
    lab_wait_for 5 new_server_ready
echo "$NEW_SERVER" >"$answer"
lab_stop "$LAB_SERVER_PID"
lab_pass "$NAME now resolves to $NEW_SERVER; the server on $LAB_SERVER_IP stopped"

# A route flap re-qualifies at once; the stopped server never answers, so
# the address is lost after the RS timeouts and the name resolved again.
n_lost=$(log_count 'lost address')
t_flap=$(lab_now)
lab_exec client1 ip route del default
lab_exec client1 ip route add default via 192.0.2.1
if lab_wait_for "$LIMIT" grep -q "server now resolves to $NEW_SERVER" "$log"; then
    lab_pass "client logged 'server now resolves to $NEW_SERVER' $(lab_since "$t_flap") s after the flap (limit $LIMIT s)"
else
    lab_fail "no 'server now resolves to $NEW_SERVER' within $LIMIT s of the flap"
fi
if lab_wait_for 5 addr_server_is "$NEW_SERVER"; then
    lab_pass "client1 qualified with $NEW_SERVER $(lab_since "$t_flap") s after the flap: $(lab_teredo_addr client1)"
else
    lab_fail "client1 did not qualify with $NEW_SERVER (address: $(lab_teredo_addr client1 || echo none))"
fi
lab_check "address lost once before the switch" 1 $(($(log_count 'lost address') - n_lost))
lab_check "DNS query answered with the new address" 1 \
    "$(grep -c "^query $NAME 1 -> $NEW_SERVER\$" "$dns_log")"
lab_check "qualification with the new server logged" 1 \
    "$(log_count "qualified in .* with server $NEW_SERVER:")"

lab_stop "$client_pid"
lab_check "clean stop logged" 1 "$(log_count 'SIGTERM received, stopping')"
lab_finish
