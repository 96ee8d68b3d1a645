#!/usr/bin/env bash
# bench/relay_memory.sh — resident memory of `shipworm relay` and of
# Miredo's relay, idle and holding PEERS (10,000) peer entries, in one run;
# prints VmRSS and the shipworm/miredo ratio.  A benchmark, not a test:
# never run by .ci/run.
#
#   sudo bench/relay_memory.sh                    about 1.5 min
#   sudo PEERS=5000 bench/relay_memory.sh
#
# Topology: lab/lab.sh's lab plus one node, "peers": a namespace on the
# internet bridge at 198.51.100.60 that plays PEERS Teredo clients.  Peer i
# has server 203.0.113.(1 + i % 250) (250 distinct servers, routed from the
# relay node to the peers node, which drops what arrives) and mapping
# 198.51.100.60:(10000 + i), so every address is a plausible, global one.
#
# For each relay (`shipworm relay`, then Miredo's relay, in the relay node):
#  1. start it and read its idle VmRSS;
#  2. bench/relay_peers.py in the native host sends one ICMPv6 Echo Request
#     to each peer, paced; the relay makes an entry for each, queues the
#     packet and sends an indirect bubble to the peer's server;
#  3. DELAY (1 s) after each ping, the peers node sends that peer's bubble
#     from its mapping to the relay (relay_peers.py answer), which proves
#     the peer: the relay trusts it and releases the queued ping to the
#     mapping;
#  4. 2 s after the last answer, read VmRSS, VmHWM, RssAnon and PSS
#     (summed over the relay's processes: Miredo runs a monitor and a
#     worker, which share libc's pages; PSS does not count those twice),
#     the number of entries the relay holds (shipworm: its SIGUSR1
#     "stats: N peers" log line; Miredo has no such report) and, for
#     both, iptables counters in
#     the peers node: released pings (UDP to the mappings; each is a peer
#     that became trusted) and indirect bubbles (UDP to the servers).
#
# Why trusted peers and two paces.  An entry that never answers lives only
# as long as its bubbles in Shipworm (four, 2 s apart: deleted after about
# 8 s, RFC 4380 §5.4.1), and new entries from the IPv6 side are limited to
# 256/s after a burst of 512 (relay-wide token bucket, RFC 4380 §7.3.5;
# the 250 servers keep the per-server buckets, 64/s each, out of the way).
# Unanswered, Shipworm would never hold more than about 2,500 entries at
# once, so the peers answer and the entries become trusted, which Shipworm
# keeps for 60 s of idleness.  Shipworm's pace is RATE_SHIPWORM [240]/s,
# under the bucket's rate: 10,000 peers take about 42 s.  Miredo has no such
# limit, but its garbage collector frees an idle entry after 30-60 s, so at
# 240/s it would already have freed the first peers when the last were
# made; it gets RATE_MIREDO [2000]/s (5 s).  The set of peers is the same.
#
# Environment: PEERS [10000], RATE_SHIPWORM [240], RATE_MIREDO [2000],
# DELAY [1] s, IMPLS ["shipworm miredo"], CARGO_TARGET_DIR, SHIPWORM_BIN,
# BENCH_NO_BUILD=1, LAB_KEEP=1.
set -u -o pipefail
BENCH_ROOT=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH_ROOT")
cd "$REPO" || exit 1

if ((EUID != 0)); then
    echo "bench/relay_memory.sh: needs root (network namespaces, iptables); run it as root" >&2
    exit 1
fi

PEERS=${PEERS:-10000}
RATE_SHIPWORM=${RATE_SHIPWORM:-240}
RATE_MIREDO=${RATE_MIREDO:-2000}
DELAY=${DELAY:-1}
read -ra IMPLS <<<"${IMPLS:-shipworm miredo}"
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
SHIPWORM_BIN=${SHIPWORM_BIN:-$TARGET/release/shipworm}
export SHIPWORM_BIN
PEERS_IP=198.51.100.60
SERVERS_NET=203.0.113.0/24
((PEERS >= 1 && PEERS <= 50000)) || { echo "PEERS must be 1..50000" >&2; exit 1; }

if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    CARGO_TARGET_DIR=$TARGET cargo build --quiet --release -p shipworm || exit 1
fi

# shellcheck source=../lab/lab.sh
source "$REPO/lab/lab.sh"

