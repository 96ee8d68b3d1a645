#!/usr/bin/env bash
# lab/demo.sh — the newcomer's one-command Teredo lab (issue 6).
#
#   sudo lab/demo.sh               build Shipworm, run the lab, print a report
#   sudo lab/demo.sh --no-build    use the binary that is already built
#   sudo SHIPWORM_BIN=/path/to/shipworm lab/demo.sh   that binary, no build
#
# Every Teredo role is Shipworm: the server, the relay and two clients, each
# behind its own NAT (the topology of lab/README.md; the native IPv6 host
# needs no Teredo software at all).  The report shows the clients' Teredo
# addresses decoded, ping RTTs native ↔ client and client ↔ client through
# the tunnel, and a 3-s iperf3 TCP throughput from a client to the native
# host.  Everything is torn down afterwards, also on Ctrl-C or failure (the
# lab.sh trap); a failed run keeps its logs and exits non-zero.
#
# The build runs `cargo build --release -p shipworm` into
# ${CARGO_TARGET_DIR:-target}; under sudo it runs as the invoking user when
# the checkout is theirs, so that no root-owned files end up in it.
set -u -o pipefail
# shellcheck source=lab.sh
source "$(dirname "$0")/lab.sh"

build=1
case ${1:-} in
"") ;;
--no-build) build=0 ;;
-h | --help) sed -n '2,/^set -u/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
*) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
esac
[[ -n ${SHIPWORM_BIN:-} ]] && build=0

if ((EUID != 0)); then
    echo "lab/demo.sh: the lab needs root (network namespaces, iptables); run: sudo $0" >&2
    exit 1
fi

# --------------------------------------------------------------------------
# Report helpers: one aligned line per step; a failure prints the end of the
# log that explains it and exits (the EXIT trap then tears the lab down and
# keeps LAB_DIR).

