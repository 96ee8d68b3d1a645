#!/usr/bin/env bash
# End-to-end checks of configuration files, `check-config`, the pid file,
# `--daemon` (and its readiness report) and SIGHUP reloads of the server,
# the client and the relay, inside
# throw-away network namespaces (root required for those; the
# `check-config` checks run anyway).
#
# Usage: linux_glue/tests/daemon_cli.sh [path/to/shipworm]
# Without a path it builds the debug binary with cargo (honouring
# CARGO_TARGET_DIR). Exit status 0 when every check passed (or skipped).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
glue_binary "$@"

glue_namespaces swdaemon peer

# check NAME WANT_STATUS WANT_OUTPUT_REGEX -- command...: run to completion;
# stdout and stderr together must be one line matching the regex.
check() {
    local name=$1 want=$2 regex=$3
    shift 4
    local out status
    out=$("$@" 2>&1)
    status=$?
    if [ "$status" -eq "$want" ] && [[ "$out" =~ $regex ]] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ]; then
        pass "$name"
    else
        fail "$name: status $status (want $want), output: $out"
    fi
}

# qualified_twice: up to 10 s for a second "qualified" line in $clog.
qualified_twice() {
    for _ in $(seq 100); do
        [ "$(grep -c "info: qualified in" "$clog")" -ge 2 ] && return 0
        sleep 0.1
    done
    return 1
}

# stops PID: SIGTERM, then its exit status (from `wait`: our child only).
stops() {
    kill -TERM "$1"
    wait "$1"
}

