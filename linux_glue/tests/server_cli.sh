#!/usr/bin/env bash
# End-to-end checks of `shipworm server` start-up, signals and exit statuses,
# inside a throw-away network namespace (root required; skipped otherwise).
#
# A shell script rather than a Rust integration test: the scenario is a
# sequence of `ip` commands and process control, which is shorter and easier
# to read here than from std::process::Command, and it runs the same by hand
# as from CI.
#
# Usage: linux_glue/tests/server_cli.sh [path/to/shipworm]
# Without a path it builds the debug binary with cargo (honouring
# CARGO_TARGET_DIR). Exit status 0 when every check passed (or skipped).
set -uo pipefail

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
    echo "SKIP: server_cli.sh needs root and iproute2 (network namespaces)"
    exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
glue_binary "$@"

glue_namespaces swglue peer

# check NAME WANT_STATUS WANT_STDERR_REGEX -- command...: run to completion.
check() {
    local name=$1 want=$2 regex=$3
    shift 4
    local out status
    out=$("$@" 2>&1 >/dev/null)
    status=$?
    if [ "$status" -eq "$want" ] && [[ "$out" =~ $regex ]] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ]; then
        pass "$name"
    else
        fail "$name: status $status (want $want), stderr: $out"
    fi
}

# start LOG args...: run the server in the namespace, in the background.
start() {
    local log=$1
    shift
    # Not through in_ns: `ip netns exec` then execs the server itself, so
    # $! is the server's PID, not a subshell's.
    ip netns exec "$ns" "$bin" server "$@" 2>"$log" &
    pids+=($!)
    last=$!
}

# Two namespaces joined by a veth pair (not a dummy interface: the dummy
# module is not on every kernel, veth is): the server's, and a peer's that
# plays a Teredo client and a native IPv6 host.
setup() {
    ip netns add "$ns" &&
        ip netns add "$peer" &&
        in_ns ip link set lo up &&
        in_ns ip link add sw0 type veth peer name sw1 netns "$peer" &&
        for a in 198.51.100.1 198.51.100.2 198.51.100.3; do
            in_ns ip addr add "$a/24" dev sw0 || return 1
        done &&
        in_ns ip addr add 10.0.0.1/8 dev sw0 &&
        in_ns ip link set sw0 up &&
        in_peer ip addr add 198.51.100.50/24 dev sw1 &&
        in_peer ip addr add 2001:db8:1::100/64 dev sw1 nodad &&
        in_peer ip link set sw1 up
}
setup || { echo "FAIL namespace setup"; exit 1; }

# --- command line --------------------------------------------------------
out=$("$bin" --version) && [[ "$out" =~ ^shipworm\ [0-9]+\.[0-9]+\.[0-9]+$ ]] \
    && pass "--version" || fail "--version: $out"
out=$("$bin" --help) && [[ "$out" == *"server <primary-IPv4>"* ]] \
    && [[ "$out" == *"relay                   Teredo relay"* ]] \
    && pass "--help" || fail "--help"
check "client needs a server" 2 "^shipworm: 'client' needs '--server <host|IPv4>'" -- "$bin" client
check "relay bad usage" 2 "^shipworm: relay type 'x' is not one of cone, restricted; see 'shipworm --help'$" \
    -- "$bin" relay --type x
check "bad usage" 2 "^shipworm: MTU '9' is not a number from 1280 to 65535; see 'shipworm --help'$" \
    -- "$bin" server 198.51.100.1 --mtu 9
check "no role" 2 "no role given; see 'shipworm --help'" -- "$bin"

# --- start-up refusals ---------------------------------------------------
check "private address" 2 \
    "^shipworm\[[0-9]+\]: error: 10\.0\.0\.1 is not a global unicast IPv4 address" \
    -- in_ns "$bin" server 10.0.0.1
check "directed broadcast" 2 "198\.51\.100\.255 is not a global unicast" \
    -- in_ns "$bin" server 198.51.100.255 --secondary 198.51.100.1
check "unassigned address" 2 "error: address 203\.0\.113\.9 is not assigned to this host$" \
    -- in_ns "$bin" server 203.0.113.9
