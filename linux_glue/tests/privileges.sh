#!/usr/bin/env bash
# End-to-end checks of the privilege drop and the status socket of the three
# roles, inside a throw-away network namespace (root required; skipped
# otherwise): each role is started as root, then /proc/<pid>/status must show
# the unprivileged user and the expected capability sets, and
# `shipworm status --json` must answer with the role's fields.
#
# Usage: linux_glue/tests/privileges.sh [path/to/shipworm]
# Without a path it builds the debug binary with cargo (honouring
# CARGO_TARGET_DIR). Exit status 0 when every check passed (or skipped).
set -uo pipefail

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
    echo "SKIP: privileges.sh needs root and iproute2 (network namespaces)"
    exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
glue_binary "$@"

glue_namespaces swpriv

# start LOG args...: a role in the namespace, in the background; $last is
# its PID (`ip netns exec` execs it).
start() {
    local log=$1
    shift
    ip netns exec "$ns" "$bin" "$@" 2>"$log" &
    pids+=($!)
    last=$!
}

# field PID NAME: a line of /proc/PID/status, whitespace squeezed.
field() { awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"; }

# creds NAME PID WANT_CAPS: user and group IDs are nobody's, every capability
# set (effective, permitted, bounding) is WANT_CAPS, inheritable and ambient
# are WANT_INH, NoNewPrivs is set.
creds() {
    local name=$1 pid=$2 caps=$3 inh=${4:-0000000000000000}
    local uid gid
    uid=$(id -u nobody)
    gid=$(id -g nobody)
    local got want
    got="$(field "$pid" Uid) / $(field "$pid" Gid) / $(field "$pid" Groups) / \
eff $(field "$pid" CapEff) prm $(field "$pid" CapPrm) bnd $(field "$pid" CapBnd) \
inh $(field "$pid" CapInh) amb $(field "$pid" CapAmb) / nnp $(field "$pid" NoNewPrivs)"
    want="$uid $uid $uid $uid / $gid $gid $gid $gid / $gid / \
eff $caps prm $caps bnd $caps inh $inh amb $inh / nnp 1"
    if [ "$got" = "$want" ]; then
        pass "$name runs as nobody with capabilities $caps"
    else
        fail "$name credentials: got '$got', want '$want'"
    fi
}

# status NAME SOCKET REGEX...: `shipworm status --json` matches every REGEX.
status() {
    local name=$1 sock=$2
    shift 2
    local doc
    doc=$("$bin" status --json --socket "$sock") || { fail "$name status: no answer"; return; }
    for re in "$@"; do
        [[ "$doc" =~ $re ]] || { fail "$name status: '$re' not in $doc"; return; }
    done
    pass "$name status --json"
}

ip netns add "$ns" &&
    in_ns ip link set lo up &&
    in_ns ip link add sw0 type veth peer name sw1 &&
    in_ns ip addr add 198.51.100.1/24 dev sw0 &&
    in_ns ip addr add 198.51.100.2/24 dev sw0 &&
    in_ns ip addr add 2001:db8:1::1/64 dev sw0 nodad &&
    in_ns ip link set sw0 up &&
    in_ns ip link set sw1 up &&
    in_ns sysctl -qw net.ipv6.conf.all.forwarding=1 ||
    { echo "FAIL namespace setup"; exit 1; }

# --- refusals --------------------------------------------------------------
out=$(in_ns "$bin" server 198.51.100.1 --user root 2>&1)
[ $? -eq 2 ] && [[ "$out" == *"refusing to run as 'root'"* ]] \
    && pass "--user root refused" || fail "--user root: $out"
out=$(in_ns "$bin" server 198.51.100.1 --user no-such-user-sw 2>&1)
[ $? -eq 2 ] && [[ "$out" == *"no user 'no-such-user-sw'"* ]] \
    && pass "unknown user exits 2" || fail "unknown user: $out"
out=$("$bin" status --socket "$tmp/none.sock" 2>&1)
[ $? -eq 1 ] && [[ "$out" == *"cannot query"* ]] \
    && pass "status without a daemon exits 1" || fail "status without daemon: $out"

# --- server: no capabilities ------------------------------------------------
start "$tmp/server.log" server 198.51.100.1 --status-socket "$tmp/server.sock"
server=$last
if wait_for "$tmp/server.log" "running as user nobody"; then
    creds server "$server" 0000000000000000
    [ "$(stat -c '%U %a' "$tmp/server.sock")" = "nobody 600" ] \
        && pass "status socket owned by nobody, mode 600" \
        || fail "socket owner: $(stat -c '%U %a' "$tmp/server.sock")"
    in_ns bash -c 'printf junk >/dev/udp/198.51.100.2/3544'
    sleep 0.2
    status server "$tmp/server.sock" '"role":"server"' '"version":1' \
        '"addresses":\["198\.51\.100\.1:3544","198\.51\.100\.2:3544"\]' \
        '"sockets":\{"received":1,' '"dropped":1'
    text=$("$bin" status --socket "$tmp/server.sock")
    [[ "$text" == *"role: server"* && "$text" == *"  received: 1"* ]] \
        && pass "server status as text" || fail "status text: $text"
else
    fail "server start: $(cat "$tmp/server.log")"
fi
kill -TERM "$server"
wait "$server" && pass "server stops with status 0 as nobody" || fail "server exit: $(cat "$tmp/server.log")"

# --- relay: no capabilities, the route goes with the tunnel ----------------
start "$tmp/relay.log" relay --bind 198.51.100.1 --interface swr0 --status-socket "$tmp/relay.sock"
relay=$last
if wait_for "$tmp/relay.log" "running as user nobody"; then
    creds relay "$relay" 0000000000000000
    status relay "$tmp/relay.sock" '"role":"relay"' '"interface":"swr0"' \
        '"peers":\{"count":0,"capacity":[0-9]+\}' '"from_tunnel":\{"packets":[0-9]+,"bytes":[0-9]+\}'
    in_ns ip -6 route show dev swr0 | grep -q "^2001::/32" \
        && pass "relay routes 2001::/32" || fail "relay route missing"
else
    fail "relay start: $(cat "$tmp/relay.log")"
fi
kill -TERM "$relay"
wait "$relay"
st=$?
if [ "$st" -eq 0 ] && ! in_ns ip -6 route show | grep -q "^2001::/32" && ! grep -q "error:" "$tmp/relay.log"; then
    pass "relay exits 0; route removed with the tunnel"
else
    fail "relay exit $st, routes: $(in_ns ip -6 route show), log: $(cat "$tmp/relay.log")"
fi

# --- client: CAP_NET_ADMIN only --------------------------------------------
start "$tmp/client.log" client --server 198.51.100.1 --interface swc0 \
    --status-socket "$tmp/client.sock"
client=$last
if wait_for "$tmp/client.log" "running as user nobody"; then
    creds client "$client" 0000000000001000
    status client "$tmp/client.sock" '"role":"client"' '"state":"(qualifying|qualified|offline)"' \
        '"interface":"swc0"' '"servers":\["198\.51\.100\.1"\]'
else
    fail "client start: $(cat "$tmp/client.log")"
fi
kill -TERM "$client"
wait "$client" && pass "client exits 0" || fail "client exit: $(cat "$tmp/client.log")"

# --- client with a hook and --user: CAP_NET_ADMIN passed to the hook -------
hook="$tmp/hook.sh"
printf '#!/bin/sh\ngrep -E "^(Uid|CapEff|CapAmb):" /proc/self/status >>%s/hook.out\n' "$tmp" >"$hook"
chmod 755 "$hook"
touch "$tmp/hook.out"
chmod 666 "$tmp/hook.out"
start "$tmp/hook.log" client --server 198.51.100.1 --interface swh0 --hook "$hook" \
    --user nobody --status-socket "$tmp/hook.sock"
hooked=$last
if wait_for "$tmp/hook.log" "running as user nobody"; then
    creds "client --hook" "$hooked" 0000000000001000 0000000000001000
else
    fail "client --hook start: $(cat "$tmp/hook.log")"
fi
kill -TERM "$hooked"
wait "$hooked"
if grep -q "CapAmb:.*0000000000001000" "$tmp/hook.out" && grep -q "CapEff:.*0000000000001000" "$tmp/hook.out"; then
    pass "hook runs with CAP_NET_ADMIN effective"
else
    fail "hook credentials: $(cat "$tmp/hook.out") log: $(cat "$tmp/hook.log")"
fi

[ "$failed" -eq 0 ] && echo "all privileges checks passed"
exit "$failed"