# The peers' node: a veth on the internet bridge; it owns the servers'
# addresses (a local route) and drops every UDP datagram that arrives,
# counting the released pings and the bubbles apart.  Registered in
# $LAB_DIR/namespaces, so lab_down deletes it.
bench_add_peers_node() {
    local ns inet
    ns=$(lab_ns peers)
    inet=$(lab_ns inet)
    ip netns add "$ns" || return 1
    echo "$ns" >>"$LAB_DIR/namespaces"
    ip -n "$ns" link set lo up || return 1
    ip -n "$inet" link add peers type veth peer name eth0 netns "$ns" || return 1
    ip -n "$inet" link set peers master br0 up || return 1
    lab__ip peers <<EOF || return 1
address add $PEERS_IP/24 dev eth0
link set eth0 up
route add local $SERVERS_NET dev lo
EOF
    lab_exec peers iptables-restore <<EOF || return 1
*filter
:INPUT ACCEPT
:FORWARD DROP
:OUTPUT ACCEPT
-A INPUT -d $PEERS_IP -p udp -j DROP
-A INPUT -d $SERVERS_NET -p udp -j DROP
COMMIT
EOF
    lab__ip relay <<EOF || return 1
route add $SERVERS_NET via $PEERS_IP
EOF
    lab_wait_for 5 lab_exec relay ping -n -c1 -W1 "$PEERS_IP"
}

# "<released> <bubbles>": packets counted by the peers node's two rules.
bench_peer_counters() {
    lab_exec peers iptables -nvxL INPUT | awk '$3 == "DROP" && $9 == "'$PEERS_IP'" { r = $1 } $3 == "DROP" && $9 == "'$SERVERS_NET'" { b = $1 } END { print r + 0, b + 0 }'
}

# VmRSS, VmHWM, RssAnon and Pss (KiB) of <pid> and its descendants,
# summed: "rss hwm anon pss".  RssAnon is the process's own memory (heap,
# stacks, tables); the rest of VmRSS is mapped files (the binary, libc),
# which Miredo's two processes share: summed RSS counts those pages twice,
# PSS (smaps_rollup) splits them between the processes that map them.
bench_tree_mem() {
    local pid=$1 child rss hwm anon pss r h a p
    read -r rss hwm anon < <(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } /^RssAnon:/ { a = $2 } END { print r + 0, h + 0, a + 0 }' "/proc/$pid/status" 2>/dev/null)
    pss=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null)
    pss=${pss:-0}
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        read -r r h a p < <(bench_tree_mem "$child")
        rss=$((rss + r)) hwm=$((hwm + h)) anon=$((anon + a)) pss=$((pss + p))
    done
    echo "${rss:-0} ${hwm:-0} ${anon:-0} $pss"
}

bench_relay_port() {  # the relay's UDP port on its IPv4 address
    lab_exec relay ss -Hnlu | awk -v a="$LAB_RELAY_IP" '{ n = split($4, p, ":"); if (p[1] == a || p[1] == "0.0.0.0" || p[1] == "*") { print p[n]; exit } }'
}

