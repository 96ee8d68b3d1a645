#!/usr/bin/env bash
# bench/relay_throughput.sh — iperf3 through `shipworm relay`, through
# Miredo's relay, and through plain kernel IPv6 forwarding, in one run:
# throughput, loss, and the relay process's CPU seconds per gigabyte; prints
# the shipworm/miredo ratios.  A benchmark, not a test: never run by .ci/run.
#
#   sudo bench/relay_throughput.sh                about 2.5 min
#   sudo DURATION=5 bench/relay_throughput.sh
#   sudo TESTS="tcp-up tcp-down" IMPLS="shipworm miredo" bench/relay_throughput.sh
#
# Topology: lab/lab.sh's lab.  iperf3's server runs in "native"
# (2001:db8:1::100), its client in "client1" behind NAT1 (cone).
#
# - shipworm / miredo: Miredo's client in client1 (the same client for both,
#   so only the relay differs) reaches the native host over Teredo through
#   the relay node, where `shipworm relay` or Miredo's relay runs.  The
#   client and the relay are started afresh for each implementation.
# - kernel: the upper bound, the same path without Teredo.  client1 gets
#   native IPv6 (2001:db8:2::2/64) behind NAT1, which routes it (IPv6
#   forwarding, no NAT) to the internet bridge; the native host and the
#   relay node route 2001:db8:2::/64 through the relay node and NAT1.  So a
#   packet takes the same hops as over Teredo (native → relay node → bridge
#   → NAT1 → client1) but is forwarded by the kernel at each hop: no tunnel,
#   no user-space relay, no UDP encapsulation, no NAT translation, no Teredo
#   client.  It exists only during its own run, so it cannot leak into the
#   Teredo runs; it has no relay process, hence no CPU/GB.  TSO, GSO and GRO
#   are switched off on its path for its run (BASE_OFFLOADS=1 keeps them),
#   so that it forwards packet by packet, as the Teredo path does.
#
# Tests (TESTS, defaults in brackets): tcp-up / tcp-down (iperf3 TCP, MSS
# 1180 so a segment fits the Teredo MTU of 1280: 1180 + 32 TCP with
# timestamps + 40 IPv6 = 1252), udp-down-<rate> / udp-up-<rate> (UDP
# at <rate> offered, 1200-byte payloads: 1248-byte IPv6 packets).  "up" is
# client → native, "down" native → client (iperf3 -R).
#
# Metrics per test: receiver's throughput (iperf3's receiver-side bytes),
# loss (UDP: iperf3's lost/total datagrams), relay CPU = utime + stime of the
# relay process and its descendants (Miredo forks a worker) from
# /proc/<pid>/stat, read before and after the iperf3 run, and CPU s/GB =
# that CPU over the gigabytes (10^9 bytes of iperf3 payload) the receiver
# got.  The ratio lines compare throughput (higher is better) and CPU/GB
# (lower is better: a ratio below 1 means shipworm spends less).  Where the
# relay loses: "rcvbuf drops" (UDP RcvbufErrors of the relay's namespace:
# its socket was full) and "tun drops" (the tunnel's tx_dropped: the relay
# did not read packets routed to it fast enough), over the same window;
# "client drops" is the same two counters summed in client1 (Miredo's
# client), the other end of the tunnel.
#
# Environment: DURATION [10] seconds per test, TESTS ["tcp-up tcp-down
# udp-down-200M udp-down-1G udp-up-1G"], IMPLS ["shipworm miredo kernel"],
# SERVER_IMPL [miredo] (the Teredo server; it only takes part in the
# client's qualification and first echo test), CARGO_TARGET_DIR,
# SHIPWORM_BIN, BENCH_NO_BUILD=1, LAB_KEEP=1, BASE_OFFLOADS [0].
set -u -o pipefail
BENCH_ROOT=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH_ROOT")
cd "$REPO" || exit 1

if ((EUID != 0)); then
    echo "bench/relay_throughput.sh: needs root (network namespaces); run it as root" >&2
    exit 1
fi

