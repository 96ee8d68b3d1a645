#!/usr/bin/env bash
# bench/server_rs_flood.sh — Router Solicitation flood against Debian's
# miredo-server and `shipworm server`, same generator, same run; prints a
# table and the shipworm/miredo ratios of RAs per second and RAs per
# server CPU-second.  A benchmark, not a test: never run by .ci/run.
#
#   sudo bench/server_rs_flood.sh                 5 s per server after 1 s warm-up
#   sudo DURATION=10 ROUNDS=5 bench/server_rs_flood.sh
#   sudo RATE=100000 bench/server_rs_flood.sh     fixed offered rate (RS/s)
#
# Environment (defaults in brackets): DURATION [5], WARMUP [1] seconds;
# SOCKETS [512] source ports; SAMPLE [16] of them whose RAs are checked;
# BURST [8] RSs per socket per sendmmsg; RATE [0 = as fast as possible];
# ROUNDS [3] (each round runs every implementation once, in order);
# IMPLS ["miredo shipworm"]; CARGO_TARGET_DIR [<repo>/target];
# SHIPWORM_BIN [$CARGO_TARGET_DIR/release/shipworm]; BENCH_NO_BUILD=1 to
# skip `cargo build`; LAB_KEEP=1 to keep the lab's logs.
#
# Topology: lab/lab.sh's lab (server at 198.51.100.1/.2 on the "internet"
# bridge) plus one extra node, "flood", on that bridge at 198.51.100.50: no
# NAT between generator and server.  In the flood namespace iptables counts
# every datagram from UDP port 3544 (the RAs); those to the SAMPLE ports are
# accepted and checked by rs_flood, the rest dropped before any socket, so
# the generator spends its core on sending.
set -u -o pipefail
BENCH_ROOT=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH_ROOT")
cd "$REPO" || exit 1

if ((EUID != 0)); then
    echo "bench/server_rs_flood.sh: needs root (network namespaces, iptables); run it as root" >&2
    exit 1
fi

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
SOCKETS=${SOCKETS:-512}
SAMPLE=${SAMPLE:-16}
BURST=${BURST:-8}
RATE=${RATE:-0}
ROUNDS=${ROUNDS:-3}
read -ra IMPLS <<<"${IMPLS:-miredo shipworm}"
FIRST_PORT=20000
FLOOD_IP=198.51.100.50
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
SHIPWORM_BIN=${SHIPWORM_BIN:-$TARGET/release/shipworm}
FLOOD_BIN=$TARGET/release/rs_flood
export SHIPWORM_BIN

if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    CARGO_TARGET_DIR=$TARGET cargo build --quiet --release -p shipworm -p rs_flood || exit 1
fi
[[ -x $FLOOD_BIN ]] || { echo "no rs_flood binary at $FLOOD_BIN" >&2; exit 1; }

# shellcheck source=../lab/lab.sh
source "$REPO/lab/lab.sh"

# Each flood sits on up to SOCKETS descriptors.
ulimit -n $((SOCKETS + 256)) 2>/dev/null

# The generator's node: a namespace with a veth on the internet bridge.  It
# is registered in $LAB_DIR/namespaces so that lab_down deletes it too.
bench_add_flood_node() {
    local ns inet last=$((FIRST_PORT + SAMPLE - 1))
    ns=$(lab_ns flood)
    inet=$(lab_ns inet)
    ip netns add "$ns" || return 1
    echo "$ns" >>"$LAB_DIR/namespaces"
    ip -n "$ns" link set lo up || return 1
    ip -n "$inet" link add flood type veth peer name eth0 netns "$ns" || return 1
    ip -n "$inet" link set flood master br0 up || return 1
    # The bridge stands for the Internet: no firewall on the path.  With
    # br_netfilter loaded, bridged IPv4 would otherwise go through the
    # iptables hooks of the inet namespace, work that the server's CPU time
    # pays for (its sends are delivered in its context).
    if [[ ${BENCH_BRIDGE_NF:-0} == 0 ]]; then
        lab_exec inet sysctl -q -w net.bridge.bridge-nf-call-iptables=0 2>/dev/null
    fi
    ip -n "$ns" address add "$FLOOD_IP/24" dev eth0 || return 1
    ip -n "$ns" link set eth0 up || return 1
    if ((SAMPLE > 0)); then
        lab_exec flood iptables -w -A INPUT -p udp --sport 3544 --dport "$FIRST_PORT:$last" -j ACCEPT || return 1
    fi
    lab_exec flood iptables -w -A INPUT -p udp --sport 3544 -j DROP || return 1
    lab_wait_for 5 lab_exec flood ping -n -c1 -W1 "$LAB_SERVER_IP"
}