bench_impl() {  # <impl>
    local impl=$1 pid rate port entries=- start idle_rss idle_hwm idle_anon rss hwm anon pss released bubbles n
    case $impl in
    shipworm) LAB_RELAY_LOG_LEVEL=info lab_start_shipworm_relay || return 1; rate=$RATE_SHIPWORM ;;
    miredo) lab_start_miredo_relay || return 1; rate=$RATE_MIREDO ;;
    *) lab_log "unknown implementation $impl"; return 1 ;;
    esac
    pid=$LAB_RELAY_PID
    lab_wait_for 5 bench_relay_port || { lab_log "$impl: no UDP socket on $LAB_RELAY_IP"; return 1; }
    port=$(bench_relay_port)
    sleep 1  # let start-up settle before the idle reading
    read -r idle_rss idle_hwm idle_anon _ < <(bench_tree_mem "$pid")
    lab_exec peers iptables -Z INPUT
    start=$(python3 -c 'import time; print(time.time() + 0.5)')
    lab_spawn peers "$LAB_DIR/answer-$impl.log" python3 "$BENCH_ROOT/relay_peers.py" answer "$PEERS" "$rate" "$start" "$DELAY" "$LAB_RELAY_IP" "$port"
    local answer_pid=$LAB_LAST_PID
    lab_spawn native "$LAB_DIR/ping-$impl.log" python3 "$BENCH_ROOT/relay_peers.py" ping "$PEERS" "$rate" "$start"
    local ping_pid=$LAB_LAST_PID
    local limit=$((PEERS / ${rate%.*} + 30))
    lab_wait_for "$limit" lab__dead "$ping_pid" || lab_log "$impl: pinger still running after $limit s"
    lab_wait_for "$limit" lab__dead "$answer_pid" || lab_log "$impl: answerer still running after $limit s"
    lab_stop "$ping_pid"
    lab_stop "$answer_pid"
    sleep 2  # the last answers' releases
    read -r rss hwm anon pss < <(bench_tree_mem "$pid")
    read -r released bubbles < <(bench_peer_counters)
    if [[ $impl == shipworm ]]; then
        n=$(grep -c ' stats: ' "$LAB_DIR/shipworm-relay.log")
        kill -USR1 "$pid"
        if lab_wait_for 5 lab__more_lines "$LAB_DIR/shipworm-relay.log" ' stats: ' "$n"; then
            entries=$(grep ' stats: ' "$LAB_DIR/shipworm-relay.log" | tail -n 1 | grep -o -E 'stats: [0-9]+ peers' | grep -o -E '[0-9]+')
            grep ' stats: ' "$LAB_DIR/shipworm-relay.log" | tail -n 1 | sed 's/^/    /' >&2
        fi
    fi
    echo "impl=$impl peers=$PEERS rate=$rate idle_rss=$idle_rss idle_anon=$idle_anon rss=$rss hwm=$hwm anon=$anon pss=$pss entries=${entries:--} released=$released bubbles=$bubbles ping=$(tr ' ' '_' <"$LAB_DIR/ping-$impl.log") answer=$(tr ' ' '_' <"$LAB_DIR/answer-$impl.log")" >>"$RESULTS"
    lab_stop "$pid"
}

lab_up || exit 1
bench_add_peers_node || { lab_log "cannot add the peers node"; exit 1; }
RESULTS=$LAB_DIR/results
: >"$RESULTS"

status=0
for impl in "${IMPLS[@]}"; do
    bench_impl "$impl" || { lab_log "$impl: run failed"; status=1; }
done

awk '
function kv(   i, p) { delete f; for (i = 1; i <= NF; i++) { p = index($i, "="); f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
{
    kv()
    if (NR == 1) {
        getline l < "/proc/loadavg"; split(l, a, " ")
        printf "relay memory: %d peers (servers 203.0.113.1-250, mappings 198.51.100.60:10000+); load %s %s %s\n\n", f["peers"], a[1], a[2], a[3]
        printf "%-9s %7s %12s %9s %9s %9s %9s %9s %9s %9s %8s\n", "relay", "pace/s", "idle RSS/anon", "RSS", "HWM", "anon", "PSS", "growth", "entries", "released", "bubbles"
    }
    i = f["impl"]; rss[i] = f["rss"]; anon[i] = f["anon"]; pss[i] = f["pss"]; n++
    printf "%-9s %7s %13s %9s %9s %9s %9s %9s %9s %9s %8s\n", i, f["rate"], f["idle_rss"] "/" f["idle_anon"], f["rss"], f["hwm"], f["anon"], f["pss"], f["rss"] - f["idle_rss"], f["entries"], f["released"], f["bubbles"]
    note[n] = sprintf("%-9s pinger: %s; answerer: %s", i, f["ping"], f["answer"])
}
END {
    print ""
    for (k = 1; k <= n; k++) { gsub("_", " ", note[k]); print note[k] }
    print "(memory in KiB, summed over the relay'"'"'s processes; growth = RSS - idle RSS)"
    if (("shipworm" in rss) && ("miredo" in rss) && rss["miredo"] > 0)
        printf "ratio shipworm/miredo VmRSS with the peers: %.2f (PSS: %.2f, anonymous memory: %.2f)\n", rss["shipworm"] / rss["miredo"], (pss["miredo"] > 0 ? pss["shipworm"] / pss["miredo"] : 0), anon["shipworm"] / anon["miredo"]
}' "$RESULTS" || status=1
exit "$status"