# printf pads by bytes; pad by characters, so that "→" lines align too.
row() {
    local LC_ALL=C.UTF-8
    printf '  %s%*s %s\n' "$1" $((20 - ${#1})) '' "$2"
}

fail() {  # <what> <detail> [log]
    row "$1" "FAILED: $2"
    if [[ -n ${3:-} && -s $3 ]]; then
        echo "  ---- last lines of ${3##*/}:"
        tail -n 15 "$3" | sed 's/^/    /'
    fi
    exit 1
}

T0=$(lab_now)

# --------------------------------------------------------------------------
# Dependencies and the binary

echo "Shipworm Teredo lab: server, relay and two NATed clients, all Shipworm"
deps_log=$(mktemp /tmp/shipworm-demo-deps.XXXXXX)
"$LAB_ROOT/install-deps.sh" >"$deps_log" 2>&1 || fail "dependencies" "lab/install-deps.sh failed" "$deps_log"
grep -q '^installing: ' "$deps_log" &&
    row "dependencies" "installed $(sed -n 's/^installing: //p' "$deps_log") (lab/install-deps.sh)"
rm -f "$deps_log"

# cargo as the user who ran sudo when the checkout is theirs (their rustup
# toolchain, and no root-owned files in it), otherwise as root.
demo_cargo() {
    local cmd='cd "$1" && cargo build --release -p shipworm'
    local -a env=()
    [[ -n ${CARGO_TARGET_DIR:-} ]] && env=("CARGO_TARGET_DIR=$CARGO_TARGET_DIR")
    if [[ -n ${SUDO_USER:-} && $SUDO_USER != root && $(stat -c %U "$LAB_REPO") == "$SUDO_USER" ]]; then
        sudo -u "$SUDO_USER" -H env "${env[@]}" bash -lc \
            "PATH=\$HOME/.cargo/bin:\$PATH; $cmd" _ "$LAB_REPO"
    else
        env "${env[@]}" bash -c "PATH=\$HOME/.cargo/bin:\$PATH; $cmd" _ "$LAB_REPO"
    fi
}

if ((build)); then
    build_log=$(mktemp /tmp/shipworm-demo-build.XXXXXX)
    t=$(lab_now)
    demo_cargo >"$build_log" 2>&1 ||
        fail "build" "cargo build --release -p shipworm (no cargo? install Rust from https://rustup.rs, or set SHIPWORM_BIN)" "$build_log"
    rm -f "$build_log"
    row "build" "cargo build --release -p shipworm: ok ($(lab_since "$t") s)"
fi
bin=$(lab__shipworm_bin 2>/dev/null) || fail "binary" "no executable at ${SHIPWORM_BIN:-${CARGO_TARGET_DIR:-$LAB_REPO/target}/release/shipworm}"
row "binary" "$bin ($("$bin" --version 2>/dev/null))"

# --------------------------------------------------------------------------
# The lab

LAB_DIR=$(mktemp -d /tmp/shipworm-demo.XXXXXX) || exit 1
t=$(lab_now)
T_LAB=$t
lab_up 2>>"$LAB_DIR/lab.log" || fail "lab" "building the namespaces failed" "$LAB_DIR/lab.log"
row "lab" "8 namespaces ($LAB_PREFIX-*), NATs cone, up in $(lab_since "$t") s"

lab_start_server shipworm 2>>"$LAB_DIR/lab.log" ||
    fail "server" "shipworm server did not start" "$LAB_DIR/server-shipworm.log"
row "server" "shipworm server on $LAB_SERVER_IP and $LAB_SERVER_IP2, UDP 3544"

lab_start_shipworm_relay 2>>"$LAB_DIR/lab.log" ||
    fail "relay" "shipworm relay did not route 2001::/32" "$LAB_DIR/shipworm-relay.log"
row "relay" "shipworm relay on $LAB_RELAY_IP / $LAB_RELAY_IP6, routes 2001::/32"
row "native host" "$LAB_NATIVE_IP6 (plain Linux IPv6, 2001::/32 via the relay)"

t=$(lab_now)
lab_start_shipworm_client client1 || fail "client1" "shipworm client did not start"
lab_start_shipworm_client client2 || fail "client2" "shipworm client did not start"

# Wait for a client's address, then check what it encodes (RFC 4380 §4)
# against the lab: our server, the NAT's WAN address, and the UDP port the
# NAT really chose (the reply direction of its conntrack entry to the server).
show_client() {  # <client> <nat> <nat-wan> <var>
    local node=$1 nat=$2 wan=$3 addr='' server port mapped flags nat_port
    lab_wait_teredo_addr "$node" 10 addr ||
        fail "$node" "no Teredo address within 10 s" "$LAB_DIR/shipworm-$node.log"
    read -r server port mapped flags < <(lab_teredo_decode "$addr")
    nat_port=$(lab_exec "$nat" conntrack -L -p udp --dst "$LAB_SERVER_IP" --dport 3544 2>/dev/null |
        grep -o 'dport=[0-9]*' | tail -n 1 | cut -d= -f2)
    row "$node" "$addr (qualified after $(lab_since "$t") s)"
    row "" "= server $server, mapped $mapped:$port (behind $nat), flags 0x$flags"
    [[ $server == "$LAB_SERVER_IP" ]] || fail "$node" "server field $server, expected $LAB_SERVER_IP"
    [[ $mapped == "$wan" ]] || fail "$node" "mapped address $mapped, expected $nat's WAN $wan"
    [[ $port == "${nat_port:-}" ]] || fail "$node" "mapped port $port, but $nat's conntrack says ${nat_port:-nothing}"
    printf -v "$4" '%s' "$addr"
}
echo "Teredo addresses (checked against the server and each NAT's conntrack)"
show_client client1 nat1 "$LAB_NAT1_WAN" A1
show_client client2 nat2 "$LAB_NAT2_WAN" A2

# --------------------------------------------------------------------------
# Pings through the tunnel.  The first echo of each path includes setting
# it up (bubbles, the relay's or the client's peer discovery), so max is
# the set-up and min the steady state.

echo "Ping through the tunnel (5 echo requests each; rtt min/avg/max)"
lost_first=0
ping_row() {  # <from> <to-addr> <label>
    local sent received
    lab_ping "$1" "$2" 5 || fail "$3" "${LAB_PING_SUMMARY:-no answer}"
    row "$3" "$LAB_PING_SUMMARY"
    read -r sent _ received _ <<<"$LAB_PING_SUMMARY"
    [[ $1 == native ]] && ((sent > received)) && lost_first=1
}
ping_row native "$A1" "native → client1"
ping_row client1 "$LAB_NATIVE_IP6" "client1 → native"
ping_row client1 "$A2" "client1 → client2"
ping_row client2 "$A1" "client2 → client1"
ping_row native "$A2" "native → client2"
((lost_first)) &&
    row "" "(lost native → client: the first echo; the client drops packets from" &&
    row "" " a native source until an echo test verifies the relay, RFC 4380 §5.2.3)"

# --------------------------------------------------------------------------
# Throughput: iperf3 TCP, 3 s, client1 → native through the NAT and relay.

echo "Throughput (iperf3 TCP, 3 s)"
iperf_listening() { lab_exec native ss -Hltn 'sport = :5201' | grep -q .; }
lab_spawn native "$LAB_DIR/iperf3-server.log" iperf3 -s -1
iperf_srv=$LAB_LAST_PID
lab_wait_for 5 iperf_listening || fail "iperf3" "server did not listen on the native host" "$LAB_DIR/iperf3-server.log"
lab_spawn client1 "$LAB_DIR/iperf3-client.log" timeout 15 \
    iperf3 -6 -c "$LAB_NATIVE_IP6" -t 3 -f m --connect-timeout 3000
wait "$LAB_LAST_PID" || fail "client1 → native" "iperf3 failed" "$LAB_DIR/iperf3-client.log"
lab__forget "$LAB_LAST_PID"
lab_stop "$iperf_srv"
# "[  5]   0.00-3.00  sec  300 MBytes  838 Mbits/sec  42  sender" / "… receiver"
read -r rate retr < <(awk '
    / sender$/   { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") r = $(i + 1) }
    / receiver$/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") m = $(i - 1) }
    END { if (m != "") print m, (r == "" ? "?" : r) }' "$LAB_DIR/iperf3-client.log")
[[ -n ${rate:-} ]] || fail "client1 → native" "no result in iperf3's output" "$LAB_DIR/iperf3-client.log"
row "client1 → native" "$rate Mbit/s received, $retr TCP retransmits (NAT1 → relay → native)"

echo "All checks passed in $(lab_since "$T_LAB") s of lab ($(lab_since "$T0") s in all); tearing it down."