check "unassigned secondary" 2 "error: address 198\.51\.100\.4 is not assigned to this host$" \
    -- in_ns "$bin" server 198.51.100.3

# --- a running server ----------------------------------------------------
log="$tmp/server.log"
start "$log" 198.51.100.1 --log-level debug
server=$last
if wait_for "$log" "info: Teredo server on 198\.51\.100\.1:3544 and 198\.51\.100\.2:3544, prefix 2001::/32, MTU 1280$"; then
    pass "server starts and logs"
else
    fail "server start: $(cat "$log")"
fi
grep -Eq "^shipworm\[$server\]: warn: no global IPv6 route" "$log" \
    && pass "warns about missing IPv6 route" || fail "IPv6 route warning: $(cat "$log")"
bound=$(in_ns ss -Hlun)
[[ "$bound" == *"198.51.100.1:3544"* && "$bound" == *"198.51.100.2:3544"* ]] \
    && pass "binds both addresses" || fail "bound sockets: $bound"

check "primary port in use" 2 "error: address 198\.51\.100\.1:3544 is in use$" \
    -- in_ns "$bin" server 198.51.100.1
check "secondary port in use" 2 "error: address 198\.51\.100\.2:3544 is in use$" \
    -- in_ns "$bin" server 198.51.100.3 --secondary 198.51.100.2

# A junk datagram: received, dropped by the core, counted.
in_ns bash -c 'printf junk >/dev/udp/198.51.100.2/3544'
sleep 0.2
kill -USR1 "$server"
if wait_for "$log" "info: sockets: 1 datagrams received" && kill -0 "$server" 2>/dev/null; then
    pass "SIGUSR1 logs counters and does not kill"
else
    fail "SIGUSR1: $(cat "$log")"
fi

kill -TERM "$server"
status=0
for _ in $(seq 50); do
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
wait "$server"
status=$?
if [ "$status" -eq 0 ] && grep -q "info: SIGTERM received, stopping" "$log"; then
    pass "SIGTERM exits 0"
else
    fail "SIGTERM: status $status, log: $(cat "$log")"
fi

# With an IPv6 route present (no warning then): the data path, end to end.
# A probe in the peer namespace solicits an RA from each address and sends an
# echo request through the server to the peer's native IPv6 address; the
# peer kernel's Icmp6InEchos counter shows it arrived. SIGINT stops it: sent
# by `timeout`, which leaves SIGINT at its default in the child although the
# shell ignores SIGINT for background jobs.
in_ns ip addr add 2001:db8:1::1/64 dev sw0 nodad
echoes() { in_peer awk '$1 == "Icmp6InEchos" { print $2 }' /proc/net/snmp6; }
before=$(echoes)
log2="$tmp/server2.log"
timeout --preserve-status -s INT 3 ip netns exec "$ns" "$bin" server 198.51.100.1 \
    --status-socket "$tmp/server2.sock" 2>"$log2" &
pids+=($!)
sigint=$!
if wait_for "$log2" "info: Teredo server on"; then
    if command -v python3 >/dev/null; then
        in_peer python3 "$here/teredo_probe.py" 198.51.100.1 198.51.100.50 2001:db8:1::100 \
            || failed=1
        # The first packet waits for neighbour discovery on the fresh link.
        for _ in $(seq 30); do
            after=$(echoes)
            [ "$after" -gt "$before" ] && break
            sleep 0.1
        done
        [ "$after" -gt "$before" ] && pass "echo request forwarded natively" \
            || fail "no echo request reached the native host ($before -> $after)"
    else
        echo "skip data-path probe: no python3"
    fi
fi
wait "$sigint"
status=$?
if [ "$status" -eq 0 ] && grep -q "info: SIGINT received, stopping" "$log2" \
    && ! grep -q "warn:" "$log2"; then
    pass "SIGINT exits 0, no route warning with a global IPv6 route"
else
    fail "SIGINT: status $status, log: $(cat "$log2")"
fi

[ "$failed" -eq 0 ] && echo "all server_cli checks passed"
exit "$failed"