# --- check-config (no root, no network, no DNS) ---------------------------
# Debian's files as they ship (miredo 1.2.6): the server name is kept as a
# name, not resolved, so this passes off-line.
printf '# Please refer to the miredo.conf(5) man page for details.\nInterfaceName\tteredo\n\n# Pick a Teredo server:\n#ServerAddress\tteredo.ipv6.microsoft.com\nServerAddress\tteredo-debian.remlab.net\n\n# Some firewall/NAT setups require a specific UDP port number:\n#BindPort\t3545\n' >"$tmp/miredo.conf"
printf '# Please refer to the miredo-server.conf(5) manpage for details.\n\n# Server primary IPv4 address.\n# Miredo will open UDP port 3544 on this IPv4 address and the next one.\nServerBindAddress 192.0.2.221\n' >"$tmp/miredo-server.conf"
# As root, in a namespace with no network at all.
offline=()
[ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && offline=(unshare -n)
check "check-config miredo.conf, off-line" 0 \
    "^configuration OK: client of server teredo-debian\.remlab\.net, interface teredo, UDP 0\.0\.0\.0:0$" \
    -- "${offline[@]}" "$bin" check-config "$tmp/miredo.conf"
check "check-config miredo-server.conf" 0 \
    "^configuration OK: server on 192\.0\.2\.221 and 192\.0\.2\.222, prefix 2001::/32, MTU 1280$" \
    -- "$bin" check-config "$tmp/miredo-server.conf"
printf 'RelayType cone\nBindPort 3545\n\nFoo bar\n' >"$tmp/bad.conf"
check "check-config names file and line" 2 "^shipworm: $tmp/bad\.conf:4: unknown directive \"Foo\"$" \
    -- "$bin" check-config "$tmp/bad.conf"
printf 'ServerAddress 192.0.2.1\nserveraddress 192.0.2.2\n' >"$tmp/dup.conf"
check "duplicate directive" 2 "dup\.conf:2: duplicate directive \"serveraddress\" \(first on line 1\)$" \
    -- "$bin" -c "$tmp/dup.conf"
check "missing file" 2 "^shipworm: cannot read $tmp/none\.conf: No such file" \
    -- "$bin" check-config "$tmp/none.conf"

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
    echo "SKIP: the rest of daemon_cli.sh needs root and iproute2"
    [ "$failed" -eq 0 ] && echo "all daemon_cli checks passed"
    exit "$failed"
fi

# The server's namespace and a peer's (the client), joined by a veth pair.
setup() {
    ip netns add "$ns" &&
        ip netns add "$peer" &&
        in_ns ip link set lo up &&
        in_peer ip link set lo up &&
        in_ns ip link add sw0 type veth peer name sw1 netns "$peer" &&
        in_ns ip addr add 198.51.100.1/24 dev sw0 &&
        in_ns ip addr add 198.51.100.2/24 dev sw0 &&
        in_ns ip addr add 198.51.100.3/24 dev sw0 &&
        in_ns ip link set sw0 up &&
        in_peer ip addr add 198.51.100.50/24 dev sw1 &&
        in_peer ip link set sw1 up
}
setup || { echo "FAIL namespace setup"; exit 1; }

# --- pid file and --daemon -------------------------------------------------
printf 'ServerBindAddress 198.51.100.1\n' >"$tmp/server.conf"
pidf="$tmp/server.pid"
check "--daemon returns once up" 0 "^$" -- in_ns "$bin" server -c "$tmp/server.conf" --daemon --pidfile "$pidf"
# No sleep: the parent waited for the daemon's readiness report.
in_ns ss -Hlun | grep -q "198\.51\.100\.1:3544 " && pass "--daemon exits 0 only after the socket is bound" \
    || fail "no socket right after --daemon: $(in_ns ss -Hlun)"
check "--daemon start-up error reaches the terminal" 2 \
    "^shipworm: address 198\.51\.100\.1:3544 is in use$" \
    -- in_ns "$bin" server -c "$tmp/server.conf" --daemon --pidfile "$tmp/other.pid"
if wait_for "$pidf" "^[0-9]+$" && daemon=$(cat "$pidf") && kill -0 "$daemon" 2>/dev/null; then
    pass "daemon writes its pid file"
else
    fail "daemon pid file: $(cat "$pidf" 2>&1)"
    daemon=""
fi
check "second instance refused" 2 \
    "^shipworm: $pidf is locked by another shipworm \(pid $daemon\): it is already running$" \
    -- in_ns "$bin" server 198.51.100.3 --secondary 198.51.100.2 --pidfile "$pidf"
if [ -n "$daemon" ]; then
    kill -TERM "$daemon"
    for _ in $(seq 50); do
        kill -0 "$daemon" 2>/dev/null || break
        sleep 0.1
    done
    # Removed, or emptied when the daemon no longer may write the directory.
    if ! kill -0 "$daemon" 2>/dev/null && [ ! -s "$pidf" ]; then
        pass "SIGTERM stops the daemon and removes or empties the pid file"
    else
        fail "daemon still running or pid file left"
        kill -KILL "$daemon" 2>/dev/null
    fi
fi

# --- server reload ---------------------------------------------------------
conf="$tmp/reload-server.conf"
log="$tmp/server.log"
printf 'ServerBindAddress 198.51.100.1\nLogLevel info\n' >"$conf"
ip netns exec "$ns" "$bin" server -c "$conf" --pidfile "$tmp/fg.pid" 2>"$log" &
server=$!
pids+=("$server")
wait_for "$log" "info: Teredo server on" || fail "server start: $(cat "$log")"
grep -qx "$server" "$tmp/fg.pid" && pass "foreground pid file" || fail "foreground pid file"

printf 'ServerBindAddress 198.51.100.1\nLogLevel debug\nInterfaceMTU 1400\n' >"$conf"
kill -HUP "$server"
if wait_for "$log" "info: reload: log level now debug" &&
    wait_for "$log" "info: reload: now prefix 2001::/32, MTU 1400, forwarding payloads up to 88 bytes" &&
    kill -0 "$server"; then
    pass "SIGHUP: log level and MTU applied at once"
else
    fail "server reload: $(cat "$log")"
fi
printf 'ServerBindAddress 198.51.100.1\nBogus 1\n' >"$conf"
kill -HUP "$server"
if wait_for "$log" "error: reload failed, keeping the running configuration: $conf:2: unknown directive \"Bogus\"" &&
    kill -0 "$server"; then
    pass "SIGHUP with a bad file keeps running"
else
    fail "bad reload: $(cat "$log")"
fi
printf 'ServerBindAddress 198.51.100.3\nServerBindAddress2 198.51.100.2\nLogLevel debug\nInterfaceMTU 1400\n' >"$conf"
kill -HUP "$server"
wait_for "$log" "warn: reload: server addresses 198\.51\.100\.3 and 198\.51\.100\.2 take effect at the next restart" &&
    wait_for "$log" "info: reload: server settings unchanged" &&
    pass "SIGHUP: new addresses wait for a restart" || fail "address reload: $(cat "$log")"
stops "$server"
status=$?
[ "$status" -eq 0 ] && [ ! -s "$tmp/fg.pid" ] && pass "SIGTERM after reloads exits 0" \
    || fail "server exit $status"

# --- client reload ---------------------------------------------------------
# A server in its namespace, the client in the peer's: no NAT in between.
ip netns exec "$ns" "$bin" server 198.51.100.1 2>"$tmp/server2.log" &
pids+=($!)
wait_for "$tmp/server2.log" "info: Teredo server on" || fail "server 2: $(cat "$tmp/server2.log")"
cconf="$tmp/client.conf"
clog="$tmp/client.log"
printf 'ServerAddress 198.51.100.1\nInterfaceName swtest0\nBindPort 3545\n' >"$cconf"
ip netns exec "$peer" "$bin" -c "$cconf" 2>"$clog" &
client=$!
pids+=("$client")
if wait_for "$clog" "info: qualified in .* with server 198\.51\.100\.1" 100; then
    pass "client qualifies from a configuration file"
else
    fail "client start: $(cat "$clog")"
fi
printf 'ServerAddress 198.51.100.1\nInterfaceName swtest0\nBindPort 3545\nLogLevel debug\n' >"$cconf"
kill -HUP "$client"
wait_for "$clog" "info: reload: server and service port unchanged; address and peers kept" &&
    ! grep -q "qualifying again" "$clog" &&
    pass "client SIGHUP without server or port change keeps its address" \
    || fail "client reload 1: $(cat "$clog")"
printf 'ServerAddress 198.51.100.1\nInterfaceName other0\nBindPort 3546\n' >"$cconf"
kill -HUP "$client"
if wait_for "$clog" "info: reload: qualifying again with server 198\.51\.100\.1 from UDP port 3546" &&
    wait_for "$clog" "warn: reload: InterfaceName and Hook take effect at the next restart" &&
    qualified_twice; then
    pass "client SIGHUP with a new port rebinds and re-qualifies"
else
    fail "client reload 2: $(cat "$clog")"
fi
in_peer ss -Hlun | grep -q ":3546 " && pass "client bound the new port" || fail "ports: $(in_peer ss -Hlun)"
stops "$client"
status=$?
[ "$status" -eq 0 ] && pass "client SIGTERM after reloads exits 0" || fail "client exit $status: $(cat "$clog")"

# A SIGHUP while the server name does not resolve yet is not lost.
dconf="$tmp/dns.conf"
dlog="$tmp/dns.log"
printf 'ServerAddress unresolvable.invalid\nInterfaceName swtest1\nBindPort 3547\n' >"$dconf"
ip netns exec "$peer" "$bin" -c "$dconf" 2>"$dlog" &
dclient=$!
pids+=("$dclient")
wait_for "$dlog" "warn: cannot resolve server unresolvable\.invalid: .*; retrying in" 100 ||
    fail "client DNS wait: $(cat "$dlog")"
printf 'ServerAddress 198.51.100.1\nInterfaceName swtest1\nBindPort 3548\n' >"$dconf"
kill -HUP "$dclient"
if wait_for "$dlog" "info: reload: now on UDP 0\.0\.0\.0:3548" &&
    wait_for "$dlog" "info: qualified in .* with server 198\.51\.100\.1" 100; then
    pass "client SIGHUP while waiting for DNS applies the new server at once"
else
    fail "client DNS reload: $(cat "$dlog")"
fi
stops "$dclient"

# --- relay reload ----------------------------------------------------------
in_ns sysctl -qw net.ipv6.conf.all.forwarding=1
# A global address for the ICMPv6 errors (nodad: usable at once).
in_ns ip addr add 2001:db8::1/64 dev sw0 nodad
rconf="$tmp/relay.conf"
rlog="$tmp/relay.log"
printf 'RelayType relay\nInterfaceName swrelay0\nBindPort 3545\n' >"$rconf"
ip netns exec "$ns" "$bin" -c "$rconf" 2>"$rlog" &
relay=$!
pids+=("$relay")
wait_for "$rlog" "info: Teredo relay \(cone\) on UDP 0\.0\.0\.0:3545, .*ICMPv6 errors from 2001:db8::1$" &&
    pass "relay picks the host's global address for ICMPv6 errors" || fail "relay start: $(cat "$rlog")"
printf 'RelayType relay\nInterfaceName swrelay0\nBindPort 3546\n' >"$rconf"
kill -HUP "$relay"
if wait_for "$rlog" "info: reload: now on UDP 0\.0\.0\.0:3546; peers kept" &&
    in_ns ss -Hlun | grep -q ":3546 " && ! in_ns ss -Hlun | grep -q ":3545 "; then
    pass "relay SIGHUP rebinds a new port"
else
    fail "relay reload port: $(cat "$rlog"; in_ns ss -Hlun)"
fi
printf 'RelayType restricted\nInterfaceName swrelay0\nBindPort 3546\nInterfaceMTU 1400\nRelayIcmpSource 2001:db8::2\n' >"$rconf"
kill -HUP "$relay"
if wait_for "$rlog" "warn: reload: InterfaceMTU changed; it needs a restart" &&
    wait_for "$rlog" "info: reload: relay type now restricted, ICMPv6 errors from 2001:db8::2; peers reset" &&
    kill -0 "$relay"; then
    pass "relay SIGHUP: new type and ICMPv6 source, MTU waits for a restart"
else
    fail "relay reload type: $(cat "$rlog")"
fi
stops "$relay"
status=$?
[ "$status" -eq 0 ] && pass "relay SIGTERM after reloads exits 0" || fail "relay exit $status: $(cat "$rlog")"

[ "$failed" -eq 0 ] && echo "all daemon_cli checks passed"
exit "$failed"