# One flood against the running server; appends rs_flood's result line.
bench_flood() {  # <impl> <round>
    local line
    line=$(lab_exec flood timeout -k 5 $((${WARMUP%.*} + ${DURATION%.*} + 30)) \
        "$FLOOD_BIN" --bind "$FLOOD_IP" --server "$LAB_SERVER_IP" \
        --first-port "$FIRST_PORT" --sockets "$SOCKETS" --sample "$SAMPLE" \
        --burst "$BURST" --rate "$RATE" --warmup "$WARMUP" --duration "$DURATION" \
        --server-pid "$LAB_SERVER_PID" --clk-tck "$(getconf CLK_TCK)" --label "$1") || return 1
    echo "round=$2 $line" >>"$RESULTS"
}

lab_up || exit 1
bench_add_flood_node || { lab_log "cannot add the flood node"; exit 1; }
RESULTS=$LAB_DIR/results
: >"$RESULTS"

status=0
for ((round = 1; round <= ROUNDS; round++)); do
    for impl in "${IMPLS[@]}"; do
        if ! lab_start_server "$impl"; then
            lab_log "$impl: server did not start; skipped"
            status=1
            continue
        fi
        bench_flood "$impl" "$round" || { lab_log "$impl: flood failed"; status=1; }
        lab_stop "$LAB_SERVER_PID"
    done
done

# Table, totals per implementation, ratios.  A server whose sample RAs were
# missing or wrong makes the run fail: only real answers count.
awk -v rate="$RATE" -v burst="$BURST" -v sockets="$SOCKETS" '
function kv(   i, p) { delete f; for (i = 1; i <= NF; i++) { p = index($i, "="); f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
BEGIN {
    printf "RS flood: %d source ports, %d RSs per sendmmsg, offered %s\n\n", sockets, burst, (rate == 0 ? "as fast as possible" : rate " RS/s")
    printf "%-9s %5s %10s %10s %8s %14s %10s %11s %8s %8s %9s %13s\n", "server", "round", "offered/s", "RAs/s", "answered", "cpu s usr+sys", "RAs/cpu-s", "gen usr+sys", "RSS KiB", "HWM KiB", "rcv drops", "sample ok/bad"
}
{
    kv()
    l = f["label"]
    printf "%-9s %5s %10s %10s %7.1f%% %14s %10s %11s %8s %8s %9s %7s/%s\n", l, f["round"], f["offered_per_s"], f["ras_per_s"], (f["offered_rs"] > 0 ? 100 * f["ras"] / f["offered_rs"] : 0), f["server_user_s"] "+" f["server_sys_s"], f["ras_per_cpu_s"], f["gen_user_s"] "+" f["gen_sys_s"], f["server_rss_kib"], f["server_hwm_kib"], f["server_rcvbuf_drops"], f["sample_valid"], f["sample_invalid"]
    if (!(l in secs)) order[++n] = l
    secs[l] += f["secs"]; ras[l] += f["ras"]; cpu[l] += f["server_cpu_s"]
    if (f["sample_invalid"] > 0 || f["sample_valid"] == 0) { bad[l] = f["first_invalid"]; if (bad[l] == "none") bad[l] = "no_valid_RA" }
}
END {
    print ""
    for (i = 1; i <= n; i++) {
        l = order[i]; rps[l] = ras[l] / secs[l]; rpc[l] = (cpu[l] > 0 ? ras[l] / cpu[l] : 0)
        printf "%-9s total: %.0f RAs/s, %.0f RAs per server CPU-second\n", l, rps[l], rpc[l]
        if (l in bad) { printf "%-9s INVALID: sample RAs failed the check (%s)\n", l, bad[l]; invalid = 1 }
    }
    if (("shipworm" in rps) && ("miredo" in rps) && rps["miredo"] > 0) {
        printf "ratio shipworm/miredo RAs/s: %.2f\n", rps["shipworm"] / rps["miredo"]
        if (rpc["miredo"] > 0) printf "ratio shipworm/miredo RAs per CPU-second: %.2f\n", rpc["shipworm"] / rpc["miredo"]
    }
    exit invalid
}' "$RESULTS" || status=1
exit "$status"
