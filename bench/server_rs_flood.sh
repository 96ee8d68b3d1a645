#!/usr/bin/env bash
# bench/server_rs_flood.sh — Router Solicitation flood against Debian's
# miredo-server and `shipworm server`, same generator, same run; prints a
# table and the shipworm/miredo ratios of RAs per second and RAs per
# server CPU-second.  A benchmark, not a test: never run by .ci/run.
#
#   sudo bench/server_rs_flood.sh                 5 s per server after 1 s warm-up
#   sudo DURATION=10 ROUNDS=5 bench/server_rs_flood.sh
#   sudo RATE=100000 bench/server_rs_flood.sh     fixed offered rate (RS/s)
#   sudo BENCH_DELIVER=1 bench/server_rs_flood.sh  deliver every RA (see below)
#
# Environment (defaults in brackets): DURATION [5], WARMUP [1] seconds;
# SOCKETS [512] source ports; SAMPLE [16] of them whose RAs are checked;
# BURST [8] RSs per socket per sendmmsg; RATE [0 = as fast as possible];
# ROUNDS [3] (each round runs every implementation once, in order);
# IMPLS ["miredo shipworm"]; CARGO_TARGET_DIR [<repo>/target];
# SHIPWORM_BIN [$CARGO_TARGET_DIR/release/shipworm]; BENCH_NO_BUILD=1 to
# skip `cargo build`; LAB_KEEP=1 to keep the lab's logs; BENCH_DELIVER [0].
#
# Topology: lab/lab.sh's lab (server at 198.51.100.1/.2 on the "internet"
# bridge) plus one extra node, "flood", on that bridge at 198.51.100.50: no
# NAT between generator and server.  In the flood namespace iptables counts
# every datagram from UDP port 3544 (the RAs) that arrives; those to the
# SAMPLE ports are accepted and checked by rs_flood, the rest dropped before
# any socket, so the generator spends its core on sending.
#
# Sink mode (the default): a tc filter on the server's interface drops the
# RAs to non-sample ports as they leave, and its qdisc counts them.  The
# server's work then ends where it would end on a real NIC, at the device
# queue; without it (BENCH_DELIVER=1) the kernel carries every RA across
# veth, bridge and veth into the generator's namespace inside the server's
# sendmmsg/sendmsg, and charges that to the server's CPU time.
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
BENCH_DELIVER=${BENCH_DELIVER:-0}
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

# A classic-BPF program (tc "bytecode" form) for the sink filter, run in
# direct-action mode: TC_ACT_SHOT (2) for an IPv4 UDP datagram to <dst-ip>
# from port 3544 whose destination port lies outside [<first>, <last>],
# TC_ACT_UNSPEC (-1: let it go on) for anything else (ARP, the sample RAs,
# non-first fragments).  At tc egress the data starts at the Ethernet
# header.  This kernel has neither flower, matchall nor the gact (drop)
# action, and its u32 has no hit counters; classic BPF needs no compiler.
bench_sink_bpf() {  # <dst-ip> <first> <last>
    local a b c d
    IFS=. read -r a b c d <<<"$1"
    local -a prog=(
        "40 0 0 12"                       # 0  ldh [12]          EtherType
        "21 0 12 2048"                    # 1  jeq IPv4 else pass
        "32 0 0 30"                       # 2  ld [30]           IPv4 destination
        "21 0 10 $(((a << 24) | (b << 16) | (c << 8) | d))" # 3 jeq <dst-ip> else pass
        "48 0 0 23"                       # 4  ldb [23]          protocol
        "21 0 8 17"                       # 5  jeq UDP else pass
        "40 0 0 20"                       # 6  ldh [20]          fragment offset
        "69 6 0 8191"                     # 7  jset 0x1fff: a later fragment, pass
        "177 0 0 14"                      # 8  ldxb 4*([14]&0xf) IPv4 header length
        "72 0 0 14"                       # 9  ldh [x+14]        UDP source port
        "21 0 3 3544"                     # 10 jeq 3544 else pass
        "72 0 0 16"                       # 11 ldh [x+16]        UDP destination port
        "53 0 2 $2"                       # 12 jge <first> else drop
        "37 1 0 $3"                       # 13 jgt <last>: drop, else pass
        "6 0 0 4294967295"                # 14 pass: ret TC_ACT_UNSPEC
        "6 0 0 2"                         # 15 drop: ret TC_ACT_SHOT
    )
    local IFS=,
    echo "${#prog[@]},${prog[*]}"
}