DURATION=${DURATION:-10}
read -ra TESTS <<<"${TESTS:-tcp-up tcp-down udp-down-200M udp-down-1G udp-up-1G}"
read -ra IMPLS <<<"${IMPLS:-shipworm miredo kernel}"
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
SHIPWORM_BIN=${SHIPWORM_BIN:-$TARGET/release/shipworm}
export SHIPWORM_BIN
CLK_TCK=$(getconf CLK_TCK)
# The kernel baseline's addresses (documentation range).
BASE_NET=2001:db8:2::
BASE_NAT=2001:db8:2::1
BASE_CLIENT=2001:db8:2::2
BASE_NAT_WAN=2001:db8:1::21

if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    CARGO_TARGET_DIR=$TARGET cargo build --quiet --release -p shipworm || exit 1
fi
command -v iperf3 >/dev/null || { echo "needs iperf3" >&2; exit 1; }
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }

# shellcheck source=../lab/lab.sh
source "$REPO/lab/lab.sh"

# CPU ticks (utime + stime) of <pid> and all its descendants; every
# thread's time is in its process's /proc/<pid>/stat.
bench_tree_ticks() {
    local pid=$1 stat child total=0
    local -a f
    if read -r stat 2>/dev/null <"/proc/$pid/stat"; then
        read -ra f <<<"${stat##*) }"  # f[0] = field 3 (state); utime = f[11], stime = f[12]
        total=$((f[11] + f[12]))
    fi
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        total=$((total + $(bench_tree_ticks "$child")))
    done
    echo "$total"
}

# VmRSS (KiB) of <pid> and its descendants, summed.
bench_tree_rss() {
    local pid=$1 child total
    total=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
    total=${total:-0}
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        total=$((total + $(bench_tree_rss "$child")))
    done
    echo "$total"
}

# The kernel baseline: native IPv6 for client1 behind NAT1 (see the header).
bench_baseline() {  # add|del
    bench_offloads "$([[ $1 == add ]] && echo off || echo on)" || return 1
    lab_exec nat1 sysctl -q -w net.ipv6.conf.all.forwarding=$([[ $1 == add ]] && echo 1 || echo 0) || return 1
    lab__ip nat1 <<EOF || return 1
address $1 $BASE_NAT/64 dev lan0 nodad
address $1 $BASE_NAT_WAN/64 dev wan0 nodad
EOF
    lab__ip client1 <<EOF || return 1
address $1 $BASE_CLIENT/64 dev lan0 nodad
route $1 $LAB_NATIVE_IP6 via $BASE_NAT
EOF
    lab__ip relay <<EOF || return 1
route $1 $BASE_NET/64 via $BASE_NAT_WAN
EOF
    lab__ip native <<EOF || return 1
route $1 $BASE_NET/64 via $LAB_RELAY_IP6
EOF
}

bench_iperf_listening() { [[ -n $(lab_exec native ss -Hltn "sport = :5201") ]]; }

