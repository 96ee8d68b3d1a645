# shellcheck shell=bash
# lab/lab.sh — the Shipworm network-namespace lab (sourceable library).
#
# One topology builder shared by the integration tests (lab/tests/), the
# benchmarks and the newcomer demo.  Source it, call lab_up, start daemons,
# test; lab_down runs from an EXIT/INT/TERM trap, so everything is torn down
# on failure too.
#
#                   inet: bridge br0 = "the internet"
#           IPv4 198.51.100.0/24 + IPv6 backbone 2001:db8:1::/64
#    +-----------+-----------+------------+---------------+
#    |           |           |            |               |
#  server      relay       native       nat1            nat2
#  .1, .2      .10         ::100        WAN .21         WAN .22
#  ::1         ::10        2001::/32    LAN .1/26 of    LAN .65/26 of
#              forwarding  via ::10     192.0.2.0       192.0.2.64
#                                         |               |
#                                       client1         client2
#                                       192.0.2.2       192.0.2.66
#
# Every name is derived from a per-run prefix (LAB_PREFIX, default "swl<$$>"):
# namespaces are "<prefix>-<node>".  Veth pairs are created *inside* the
# namespaces (never in the root namespace), so their short fixed names
# (eth0, wan0, lan0, br-side "server", "nat1"...) can never collide between
# two concurrent runs and stay well under the 15-character limit.
#
# Public API (all functions return non-zero on failure, none calls exit):
#   lab_up [--nat1 cone|symmetric] [--nat2 cone|symmetric]
#   lab_down                          idempotent; kills recorded PIDs only
#   lab_ns <node>                     namespace name of a node
#   lab_exec <node> cmd...            run a command inside a node
#   lab_spawn <node> <log> cmd...     background command; sets LAB_LAST_PID
#   lab_etc_file <node> <file>        stdin becomes the node's own /etc/<file>
#                                     (resolv.conf, hosts) for later commands
#   lab_stop <pid>                    TERM (then KILL after 3 s), reap
#   lab_wait_for <timeout_s> cmd...   poll cmd every 50 ms until it succeeds
#   lab_start_server miredo|shipworm  sets LAB_SERVER_PID; waits for UDP 3544
#   lab_start_miredo_client <client> [server-ip]   sets LAB_LAST_PID
#   lab_start_miredo_relay            sets LAB_RELAY_PID; waits for 2001::/32
#   lab_start_shipworm_relay [option...]  `shipworm relay`; the same
#   lab_start_shipworm_client <client> [option...]  `shipworm client`; LAB_LAST_PID
#   lab_capture_start <node> <iface> <file> [filter]  dumpcap; LAB_LAST_PID
#   lab_capture_wait <file> <n> <timeout_s>  until n packets are written
#   lab_teredo_addr <node>            print the node's 2001:0:… address
#   lab_wait_teredo_addr <node> <timeout_s> <var>  wait, store it in <var>
#   lab_teredo_decode <addr>          print "server port ipv4 flags"
#   lab_ipv6_expand <addr>            print the full 8-group form
#   lab_ping <from> <dst> [count]     ping -6; rc of ping, LAB_PING_SUMMARY
#   lab_tcp_transfer <from> <to> <to-addr> <bytes>  random data over TCP/IPv6,
#                                     SHA-256 compared; LAB_XFER_SUMMARY
#   lab_client_status <pid> <log>     SIGUSR1 a shipworm client; prints its
#                                     new "stats:" and "data:" status lines
#   lab_status_count <lines> <name>   a counter in those lines (0 if absent)
#   lab_now / lab_since <t0>          microsecond clock / "1.234" seconds
#   lab_test_begin <name>, lab_pass <msg>, lab_fail <msg>, lab_finish,
#   lab_check <what> <expected> <actual>, lab_require <what> cmd...
#
# Environment: LAB_PREFIX, LAB_DIR (temp dir for configs, logs, PID list;
# created by lab_up when unset), LAB_KEEP=1 (keep LAB_DIR after lab_down),
# SHIPWORM_BIN, RELAY_TYPE (cone|restricted), LAB_RELAY_LOG_LEVEL (shipworm
# relay's --log-level, default debug), SERVER_IMPL (tests only).

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_REPO=$(dirname "$LAB_ROOT")
: "${LAB_PREFIX:=swl$$}"
: "${LAB_DIR:=}"