# Sink mode: drop the RAs to the non-sample ports at the egress of the
# server's interface, the stand-in for a NIC's transmit queue.  The clsact
# qdisc's "dropped" counter then counts them (rs_flood --sink reads it).
bench_add_sink() {
    local first=$FIRST_PORT last=$((FIRST_PORT + SAMPLE - 1))
    # No sample ports: a range no port is in, so every RA is dropped.
    ((SAMPLE > 0)) || first=65536 last=65536
    lab_exec server tc qdisc add dev eth0 clsact || return 1
    lab_exec server tc filter add dev eth0 egress bpf da \
        bytecode "$(bench_sink_bpf "$FLOOD_IP" "$first" "$last")"
}

# One flood against the running server; appends rs_flood's result line.
bench_flood() {  # <impl> <round>
    local line
    local -a sink=()
    [[ $BENCH_DELIVER == 1 ]] || sink=(--sink "$(lab_ns server):eth0")
    line=$(lab_exec flood timeout -k 5 $((${WARMUP%.*} + ${DURATION%.*} + 30)) \
        "$FLOOD_BIN" --bind "$FLOOD_IP" --server "$LAB_SERVER_IP" \
        --first-port "$FIRST_PORT" --sockets "$SOCKETS" --sample "$SAMPLE" \
        --burst "$BURST" --rate "$RATE" --warmup "$WARMUP" --duration "$DURATION" \
        --server-pid "$LAB_SERVER_PID" --clk-tck "$(getconf CLK_TCK)" --label "$1" "${sink[@]}") || return 1
    echo "round=$2 $line" >>"$RESULTS"
}

lab_up || exit 1
bench_add_flood_node || { lab_log "cannot add the flood node"; exit 1; }
if [[ $BENCH_DELIVER != 1 ]]; then
    bench_add_sink || { lab_log "cannot add the sink filter (tc clsact + bpf); BENCH_DELIVER=1 runs without it"; exit 1; }
fi
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
awk -v rate="$RATE" -v burst="$BURST" -v sockets="$SOCKETS" -v deliver="$BENCH_DELIVER" '
function kv(   i, p) { delete f; for (i = 1; i <= NF; i++) { p = index($i, "="); f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
BEGIN {
    printf "RS flood: %d source ports, %d RSs per sendmmsg, offered %s; %s\n\n", sockets, burst, (rate == 0 ? "as fast as possible" : rate " RS/s"), (deliver == 1 ? "delivery mode (every RA crosses to the generator)" : "sink mode (RAs dropped at the server egress)")
    printf "%-9s %5s %10s %10s %8s %14s %10s %11s %8s %8s %9s %13s %6s\n", "server", "round", "offered/s", "RAs/s", "answered", "cpu s usr+sys", "RAs/cpu-s", "gen usr+sys", "RSS KiB", "HWM KiB", "rcv drops", "sample ok/bad", "sunk"
}
{
    kv()
    l = f["label"]
    printf "%-9s %5s %10s %10s %7.1f%% %14s %10s %11s %8s %8s %9s %7s/%-5s %5.1f%%\n", l, f["round"], f["offered_per_s"], f["ras_per_s"], (f["offered_rs"] > 0 ? 100 * f["ras"] / f["offered_rs"] : 0), f["server_user_s"] "+" f["server_sys_s"], f["ras_per_cpu_s"], f["gen_user_s"] "+" f["gen_sys_s"], f["server_rss_kib"], f["server_hwm_kib"], f["server_rcvbuf_drops"], f["sample_valid"], f["sample_invalid"], (f["ras"] > 0 ? 100 * f["ras_sunk"] / f["ras"] : 0)
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
