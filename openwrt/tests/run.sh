#!/usr/bin/env bash
# Tests of the OpenWrt package that run on any Linux (no OpenWrt needed):
# netifd's, procd's and UCI's shell functions are stand-ins from stubs/
# that record every call, and each case compares the recorded calls with
# the exact expected ones.
#
#   openwrt/tests/run.sh
#
# The .ipk case needs a mipsel build of shipworm: $SHIPWORM_MIPSEL_BIN, else
# $CARGO_TARGET_DIR (default ./target)/dist/mipsel-unknown-linux-musl/
# shipworm from `cross/build.sh build mipsel-unknown-linux-musl`. Without
# one it is skipped (reported, not failed) unless SHIPWORM_BUILD_MIPSEL=1,
# which runs that cross build first (minutes).
set -uo pipefail

TESTS=$(cd "$(dirname "$0")" && pwd)
OPENWRT=$(dirname "$TESTS")
ROOT=$(dirname "$OPENWRT")
FILES=$OPENWRT/shipworm/files
export STUBS=$TESTS/stubs
# dash is close to OpenWrt's busybox ash (POSIX, no bashisms).
SH=$(command -v dash || echo sh)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export CALLS=$TMP/calls

PASSED=0
FAILED=0
SKIPPED=0
pass() {
	PASSED=$((PASSED + 1))
	echo "ok: $1"
}
fail() {
	FAILED=$((FAILED + 1))
	echo "FAIL: $1"
	[ $# -lt 2 ] || echo "$2" | sed 's/^/    /'
}
skip() {
	SKIPPED=$((SKIPPED + 1))
	echo "skipped: $1"
}

# expect NAME: compares the recorded calls with the expected ones on stdin.
expect() {
	local diff
	if diff=$(diff -u - "$CALLS" 2>&1); then
		pass "$1"
	else
		fail "$1" "$diff"
	fi
	: >"$CALLS"
}

# --- netifd protocol handler (teredo.sh) -----------------------------------

# handler FUNCTION ARGS...: runs a proto_teredo_* function with the options
# from the CFG_* variables of the caller's environment; prints its status.
handler() {
	INCLUDE_ONLY=1 "$SH" -c '
		. "$STUBS/netifd/netifd-proto.sh"
		. "$0"
		"$@"
		echo "status $?" >>"$CALLS"
	' "$FILES/teredo.sh" "$@"
}

: >"$CALLS"
handler proto_teredo_init_config
expect "init_config declares the options" <<'X'
proto_config_add_string 'server'
proto_config_add_string 'server2'
proto_config_add_string 'fallback'
proto_config_add_int 'port'
proto_config_add_string 'bind'
proto_config_add_int 'mtu'
proto_config_add_int 'metric'
proto_config_add_boolean 'defaultroute'
proto_config_add_string 'zone'
proto_config_add_string 'log_level'
status 0
X

CFG_server=192.0.2.1 CFG_server2=192.0.2.9 CFG_fallback=teredo.example.net \
	CFG_port=3545 CFG_bind=198.51.100.7 CFG_zone=wan CFG_log_level=debug \
	handler proto_teredo_setup wan6t
expect "setup: every option on the command line" <<'X'
proto_add_host_dependency 'wan6t' '192.0.2.1'
proto_export 'INTERFACE=wan6t'
proto_export 'TEREDO_DEFAULTROUTE=1'
proto_export 'TEREDO_METRIC=1029'
proto_export 'TEREDO_ZONE=wan'
proto_run_command 'wan6t' '/usr/sbin/shipworm' 'client' '--server' '192.0.2.1' '--server2' '192.0.2.9' '--fallback' 'teredo.example.net' '--bind' '198.51.100.7' '--port' '3545' '--log-level' 'debug' '--interface' 'teredo-wan6t' '--hook' '/lib/netifd/teredo.script'
status 0
X

CFG_server=teredo.example.net CFG_defaultroute=0 CFG_metric=10 CFG_mtu=1400 \
	handler proto_teredo_setup teredo_uplink
expect "setup: server name, long interface name, no default route" <<'X'
proto_add_host_dependency 'teredo_uplink' '0.0.0.0'
proto_export 'INTERFACE=teredo_uplink'
proto_export 'TEREDO_DEFAULTROUTE=0'
proto_export 'TEREDO_METRIC=10'
proto_export 'TEREDO_MTU=1400'
proto_run_command 'teredo_uplink' '/usr/sbin/shipworm' 'client' '--server' 'teredo.example.net' '--interface' 'teredo-teredo_u' '--hook' '/lib/netifd/teredo.script'
status 0
X

handler proto_teredo_setup wan6t
expect "setup: no server is an error that blocks restarts" <<'X'
proto_notify_error 'wan6t' 'MISSING_SERVER'
proto_block_restart 'wan6t'
status 1
X

CFG_server=192.0.2.1 CFG_mtu=1000 handler proto_teredo_setup wan6t
expect "setup: MTU below 1280 is an error" <<'X'
proto_notify_error 'wan6t' 'MTU_BELOW_1280'
proto_block_restart 'wan6t'
status 1
X

handler proto_teredo_teardown wan6t
expect "teardown stops the daemon" <<'X'
proto_kill_command 'wan6t'
status 0
X

# --- hook (teredo.script), run as shipworm runs it --------------------------

mkdir -p "$TMP/sys/teredo-wan6t"
# hook VAR=VALUE...: runs teredo.script with only this environment plus the
# variables teredo.sh exports by default; records its exit status.
hook() {
	env -i PATH="$PATH" STUBS="$STUBS" CALLS="$CALLS" \
		NETIFD_MAIN_DIR="$STUBS/netifd" SYSFS_NET="$TMP/sys" \
		INTERFACE=wan6t TEREDO_DEFAULTROUTE=1 TEREDO_METRIC=1029 \
		IFACE=teredo-wan6t IFINDEX=7 "$@" "$SH" "$FILES/teredo.script"
	echo "status $?" >>"$CALLS"
}
# Mapping 203.0.113.5:40000 behind server 192.0.2.1, cone (RFC 4380 §4).
A1=2001:0:c000:201:8000:63bf:34ff:8efa
# The same NAT after a new mapping: port 40001.
A2=2001:0:c000:201:8000:63be:34ff:8efa
LL_CONE=fe80::8000:5445:5245:444f
mtu_is() {
	local got
	got=$(cat "$TMP/sys/teredo-wan6t/mtu" 2>/dev/null)
	if [ "$got" = "$1" ]; then pass "$2: link MTU $1"; else fail "$2: link MTU is '$got', not $1"; fi
	rm -f "$TMP/sys/teredo-wan6t/mtu"
}

hook STATE=up ADDRESS=$A1 LLADDRESS=$LL_CONE MTU=1280 TEREDO_ZONE=wan \
	OLD_STATE=down OLD_ADDRESS=:: OLD_LLADDRESS=fe80::ffff:ffff:ffff OLD_MTU=1280
expect "hook up: address, link-local, default route, zone" <<X
proto_init_update 'teredo-wan6t' '1'
proto_add_ipv6_address '$A1' '32'
proto_add_ipv6_address '$LL_CONE' '64' '' '' '1'
proto_add_ipv6_route '::' '0' '' '1029'
proto_add_data
json_add_string 'zone' 'wan'
proto_close_data
proto_send_update 'wan6t'
status 0
X
mtu_is 1280 "hook up"

hook STATE=up ADDRESS=$A2 LLADDRESS=$LL_CONE MTU=1280 TEREDO_ZONE=wan \
	OLD_STATE=up OLD_ADDRESS=$A1 OLD_LLADDRESS=$LL_CONE OLD_MTU=1280
expect "hook up after a mapping change: only the new address" <<X
proto_init_update 'teredo-wan6t' '1'
proto_add_ipv6_address '$A2' '32'
proto_add_ipv6_address '$LL_CONE' '64' '' '' '1'
proto_add_ipv6_route '::' '0' '' '1029'
proto_add_data
json_add_string 'zone' 'wan'
proto_close_data
proto_send_update 'wan6t'
status 0
X
mtu_is 1280 "hook mapping change"

hook STATE=up ADDRESS=$A1 LLADDRESS=fe80::ffff:ffff:ffff MTU=1280 \
	TEREDO_DEFAULTROUTE=0 TEREDO_MTU=1400 \
	OLD_STATE=down OLD_ADDRESS=:: OLD_LLADDRESS=fe80::ffff:ffff:ffff OLD_MTU=1280
expect "hook up: no default route, no zone" <<X
proto_init_update 'teredo-wan6t' '1'
proto_add_ipv6_address '$A1' '32'
proto_add_ipv6_address 'fe80::ffff:ffff:ffff' '64' '' '' '1'
proto_send_update 'wan6t'
status 0
X
mtu_is 1400 "hook up with the mtu option"

hook STATE=down ADDRESS=:: LLADDRESS=fe80::ffff:ffff:ffff MTU=1280 \
	OLD_STATE=up OLD_ADDRESS=$A2 OLD_LLADDRESS=$LL_CONE OLD_MTU=1280
expect "hook down (server lost): link down" <<'X'
proto_init_update 'teredo-wan6t' '0'
proto_send_update 'wan6t'
status 0
X

hook STATE=destroy ADDRESS=:: LLADDRESS=fe80::ffff:ffff:ffff MTU=1280 \
	OLD_STATE=down OLD_ADDRESS=:: OLD_LLADDRESS=fe80::ffff:ffff:ffff OLD_MTU=1280
expect "hook destroy: nothing more to tell netifd" <<'X'
status 0
X

hook STATE=bogus 2>/dev/null
expect "hook: unknown state fails" <<'X'
status 1
X

hook INTERFACE= STATE=up 2>/dev/null
expect "hook: outside netifd (no INTERFACE) fails" <<'X'
status 1
X

# --- the hook under a real shipworm client, in network namespaces ----------

# A shipworm server (192.0.2.1 and .2) and a client (192.0.2.100) in two
# namespaces; the client runs teredo.script with the stubs: qualification,
# then SIGTERM (down, destroy). Needs root, `ip netns` and a host build.
HOSTBIN=${SHIPWORM_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/shipworm}
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || [ ! -x "$HOSTBIN" ]; then
	skip "live hook: needs root, ip and a host binary at $HOSTBIN (cargo build -p shipworm, or SHIPWORM_BIN)"
else
	S=owt-srv-$$ C=owt-cli-$$
	ip netns add "$S" && ip netns add "$C"
	ip link add owt0 netns "$S" type veth peer name owt1 netns "$C"
	ip -n "$S" addr add 192.0.2.1/24 dev owt0
	ip -n "$S" addr add 192.0.2.2/24 dev owt0
	ip -n "$C" addr add 192.0.2.100/24 dev owt1
	for n in "$S" "$C"; do ip -n "$n" link set lo up; done
	ip -n "$S" link set owt0 up
	ip -n "$C" link set owt1 up
	ip -n "$C" route add default via 192.0.2.1
	# Own status sockets: the defaults in /var/run would outlive the test
	# (a role that dropped root cannot unlink them).
	ip netns exec "$S" "$HOSTBIN" server 192.0.2.1 --status-socket "$TMP/srv.sock" 2>"$TMP/srv.log" &
	SP=$!
	sleep 1
	ip netns exec "$C" env STUBS="$STUBS" CALLS="$CALLS" NETIFD_MAIN_DIR="$STUBS/netifd" \
		SYSFS_NET="$TMP/sys" INTERFACE=wan6t TEREDO_DEFAULTROUTE=1 TEREDO_METRIC=1029 \
		TEREDO_ZONE=wan "$HOSTBIN" client --server 192.0.2.1 --interface teredo-wan6t \
		--hook "$FILES/teredo.script" --status-socket "$TMP/cli.sock" 2>"$TMP/cli.log" &
	CP=$!
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		grep -q "hook (STATE=up)" "$TMP/cli.log" && break
		sleep 1
	done
	kill -TERM "$CP" "$SP" 2>/dev/null
	wait "$CP" "$SP"
	grep -q "hook (STATE=up)" "$TMP/cli.log" ||
		fail "live hook: the client never ran the up hook ($HOSTBIN)" "$(tail -5 "$TMP/cli.log" "$TMP/srv.log")"
	ip netns del "$S"
	ip netns del "$C"
	# The address's flag bits are random (RFC 4380 §5.2.1, RFC 5991).
	sed -i 's/2001:0:c000:201:[0-9a-f:]*/TEREDO-ADDRESS/' "$CALLS"
	expect "live hook: qualification, then SIGTERM" <<'X'
proto_init_update 'teredo-wan6t' '1'
proto_add_ipv6_address 'TEREDO-ADDRESS' '32'
proto_add_ipv6_address 'fe80::ffff:ffff:ffff' '64' '' '' '1'
proto_add_ipv6_route '::' '0' '' '1029'
proto_add_data
json_add_string 'zone' 'wan'
proto_close_data
proto_send_update 'wan6t'
proto_init_update 'teredo-wan6t' '0'
proto_send_update 'wan6t'
X
	mtu_is 1280 "live hook"
fi

# --- init script (relay and server services) -------------------------------

# init CONFIG-FILE FUNCTION: runs a function of shipworm.init with CONFIG
# as /etc/config/shipworm.
init() {
	mkdir -p "$TMP/uci"
	cp "$1" "$TMP/uci/shipworm"
	UCI_DIR=$TMP/uci "$SH" -c '. "$STUBS/rc.sh"; . "$0"; "$1"' "$FILES/shipworm.init" "$2"
}

init "$FILES/shipworm.config" start_service
expect "init: the default config starts nothing" </dev/null

init "$FILES/shipworm.config" service_triggers
expect "init: reload on config change" <<'X'
procd_add_reload_trigger 'shipworm'
X

cat >"$TMP/two.conf" <<'X'
config relay 'relay'
	option enabled '1'
	option bind '198.51.100.7'
	option interface 'teredo-relay'
	option prefix '2001::'
	option mtu '1400'
	option type 'restricted'

config server 'server'
	option enabled '1'
	option primary '192.0.2.1'
	option secondary '192.0.2.2'
	option max_forward_payload '100'
	option zone 'wan2'
	option log_level 'debug'

config server 'off'
	option enabled '0'
	option primary '203.0.113.1'

config server 'broken'
	option enabled '1'
X
init "$TMP/two.conf" start_service
expect "init: two enabled sections, two instances" <<'X'
procd_open_instance 'relay'
procd_set_param 'command' '/usr/sbin/shipworm' 'relay' '--bind' '198.51.100.7' '--interface' 'teredo-relay' '--prefix' '2001::' '--mtu' '1400' '--type' 'restricted'
procd_set_param 'respawn'
procd_set_param 'stdout' '1'
procd_set_param 'stderr' '1'
procd_open_data
json_add_array 'firewall'
json_add_object ''
json_add_string 'type' 'rule'
json_add_string 'name' 'shipworm-relay'
json_add_string 'family' 'ipv4'
json_add_string 'proto' 'udp'
json_add_string 'src' 'wan'
json_add_string 'dest_port' '3544'
json_add_string 'target' 'ACCEPT'
json_close_object
json_close_array
procd_close_data
procd_close_instance
procd_open_instance 'server'
procd_set_param 'command' '/usr/sbin/shipworm' 'server' '192.0.2.1' '--secondary' '192.0.2.2' '--max-forward-payload' '100' '--log-level' 'debug'
procd_set_param 'respawn'
procd_set_param 'stdout' '1'
procd_set_param 'stderr' '1'
procd_open_data
json_add_array 'firewall'
json_add_object ''
json_add_string 'type' 'rule'
json_add_string 'name' 'shipworm-server'
json_add_string 'family' 'ipv4'
json_add_string 'proto' 'udp'
json_add_string 'src' 'wan2'
json_add_string 'dest_port' '3544'
json_add_string 'target' 'ACCEPT'
json_close_object
json_close_array
procd_close_data
procd_close_instance
logger '-t' 'shipworm' '-p' 'daemon.err' 'server broken: option primary (an IPv4 address) is required; not started'
X

# --- every shell file parses as POSIX sh -----------------------------------

for f in "$FILES/teredo.sh" "$FILES/teredo.script" "$FILES/shipworm.init"; do
	if out=$("$SH" -n "$f" 2>&1); then pass "sh -n $(basename "$f")"; else fail "sh -n $(basename "$f")" "$out"; fi
	if [ -x "$f" ]; then pass "$(basename "$f") is executable"; else fail "$(basename "$f") is not executable"; fi
done

# --- package Makefile lint -------------------------------------------------

MK=$OPENWRT/shipworm/Makefile
mkvar() { sed -n "s/^$1:=//p" "$MK"; }
for v in PKG_NAME PKG_VERSION PKG_RELEASE PKG_SOURCE_PROTO PKG_SOURCE_URL \
	PKG_SOURCE_VERSION PKG_MAINTAINER PKG_LICENSE PKG_LICENSE_FILES; do
	if [ -n "$(mkvar "$v")" ]; then pass "Makefile sets $v"; else fail "Makefile: $v missing"; fi
done
for line in 'PKG_BUILD_DEPENDS:=rust/host' 'PKG_BUILD_PARALLEL:=1' \
	'include $(TOPDIR)/rules.mk' 'include $(INCLUDE_DIR)/package.mk' \
	'include $(TOPDIR)/feeds/packages/lang/rust/rust-package.mk' \
	'  DEPENDS:=$(RUST_ARCH_DEPENDS) @IPV6 +kmod-tun' \
	'	$(call Build/Compile/Cargo,linux_glue)' \
	'$(eval $(call RustBinPackage,shipworm))' '$(eval $(call BuildPackage,shipworm))'; do
	if grep -qxF -- "$line" "$MK"; then pass "Makefile has: $line"; else fail "Makefile lacks: $line"; fi
done
ws() { sed -n '/^\[workspace.package\]/,/^\[/p' "$ROOT/Cargo.toml" | sed -n "s/^$1 *= *\"\(.*\)\"/\1/p"; }
[ "$(mkvar PKG_VERSION)" = "$(ws version)" ] && pass "PKG_VERSION = workspace version ($(ws version))" ||
	fail "PKG_VERSION $(mkvar PKG_VERSION) != workspace version $(ws version)"
[ "$(mkvar PKG_LICENSE)" = "$(ws license)" ] && pass "PKG_LICENSE = workspace license" ||
	fail "PKG_LICENSE $(mkvar PKG_LICENSE) != workspace license $(ws license)"
[ "$(mkvar PKG_SOURCE_URL)" = "$(ws repository)" ] && pass "PKG_SOURCE_URL = workspace repository" ||
	fail "PKG_SOURCE_URL $(mkvar PKG_SOURCE_URL) != workspace repository $(ws repository)"
[ -f "$ROOT/$(mkvar PKG_LICENSE_FILES)" ] && pass "PKG_LICENSE_FILES exists" || fail "no $(mkvar PKG_LICENSE_FILES) in the repository"
[ -f "$ROOT/Cargo.lock" ] && pass "Cargo.lock committed (RUST_PKG_LOCKED)" || fail "no Cargo.lock"

# The Makefile itself, run by make against stand-ins for the buildroot:
# its install recipe gives the tree below, and the conffiles.
BR=$STUBS/buildroot
mkdir -p "$TMP/pkginst/bin"
printf 'binary' >"$TMP/pkginst/bin/shipworm"
mkmake() { make -s -C "$OPENWRT/shipworm" TOPDIR="$BR" PKG_INSTALL_DIR="$TMP/pkginst" "$@"; }
if out=$(mkmake DESTROOT="$TMP/mkroot" install-root 2>&1); then
	pass "make: Package/shipworm/install runs"
else
	fail "make: Package/shipworm/install" "$out"
fi
tree() { (cd "$1" && find . -mindepth 1 -printf '%M %p\n' | sort); }
EXPECTED_TREE='-rw------- ./etc/config/shipworm
-rwxr-xr-x ./etc/init.d/shipworm
-rwxr-xr-x ./lib/netifd/proto/teredo.sh
-rwxr-xr-x ./lib/netifd/teredo.script
-rwxr-xr-x ./usr/sbin/shipworm
drwxr-xr-x ./etc
drwxr-xr-x ./etc/config
drwxr-xr-x ./etc/init.d
drwxr-xr-x ./lib
drwxr-xr-x ./lib/netifd
drwxr-xr-x ./lib/netifd/proto
drwxr-xr-x ./usr
drwxr-xr-x ./usr/sbin'
got=$(tree "$TMP/mkroot")
[ "$got" = "$EXPECTED_TREE" ] && pass "make: installed tree" || fail "make: installed tree" "$got"
got=$(mkmake print-conffiles 2>&1)
[ "$got" = /etc/config/shipworm ] && pass "make: conffiles" || fail "make: conffiles: $got"
got=$(mkmake print-PKG_VERSION 2>&1)
[ "$got" = "$(ws version)" ] && pass "make: PKG_VERSION evaluates to $got" || fail "make: PKG_VERSION: $got"

# --- .ipk from a cross-built mipsel binary ---------------------------------

TRIPLE=mipsel-unknown-linux-musl
MIPSEL=${SHIPWORM_MIPSEL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/dist/$TRIPLE/shipworm}
if [ ! -f "$MIPSEL" ] && [ "${SHIPWORM_BUILD_MIPSEL:-0}" = 1 ]; then
	echo "building $MIPSEL with cross/build.sh (minutes)"
	"$ROOT/cross/build.sh" build "$TRIPLE" || fail "cross/build.sh build $TRIPLE"
fi
if [ ! -f "$MIPSEL" ]; then
	skip ".ipk: no mipsel binary at $MIPSEL (set SHIPWORM_MIPSEL_BIN, or SHIPWORM_BUILD_MIPSEL=1 to run cross/build.sh build $TRIPLE)"
else
	if ipk=$("$OPENWRT/build-ipk.sh" "$MIPSEL" "$TMP/out" 2>&1); then
		pass ".ipk built: $(basename "$ipk")"
		[ "$(basename "$ipk")" = "shipworm_$(mkvar PKG_VERSION)-$(mkvar PKG_RELEASE)_mipsel_24kc.ipk" ] &&
			pass ".ipk name" || fail ".ipk name: $(basename "$ipk")"
		X=$TMP/ipk
		mkdir -p "$X/control" "$X/data"
		got=$(tar -tzf "$ipk" 2>&1)
		[ "$got" = $'./debian-binary\n./data.tar.gz\n./control.tar.gz' ] &&
			pass ".ipk members" || fail ".ipk members" "$got"
		tar -xzf "$ipk" -C "$X"
		[ "$(cat "$X/debian-binary")" = 2.0 ] && pass "debian-binary 2.0" || fail "debian-binary"
		tar -xzf "$X/control.tar.gz" -C "$X/control"
		tar -xzf "$X/data.tar.gz" -C "$X/data"
		got=$(tree "$X/control")
		[ "$got" = $'-rw-r--r-- ./conffiles\n-rw-r--r-- ./control\n-rwxr-xr-x ./postinst\n-rwxr-xr-x ./prerm' ] &&
			pass "control.tar.gz members" || fail "control.tar.gz members" "$got"
		field() { sed -n "s/^$1: //p" "$X/control/control"; }
		[ "$(field Package)" = shipworm ] && [ "$(field Version)" = "$(mkvar PKG_VERSION)-$(mkvar PKG_RELEASE)" ] &&
			[ "$(field Architecture)" = mipsel_24kc ] && [ "$(field Depends)" = "libc, kmod-tun" ] &&
			pass "control fields" || fail "control fields" "$(cat "$X/control/control")"
		[ "$(cat "$X/control/conffiles")" = /etc/config/shipworm ] && pass "conffiles" || fail "conffiles"
		got=$(tree "$X/data")
		[ "$got" = "$EXPECTED_TREE" ] && pass "data.tar.gz = the Makefile's install tree" ||
			fail "data.tar.gz tree" "$got"
		for f in teredo.sh:lib/netifd/proto/teredo.sh teredo.script:lib/netifd/teredo.script \
			shipworm.init:etc/init.d/shipworm shipworm.config:etc/config/shipworm; do
			cmp -s "$FILES/${f%%:*}" "$X/data/${f#*:}" && pass "data: ${f#*:}" || fail "data: ${f#*:} differs"
		done
		hdr=$(readelf -h "$X/data/usr/sbin/shipworm" 2>&1)
		if grep -q 'Machine: *MIPS' <<<"$hdr" && grep -q 'Data: .*little endian' <<<"$hdr" &&
			grep -q 'Class: *ELF32' <<<"$hdr"; then
			pass "binary: $(file -b "$X/data/usr/sbin/shipworm" | cut -d, -f1-3)"
		else
			fail "binary is not a mipsel ELF" "$hdr"
		fi
		"$OPENWRT/build-ipk.sh" "$MIPSEL" "$TMP/out2" >/dev/null 2>&1
		cmp -s "$ipk" "$TMP/out2/$(basename "$ipk")" && pass ".ipk is reproducible" || fail ".ipk differs between two builds"
	else
		fail "build-ipk.sh" "$ipk"
	fi
fi

echo
echo "$PASSED passed, $FAILED failed${SKIPPED:+, $SKIPPED skipped}"
[ "$FAILED" -eq 0 ]