# Segmentation and receive offloads (TSO, GSO, GRO) on every interface of
# the baseline's path.  With them a veth carries 64 KiB TCP super-packets,
# and the "kernel" figure would count one forwarding decision per 40-odd
# segments, while Teredo's tun and UDP socket handle every 1280-byte packet
# on its own; so they are off for the kernel run unless BASE_OFFLOADS=1.
bench_offloads() {  # on|off
    [[ ${BASE_OFFLOADS:-0} == 1 ]] && return 0
    local node dev
    for node in native:eth0 relay:eth0 nat1:wan0 nat1:lan0 client1:lan0; do
        dev=${node#*:} node=${node%:*}
        lab_exec "$node" ethtool -K "$dev" tso "$1" gso "$1" gro "$1" >/dev/null 2>&1 || return 1
    done
}

# "<udp-rcvbuf-errors> <tun-tx-dropped>" in <node>: datagrams lost because
# a socket was full, packets lost because the Teredo daemon did not read its
# tunnel fast enough (the tun's transmit queue overflowed).
bench_drops() {  # <node>
    local rcvbuf tun
    rcvbuf=$(lab_exec "$1" awk '$1 == "Udp:" && !h { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next } $1 == "Udp:" { print $c["RcvbufErrors"] }' /proc/net/snmp)
    tun=$(lab_exec "$1" ip -j -s link show dev teredo 2>/dev/null | jq -r '.[0].stats64.tx.dropped // 0' 2>/dev/null)
    echo "${rcvbuf:-0} ${tun:-0}"
}

# One iperf3 run from client1 to the native host; appends a result line.
bench_iperf() {  # <impl> <test> <relay-pid or 0>
    local impl=$1 test=$2 pid=$3 json=$LAB_DIR/iperf-$1-$2.json
    local -a opts=(-6 -c "$LAB_NATIVE_IP6" -t "$DURATION" -J)
    local proto=tcp dir=up rate=-
    case $test in
    tcp-up) opts+=(-M 1180) ;;
    tcp-down) opts+=(-M 1180 -R); dir=down ;;
    udp-up-*) proto=udp rate=${test#udp-up-}; opts+=(-u -b "$rate" -l 1200) ;;
    udp-down-*) proto=udp dir=down rate=${test#udp-down-}; opts+=(-u -b "$rate" -l 1200 -R) ;;
    *) lab_log "unknown test $test"; return 1 ;;
    esac
    local t0=0 t1=0 r0=0 r1=0 d0=0 d1=0 c0=0 c1=0 e0=0 e1=0
    if ((pid > 0)); then
        t0=$(bench_tree_ticks "$pid")
        read -r r0 d0 < <(bench_drops relay)
        read -r c0 e0 < <(bench_drops client1)
    fi
    lab_exec client1 timeout -k 5 $((DURATION + 20)) iperf3 "${opts[@]}" >"$json" 2>&1
    if ((pid > 0)); then
        t1=$(bench_tree_ticks "$pid")
        read -r r1 d1 < <(bench_drops relay)
        read -r c1 e1 < <(bench_drops client1)
    fi
    local bytes secs lost packets
    if [[ $proto == tcp ]]; then
        read -r bytes secs < <(jq -r '"\(.end.sum_received.bytes) \(.end.sum_received.seconds)"' "$json" 2>/dev/null)
        lost=0 packets=0
    else
        # Receiver-side bytes: the sender's total minus the datagrams lost.
        read -r bytes secs lost packets < <(jq -r '.end.sum as $s | "\($s.bytes * (1 - $s.lost_percent / 100) | floor) \($s.seconds) \($s.lost_packets) \($s.packets)"' "$json" 2>/dev/null)
    fi
    if [[ -z ${bytes:-} || $bytes == null ]]; then
        lab_log "$impl $test: iperf3 failed: $(jq -r '.error // empty' "$json" 2>/dev/null || tail -n 2 "$json")"
        echo "impl=$impl test=$test failed=1" >>"$RESULTS"
        return 1
    fi
    echo "impl=$impl test=$test proto=$proto dir=$dir rate=$rate bytes=$bytes secs=$secs lost=$lost packets=$packets ticks=$((t1 - t0)) rcvbuf=$((r1 - r0)) tundrop=$((d1 - d0)) client_drops=$((c1 - c0 + e1 - e0)) rss=$( ((pid > 0)) && bench_tree_rss "$pid" || echo 0)" >>"$RESULTS"
}

# Start one implementation's path and run every test through it.
bench_impl() {  # <impl>
    local impl=$1 pid=0 addr
    case $impl in
    shipworm) LAB_RELAY_LOG_LEVEL=info lab_start_shipworm_relay || return 1; pid=$LAB_RELAY_PID ;;
    miredo) lab_start_miredo_relay || return 1; pid=$LAB_RELAY_PID ;;
    kernel) bench_baseline add || { lab_log "cannot set up the kernel baseline"; return 1; } ;;
    *) lab_log "unknown implementation $impl"; return 1 ;;
    esac
    local client_pid=0
    if [[ $impl != kernel ]]; then
        lab_start_miredo_client client1
        client_pid=$LAB_LAST_PID
        lab_wait_teredo_addr client1 15 addr || { lab_log "$impl: client1 did not qualify"; return 1; }
    fi
    # The first packets set up the path (echo test, bubbles); then iperf3.
    lab_ping client1 "$LAB_NATIVE_IP6" 3 || { lab_log "$impl: client1 cannot ping the native host"; return 1; }
    local test
    for test in "${TESTS[@]}"; do
        bench_iperf "$impl" "$test" "$pid"
    done
    ((client_pid > 0)) && lab_stop "$client_pid"
    case $impl in
    kernel) bench_baseline del ;;
    *) lab_stop "$pid" ;;
    esac
}