# Addresses of the topology (documentation ranges only).
LAB_SERVER_IP=198.51.100.1
LAB_SERVER_IP2=198.51.100.2
LAB_SERVER_IP6=2001:db8:1::1
LAB_RELAY_IP=198.51.100.10
LAB_RELAY_IP6=2001:db8:1::10
LAB_NATIVE_IP6=2001:db8:1::100
LAB_NAT1_WAN=198.51.100.21
LAB_NAT2_WAN=198.51.100.22
LAB_CLIENT1_IP=192.0.2.2
LAB_CLIENT2_IP=192.0.2.66
LAB_NODES=(inet server relay native nat1 nat2 client1 client2)

# --------------------------------------------------------------------------
# Small utilities

lab_log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Microseconds since the epoch (no float arithmetic in bash).
lab_now() { local t=${EPOCHREALTIME//[!0-9]/}; echo "$t"; }

# Seconds elapsed since a lab_now value, as "S.mmm".
lab_since() {
    local d=$(($(lab_now) - $1))
    printf '%d.%03d' $((d / 1000000)) $((d % 1000000 / 1000))
}

lab_ns() { echo "${LAB_PREFIX}-$1"; }

lab_exec() {
    local node=$1
    shift
    ip netns exec "$(lab_ns "$node")" "$@"
}

# Poll "$@" every 50 ms until it succeeds; 1 on timeout.  Use this instead of
# fixed sleeps wherever a condition can be observed.
lab_wait_for() {
    local deadline=$(($(lab_now) + ${1%.*} * 1000000))
    shift
    until "$@" >/dev/null 2>&1; do
        (($(lab_now) >= deadline)) && return 1
        sleep 0.05
    done
}

# --------------------------------------------------------------------------
# Process bookkeeping.  Every background process is recorded in
# $LAB_DIR/pids as "pid starttime node command"; the start time (field 22 of
# /proc/<pid>/stat) guards against killing a recycled PID.

lab__starttime() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat=${stat##*) }  # the command name may contain spaces: skip past it
    # shellcheck disable=SC2086
    set -- $stat       # $1 = state (field 3) … $20 = starttime (field 22)
    [[ $1 != Z ]] || return 1
    echo "${20}"
}

lab__alive() { lab__starttime "$1" >/dev/null; }
lab__dead() { ! lab__alive "$1"; }

lab_spawn() {
    local node=$1 log=$2
    shift 2
    ip netns exec "$(lab_ns "$node")" "$@" </dev/null >"$log" 2>&1 &
    LAB_LAST_PID=$!
    echo "$LAB_LAST_PID $(lab__starttime "$LAB_LAST_PID" || echo 0) $node $1" >>"$LAB_DIR/pids"
}

# `ip netns exec` bind-mounts /etc/netns/<ns>/<file> over /etc/<file>, so
# processes started in <node> from now on see their own copy (ip-netns(8)).
# lab_down removes the directory with the namespace.
lab_etc_file() {  # <node> <file>, contents on stdin
    local dir
    dir=/etc/netns/$(lab_ns "$1")
    mkdir -p "$dir" && cat >"$dir/$2"
}

lab__forget() {
    [[ -f $LAB_DIR/pids ]] || return 0
    local rest
    rest=$(grep -v "^$1 " "$LAB_DIR/pids")
    if [[ -n $rest ]]; then echo "$rest" >"$LAB_DIR/pids"; else : >"$LAB_DIR/pids"; fi
}

# Stop one recorded process: SIGTERM, up to 3 s for it to exit, then SIGKILL.
lab_stop() {
    local pid=$1 rec start
    rec=$(grep "^$pid " "$LAB_DIR/pids" 2>/dev/null)
    start=$(echo "$rec" | cut -d' ' -f2)
    if [[ -n $rec && $(lab__starttime "$pid") == "$start" ]]; then
        kill -TERM "$pid" 2>/dev/null
        if ! lab_wait_for 3 lab__dead "$pid"; then
            lab_log "PID $pid ($rec) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    wait "$pid" 2>/dev/null  # reap it if it is our child
    lab__forget "$pid"
}

# --------------------------------------------------------------------------
# Topology

# Run an `ip -batch` script (stdin) inside a node; stops at the first error.
lab__ip() { ip -n "$(lab_ns "$1")" -batch -; }

# A home router.  MASQUERADE maps endpoint-independently and filters by
# address and port (a port-restricted "cone" for Teredo); --random picks a
# new port per destination (symmetric).  Unsolicited WAN input MUST be
# dropped: otherwise a peer's early direct bubble reaches the router's own
# stack, its confirmed conntrack entry clashes with the client's later
# mapping, MASQUERADE picks another port and P2P fails (lab-notes).
lab__nat_rules() {  # <wan-if> <lan-if> cone|symmetric
    local random=
    [[ $3 == symmetric ]] && random=" --random"
    cat <<EOF
*nat
:PREROUTING ACCEPT
:INPUT ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
-A POSTROUTING -o $1 -j MASQUERADE$random
COMMIT
*filter
:INPUT DROP
:FORWARD DROP
:OUTPUT ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -i $2 -j ACCEPT
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i $2 -o $1 -j ACCEPT
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
COMMIT
EOF
}

lab__build() {  # <nat1-type> <nat2-type>
    local node ns
    for node in "${LAB_NODES[@]}"; do
        ns=$(lab_ns "$node")
        ip netns add "$ns" || return 1
        echo "$ns" >>"$LAB_DIR/namespaces"
        # No DAD: static addresses must be usable at once (lab-notes).
        lab_exec "$node" sysctl -q -w net.ipv6.conf.all.accept_dad=0 \
            net.ipv6.conf.default.accept_dad=0 || return 1
        ip -n "$ns" link set lo up || return 1
    done
    lab_exec relay sysctl -q -w net.ipv6.conf.all.forwarding=1 || return 1
    lab_exec nat1 sysctl -q -w net.ipv4.ip_forward=1 || return 1
    lab_exec nat2 sysctl -q -w net.ipv4.ip_forward=1 || return 1

    # The "internet": one bridge, one port per attached node.  Each veth's
    # far end is created directly in the node's namespace.
    {
        echo "link add br0 type bridge stp_state 0 forward_delay 0"
        for node in server relay native nat1 nat2; do
            echo "link add $node type veth peer name $([[ $node == nat[12] ]] && echo wan0 || echo eth0) netns $(lab_ns "$node")"
            echo "link set $node master br0 up"
        done
        echo "link set br0 up"
    } | lab__ip inet || return 1

    lab__ip server <<EOF || return 1
address add $LAB_SERVER_IP/24 dev eth0
address add $LAB_SERVER_IP2/24 dev eth0
address add $LAB_SERVER_IP6/64 dev eth0 nodad
link set eth0 up
EOF
    lab__ip relay <<EOF || return 1
address add $LAB_RELAY_IP/24 dev eth0
address add $LAB_RELAY_IP6/64 dev eth0 nodad
link set eth0 up
EOF
    lab__ip native <<EOF || return 1
address add $LAB_NATIVE_IP6/64 dev eth0 nodad
link set eth0 up
route add 2001::/32 via $LAB_RELAY_IP6
EOF
    # Each NAT LAN is a point-to-point veth to its one client.
    lab__ip nat1 <<EOF || return 1
link add lan0 type veth peer name lan0 netns $(lab_ns client1)
address add $LAB_NAT1_WAN/24 dev wan0
address add 192.0.2.1/26 dev lan0
link set wan0 up
link set lan0 up
EOF
    lab__ip nat2 <<EOF || return 1
link add lan0 type veth peer name lan0 netns $(lab_ns client2)
address add $LAB_NAT2_WAN/24 dev wan0
address add 192.0.2.65/26 dev lan0
link set wan0 up
link set lan0 up
EOF
    lab__ip client1 <<EOF || return 1
address add $LAB_CLIENT1_IP/26 dev lan0
link set lan0 up
route add default via 192.0.2.1
EOF
    lab__ip client2 <<EOF || return 1
address add $LAB_CLIENT2_IP/26 dev lan0
link set lan0 up
route add default via 192.0.2.65
EOF
    lab__nat_rules wan0 lan0 "$1" | lab_exec nat1 iptables-restore || return 1
    lab__nat_rules wan0 lan0 "$2" | lab_exec nat2 iptables-restore || return 1

    # Sanity: both address families reach the server through the bridge.
    lab_wait_for 5 lab_exec client1 ping -n -c1 -W1 "$LAB_SERVER_IP" || return 1
    lab_wait_for 5 lab_exec client2 ping -n -c1 -W1 "$LAB_SERVER_IP2" || return 1
    lab_wait_for 5 lab_exec native ping -6 -n -c1 -W1 "$LAB_SERVER_IP6" || return 1
}

lab_up() {
    local nat1=${NAT1_TYPE:-cone} nat2=${NAT2_TYPE:-cone} t0
    while (($#)); do
        case $1 in
        --nat1) nat1=$2; shift 2 ;;
        --nat2) nat2=$2; shift 2 ;;
        *) lab_log "lab_up: unknown option $1"; return 1 ;;
        esac
    done
    [[ $nat1 =~ ^(cone|symmetric)$ && $nat2 =~ ^(cone|symmetric)$ ]] ||
        { lab_log "lab_up: NAT type must be cone or symmetric"; return 1; }
    if ((EUID != 0)); then lab_log "lab_up: must run as root"; return 1; fi
    if ip netns list | grep -q "^${LAB_PREFIX}-"; then
        lab_log "lab_up: namespaces with prefix $LAB_PREFIX already exist"
        return 1
    fi
    if [[ -z $LAB_DIR ]]; then
        LAB_DIR=$(mktemp -d /tmp/shipworm-lab.XXXXXX) || return 1
    fi
    mkdir -p "$LAB_DIR" || return 1
    : >>"$LAB_DIR/pids"
    trap 'lab__on_exit $?' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    t0=$(lab_now)
    if ! lab__build "$nat1" "$nat2"; then
        lab_log "lab_up: building the topology failed"
        return 1
    fi
    lab_log "lab up in $(lab_since "$t0") s (prefix $LAB_PREFIX, nat1 $nat1, nat2 $nat2, dir $LAB_DIR)"
}

lab__on_exit() {
    (($1 != 0)) && LAB_KEEP=1  # a failed run keeps its logs
    lab_down
}

# Tear down: stop recorded processes (newest first), then delete the
# namespaces.  Safe to call any number of times, also after a partial lab_up,
# and from another shell given the same LAB_DIR and LAB_PREFIX.
lab_down() {
    [[ -n $LAB_DIR && -d $LAB_DIR ]] || return 0
    local -a recs
    local rec ns left
    [[ -f $LAB_DIR/pids ]] && mapfile -t recs < <(tac "$LAB_DIR/pids")
    for rec in "${recs[@]}"; do
        lab_stop "${rec%% *}"
    done
    if [[ -f $LAB_DIR/namespaces ]]; then
        while read -r ns; do
            left=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
            [[ -n $left ]] && lab_log "warning: processes still in $ns: $left(not ours to kill)"
            ip netns del "$ns" 2>/dev/null
            [[ -n $ns && -d /etc/netns/$ns ]] && rm -rf "/etc/netns/$ns"
        done <"$LAB_DIR/namespaces"
        rm -f "$LAB_DIR/namespaces"
    fi
    if [[ ${LAB_KEEP:-0} == 1 ]]; then
        lab_log "logs kept in $LAB_DIR"
    else
        rm -rf "$LAB_DIR"
    fi
}

# --------------------------------------------------------------------------
# Observations

# Does <node> have a UDP socket bound to <addr>:<port> (or the wildcard)?
lab_udp_bound() {
    lab_exec "$1" ss -Hnlu "sport = :$3" |
        awk -v a="$2:$3" -v p="$3" '$4 == a || $4 == "0.0.0.0:" p || $4 == "*:" p { f = 1 } END { exit !f }'
}

# Print the global Teredo address of <node>'s "teredo" interface.
lab_teredo_addr() {
    local a
    a=$(ip -n "$(lab_ns "$1")" -6 -o address show dev teredo scope global 2>/dev/null |
        awk '$4 ~ /^2001:0*:/ { sub("/.*", "", $4); print $4; exit }')
    [[ -n $a ]] && echo "$a"
}

# Wait up to <timeout_s> for the address and store it in variable <var>.
# (Polling here, not in a $(…) subshell, keeps a SIGTERM prompt.)
lab_wait_teredo_addr() {  # <node> <timeout_s> <var>
    lab_wait_for "$2" lab_teredo_addr "$1" || return 1
    printf -v "$3" '%s' "$(lab_teredo_addr "$1")"
}

# Full form of an IPv6 address: 8 groups of 4 lowercase hex digits.
lab_ipv6_expand() {
    local a=${1,,} head tail i
    local -a h=() t=() g=()
    if [[ $a == *::* ]]; then head=${a%%::*} tail=${a#*::}; else head=$a tail=; fi
    [[ -n $head ]] && IFS=: read -ra h <<<"$head"
    [[ -n $tail ]] && IFS=: read -ra t <<<"$tail"
    g=("${h[@]}")
    for ((i = ${#h[@]} + ${#t[@]}; i < 8; i++)); do g+=(0); done
    g+=("${t[@]}")
    ((${#g[@]} == 8)) || return 1
    for i in "${!g[@]}"; do g[i]=$(printf '%04x' "0x${g[i]}") || return 1; done
    local IFS=:
    echo "${g[*]}"
}

# RFC 4380 §4: prefix(32) server(32) flags(16) ~port(16) ~ipv4(32).
# Prints "server-ipv4 mapped-port mapped-ipv4 flags(hex)".
lab_teredo_decode() {
    local full
    full=$(lab_ipv6_expand "$1") || return 1
    local -a g
    IFS=: read -ra g <<<"$full"
    local s=$((0x${g[2]}${g[3]})) p=$((0xffff ^ 0x${g[5]})) m=$((0xffffffff ^ 0x${g[6]}${g[7]}))
    printf '%d.%d.%d.%d %d %d.%d.%d.%d %s\n' \
        $((s >> 24)) $((s >> 16 & 255)) $((s >> 8 & 255)) $((s & 255)) "$p" \
        $((m >> 24)) $((m >> 16 & 255)) $((m >> 8 & 255)) $((m & 255)) "${g[4]}"
}

# ping -6 from a node; needs every one of <count> echoes answered within
# 10 s (ping keeps sending until then).  Returns ping's status and leaves a
# one-line summary in LAB_PING_SUMMARY.  ping runs as a recorded background
# process and is waited for, so a SIGTERM to the script is handled at once.
lab_ping() {
    local from=$1 dst=$2 count=${3:-3} out=$LAB_DIR/ping.$RANDOM.log rc
    lab_spawn "$from" "$out" ping -6 -n -c "$count" -i 0.2 -w 10 "$dst"
    wait "$LAB_LAST_PID"
    rc=$?
    lab__forget "$LAB_LAST_PID"
    # shellcheck disable=SC2034  # read by the caller
    LAB_PING_SUMMARY=$(awk '/packets transmitted/ { s = $1 " sent, " $4 " received" }
        /^rtt|^round-trip/ { split($4, r, "/"); s = s ", rtt min/avg/max " r[1] "/" r[2] "/" r[3] " ms" }
        END { print s }' "$out")
    rm -f "$out"
    return "$rc"
}

# Send <bytes> of random data over TCP from <from> to <to-addr> (an address
# of node <to>), with lab/tcp_xfer.py at both ends: the SHA-256 the receiver
# computed must be the one of the file sent.  Both ends time out after 30 s
# of silence.  Leaves "N bytes in S s (R MiB/s), sha256 … at both ends" (or
# the reason it failed) in LAB_XFER_SUMMARY.
lab_tcp_transfer() {
    local from=$1 to=$2 addr=$3 bytes=$4 port=$((20000 + RANDOM % 10000))
    local tag=xfer.$from-$to.$RANDOM want got sent rx_pid rc
    head -c "$bytes" /dev/urandom >"$LAB_DIR/$tag.data"
    want=$(sha256sum "$LAB_DIR/$tag.data" | cut -d' ' -f1)
    lab_spawn "$to" "$LAB_DIR/$tag.recv.log" python3 "$LAB_ROOT/tcp_xfer.py" recv "$port"
    rx_pid=$LAB_LAST_PID
    if ! lab_wait_for 5 grep -q '^listening' "$LAB_DIR/$tag.recv.log"; then
        LAB_XFER_SUMMARY="receiver on $to did not start"
        lab_stop "$rx_pid"
        return 1
    fi
    lab_spawn "$from" "$LAB_DIR/$tag.send.log" python3 "$LAB_ROOT/tcp_xfer.py" send "$addr" "$port" "$LAB_DIR/$tag.data"
    wait "$LAB_LAST_PID"
    rc=$?
    lab__forget "$LAB_LAST_PID"
    lab_wait_for 5 lab__dead "$rx_pid"
    lab_stop "$rx_pid"
    rm -f "$LAB_DIR/$tag.data"
    # shellcheck disable=SC2034  # fields of the tool's result lines
    read -r _ sent _ secs < <(grep '^sent ' "$LAB_DIR/$tag.send.log")
    got=$(awk '/^received / { print $3 }' "$LAB_DIR/$tag.recv.log")
    if ((rc != 0)) || [[ -z ${sent:-} ]]; then
        LAB_XFER_SUMMARY="sender failed (rc $rc): $(tail -n 1 "$LAB_DIR/$tag.send.log")"
        return 1
    fi
    if [[ $got != "$want" ]]; then
        LAB_XFER_SUMMARY="sha256 mismatch: sent ${want:0:16}…, received ${got:-nothing}"
        return 1
    fi
    LAB_XFER_SUMMARY=$(awk -v n="$sent" -v s="$secs" -v h="$want" 'BEGIN {
        printf "%d bytes in %.2f s (%.1f MiB/s), sha256 %s… equal at both ends", n, s, n / 1048576 / (s > 0 ? s : 1e-9), substr(h, 1, 16) }')
    rm -f "$LAB_DIR/$tag".*.log
}

# Ask a shipworm client (by PID) for its status (SIGUSR1) and print the
# "stats:" and "data:" lines it logs in answer.
lab_client_status() {  # <pid> <log>
    local n
    n=$(grep -c ' data: ' "$2")
    kill -USR1 "$1" || return 1
    lab_wait_for 5 lab__more_lines "$2" ' data: ' "$n" || return 1
    grep -E ' (stats|data): ' "$2" | tail -n 2
}

lab__more_lines() { (($(grep -c -- "$2" "$1") > $3)); }

# A counter from one lab_client_status line: " <name>=N" drop counters, or
# " N <name>," totals such as "delivered"; 0 when absent.
lab_status_count() {  # <lines> <name>
    local v
    v=$(grep -o -E "( $2=[0-9]+| [0-9]+ $2,)" <<<"$1" | head -n 1 | grep -o -E '[0-9]+')
    echo "${v:-0}"
}

# --------------------------------------------------------------------------
# Daemons

lab_start_server() {
    local impl=$1 log=$LAB_DIR/server-$1.log
    case $impl in
    miredo)
        cat >"$LAB_DIR/miredo-server.conf" <<EOF
ServerBindAddress $LAB_SERVER_IP
ServerBindAddress2 $LAB_SERVER_IP2
EOF
        # -p: the default /var/run PID file is lockf()ed and shared by every
        # namespace.  The worker drops to the Debian user "miredo".
        lab_spawn server "$log" miredo-server -f \
            -c "$LAB_DIR/miredo-server.conf" -p "$LAB_DIR/miredo-server.pid"
        ;;
    shipworm)
        local bin
        bin=$(lab__shipworm_bin) || return 1
        lab_spawn server "$log" "$bin" server "$LAB_SERVER_IP" \
            --status-socket "$LAB_DIR/status-server.sock"
        ;;
    *) lab_log "lab_start_server: unknown implementation '$impl'"; return 1 ;;
    esac
    LAB_SERVER_PID=$LAB_LAST_PID
    if ! lab_wait_for 5 lab__server_ready "$LAB_SERVER_PID"; then
        lab_log "server ($impl) did not bind UDP 3544 on both addresses within 5 s; log:"
    elif lab__dead "$LAB_SERVER_PID"; then
        lab_log "server ($impl) exited before binding UDP 3544 on both addresses; log:"
    else
        return 0
    fi
    sed 's/^/    /' "$log" >&2
    return 1
}

lab__server_ready() {  # <pid>: bound on both addresses, or dead (checked after)
    ! lab__alive "$1" && return 0
    lab_udp_bound server "$LAB_SERVER_IP" 3544 && lab_udp_bound server "$LAB_SERVER_IP2" 3544
}

lab__shipworm_bin() {
    local bin=${SHIPWORM_BIN:-${CARGO_TARGET_DIR:-$LAB_REPO/target}/release/shipworm}
    [[ -x $bin ]] || { lab_log "no shipworm binary at $bin"; return 1; }
    echo "$bin"
}

# Shipworm's client in <client>, against the lab's server unless the options
# say otherwise; logs at debug level to $LAB_DIR/shipworm-<client>.log.
lab_start_shipworm_client() {
    local node=$1 bin
    shift
    bin=$(lab__shipworm_bin) || return 1
    lab_spawn "$node" "$LAB_DIR/shipworm-$node.log" "$bin" client \
        --server "$LAB_SERVER_IP" --log-level debug \
        --status-socket "$LAB_DIR/status-$node.sock" "$@"
}

lab_start_miredo_client() {
    local node=$1 server=${2:-$LAB_SERVER_IP}
    cat >"$LAB_DIR/miredo-$node.conf" <<EOF
RelayType client
InterfaceName teredo
ServerAddress $server
EOF
    lab_spawn "$node" "$LAB_DIR/miredo-$node.log" miredo -f \
        -c "$LAB_DIR/miredo-$node.conf" -p "$LAB_DIR/miredo-$node.pid"
}

lab_start_miredo_relay() {
    cat >"$LAB_DIR/miredo-relay.conf" <<EOF
RelayType ${RELAY_TYPE:-cone}
InterfaceName teredo
EOF
    lab_spawn relay "$LAB_DIR/miredo-relay.log" miredo -f \
        -c "$LAB_DIR/miredo-relay.conf" -p "$LAB_DIR/miredo-relay.pid"
    # shellcheck disable=SC2034  # API for the caller (benchmarks stop it)
    LAB_RELAY_PID=$LAB_LAST_PID
    if ! lab_wait_for 5 lab__relay_routes; then
        lab_log "relay did not route 2001::/32 to its tunnel; log:"
        sed 's/^/    /' "$LAB_DIR/miredo-relay.log" >&2
        return 1
    fi
}

# Shipworm's relay in the relay node, tunnel "teredo" (logs at debug level, or
# $LAB_RELAY_LOG_LEVEL, to $LAB_DIR/shipworm-relay.log); like lab_start_miredo_relay, it returns once
# 2001::/32 is routed to the tunnel.
lab_start_shipworm_relay() {
    local bin log=$LAB_DIR/shipworm-relay.log
    bin=$(lab__shipworm_bin) || return 1
    lab_spawn relay "$log" "$bin" relay --bind "$LAB_RELAY_IP" --type "${RELAY_TYPE:-cone}" \
        --status-socket "$LAB_DIR/status-relay.sock" \
        --log-level "${LAB_RELAY_LOG_LEVEL:-debug}" "$@"
    # shellcheck disable=SC2034  # API for the caller
    LAB_RELAY_PID=$LAB_LAST_PID
    if ! lab_wait_for 5 lab__relay_routes; then
        lab_log "shipworm relay did not route 2001::/32 to its tunnel; log:"
        sed 's/^/    /' "$log" >&2
        return 1
    fi
}

lab__relay_routes() { [[ -n $(lab_exec relay ip -6 route show 2001::/32 dev teredo 2>/dev/null) ]]; }

# Capture with dumpcap; returns once the capture is running (dumpcap prints
# "File:" after it has opened the interface and set the filter).  Stop it
# with lab_stop "$pid" (SIGTERM flushes the file).
lab_capture_start() {
    local node=$1 iface=$2 file=$3 filter=${4:-udp port 3544}
    lab_spawn "$node" "$file.log" dumpcap -i "$iface" -f "$filter" -w "$file"
    if ! lab_wait_for 10 grep -q '^File:' "$file.log"; then
        lab_log "dumpcap did not start; log:"
        sed 's/^/    /' "$file.log" >&2
        return 1
    fi
}

# Number of packets a running lab_capture_start capture has written so far
# (dumpcap's live "\rPackets: N" counter).  dumpcap hands packets over in
# blocks, so wait for this before lab_stop, or the last ones are lost.
lab_capture_count() {
    tr '\r' '\n' <"$1.log" | awk '/^Packets: / { n = $2 } END { print n + 0 }'
}

lab__capture_has() { (($(lab_capture_count "$1") >= $2)); }

lab_capture_wait() {  # <file> <count> <timeout_s>
    lab_wait_for "$3" lab__capture_has "$1" "$2"
}

# --------------------------------------------------------------------------
# Test reporting: "PASS <test>[<impl>]: <msg>" lines, one exit status.

lab_test_begin() {
    LAB_TEST=$1
    LAB_FAILED=0
    LAB_PASSED=0
    LAB_T0=$(lab_now)
}

lab_pass() {
    LAB_PASSED=$((LAB_PASSED + 1))
    echo "PASS ${LAB_TEST}[${SERVER_IMPL:-miredo}]: $*"
}

lab_fail() {
    LAB_FAILED=$((LAB_FAILED + 1))
    echo "FAIL ${LAB_TEST}[${SERVER_IMPL:-miredo}]: $*"
}

# Run a step the rest of the test depends on; on failure report and exit.
lab_require() {
    local what=$1
    shift
    "$@" && return 0
    lab_fail "$what"
    lab_finish
}

# Check helper: lab_check <description> <expected> <actual>
lab_check() {
    if [[ $2 == "$3" ]]; then lab_pass "$1 = $3"; else lab_fail "$1: expected '$2', got '$3'"; fi
}

# Print the logs of the run (on failure) and exit with the test's status.
lab_finish() {
    local f
    if ((LAB_FAILED > 0)) && [[ -n $LAB_DIR ]]; then
        for f in "$LAB_DIR"/*.log; do
            [[ -s $f ]] || continue
            echo "---- ${f##*/} (last 20 lines)"
            tail -n 20 "$f"
        done
    fi
    echo "${LAB_TEST}[${SERVER_IMPL:-miredo}]: $LAB_PASSED passed, $LAB_FAILED failed in $(lab_since "$LAB_T0") s"
    ((LAB_FAILED == 0)) && ((LAB_PASSED > 0))
    exit
}