lab_up || exit 1
RESULTS=$LAB_DIR/results
: >"$RESULTS"
lab_start_server "${SERVER_IMPL:-miredo}" || exit 1
lab_spawn native "$LAB_DIR/iperf3-server.log" iperf3 -s
lab_wait_for 5 bench_iperf_listening || { lab_log "iperf3 server did not start"; exit 1; }

status=0
t_start=$(lab_now)
for impl in "${IMPLS[@]}"; do
    bench_impl "$impl" || { lab_log "$impl: run failed"; status=1; }
done

awk -v clk="$CLK_TCK" -v dur="$DURATION" -v total="$(lab_since "$t_start")" '
function kv(   i, p) { delete f; for (i = 1; i <= NF; i++) { p = index($i, "="); f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
BEGIN {
    printf "relay throughput: iperf3 %d s per test, client1 (behind NAT1) <-> native host; load %s\n\n", dur, loadavg()
    printf "%-9s %-14s %9s %8s %10s %9s %12s %9s %12s %8s\n", "relay", "test", "Mbit/s", "loss", "relay cpu", "cpu s/GB", "rcvbuf drops", "tun drops", "client drops", "RSS KiB"
}
function loadavg(   l) { getline l < "/proc/loadavg"; split(l, a, " "); return a[1] " " a[2] " " a[3] }
{
    kv()
    i = f["impl"]; t = f["test"]
    if (!(t in seen)) { seen[t] = 1; tests[++nt] = t }
    if (f["failed"] == 1) { printf "%-9s %-14s %9s\n", i, t, "FAILED"; failed = 1; next }
    mbps[i, t] = f["bytes"] * 8 / f["secs"] / 1e6
    cpu = f["ticks"] / clk
    gb = f["bytes"] / 1e9
    cpg[i, t] = (i == "kernel" || gb == 0) ? -1 : cpu / gb
    loss = (f["packets"] > 0) ? sprintf("%.2f%%", 100 * f["lost"] / f["packets"]) : "-"
    k = (i == "kernel")
    printf "%-9s %-14s %9.1f %8s %10s %9s %12s %9s %12s %8s\n", i, t, mbps[i, t], loss, (k ? "-" : sprintf("%.2f s", cpu)), (cpg[i, t] < 0 ? "-" : sprintf("%.2f", cpg[i, t])), (k ? "-" : f["rcvbuf"]), (k ? "-" : f["tundrop"]), (k ? "-" : f["client_drops"]), (k ? "-" : f["rss"])
}
END {
    print ""
    for (k = 1; k <= nt; k++) {
        t = tests[k]
        line = sprintf("%-14s", t)
        if ((("shipworm", t) in mbps) && (("miredo", t) in mbps) && mbps["miredo", t] > 0) {
            line = line sprintf("  ratio shipworm/miredo throughput %.2f", mbps["shipworm", t] / mbps["miredo", t])
            if (cpg["miredo", t] > 0 && cpg["shipworm", t] >= 0) line = line sprintf(", CPU/GB %.2f", cpg["shipworm", t] / cpg["miredo", t])
        }
        if ((("kernel", t) in mbps) && mbps["kernel", t] > 0) {
            if (("shipworm", t) in mbps) line = line sprintf("%s shipworm/kernel throughput %.2f", (length(line) > 14 ? ";" : ""), mbps["shipworm", t] / mbps["kernel", t])
            if (("miredo", t) in mbps) line = line sprintf(", miredo/kernel %.2f", mbps["miredo", t] / mbps["kernel", t])
        }
        if (length(line) > 14) print line
    }
    printf "\ntotal time %s s\n", total
    exit failed
}' "$RESULTS" || status=1
exit "$status"
