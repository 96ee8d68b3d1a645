#!/bin/sh
# netifd protocol handler for `proto 'teredo'` (/lib/netifd/proto/teredo.sh).
#
# Shaped like dhcpv6.sh: netifd supervises `shipworm client` (started with
# proto_run_command), and Shipworm reports each state change by running
# /lib/netifd/teredo.script, which hands the Teredo address, routes and MTU
# to netifd. The handler itself only checks the options and builds the
# command line; the address exists only once the client has qualified.

[ -n "$INCLUDE_ONLY" ] || {
	. /lib/functions.sh
	. ../netifd-proto.sh
	init_proto "$@"
}

proto_teredo_init_config() {
	# The tunnel is created by the daemon, not configured by netifd.
	no_device=1
	available=1

	proto_config_add_string server
	proto_config_add_string server2
	proto_config_add_string fallback
	proto_config_add_int port
	proto_config_add_string bind
	proto_config_add_int mtu
	proto_config_add_int metric
	proto_config_add_boolean defaultroute
	proto_config_add_string zone
	proto_config_add_string log_level
}

# Name of the tunnel of interface $1: "teredo-<interface>", cut to the
# kernel's 15-character limit (IFNAMSIZ - 1), as 6in4.sh names "6in4-<cfg>".
teredo_ifname() {
	printf 'teredo-%.8s' "$1"
}

proto_teredo_setup() {
	local config="$1"

	local server server2 fallback port bind mtu metric defaultroute zone log_level
	json_get_vars server server2 fallback port bind mtu metric defaultroute zone log_level

	[ -n "$server" ] || {
		# No built-in default: no public Teredo server is guaranteed to
		# exist, and retrying cannot make one appear.
		proto_notify_error "$config" "MISSING_SERVER"
		proto_block_restart "$config"
		return 1
	}
	[ -z "$mtu" ] || [ "$mtu" -ge 1280 ] || {
		# RFC 4380 §5.1.2: 1280 is the least a Teredo link carries.
		proto_notify_error "$config" "MTU_BELOW_1280"
		proto_block_restart "$config"
		return 1
	}

	local ifname
	ifname="$(teredo_ifname "$config")"

	# Re-run setup when the route to the server changes. A name cannot be
	# tracked before it is resolved: depend on the IPv4 default route then.
	case "$server" in
	*[!0-9.]*) proto_add_host_dependency "$config" "0.0.0.0" ;;
	*) proto_add_host_dependency "$config" "$server" ;;
	esac

	# Read by teredo.script, which runs in the daemon's environment.
	proto_export "INTERFACE=$config"
	proto_export "TEREDO_DEFAULTROUTE=${defaultroute:-1}"
	proto_export "TEREDO_METRIC=${metric:-1029}"
	[ -n "$mtu" ] && proto_export "TEREDO_MTU=$mtu"
	[ -n "$zone" ] && proto_export "TEREDO_ZONE=$zone"

	proto_run_command "$config" /usr/sbin/shipworm client \
		--server "$server" \
		${server2:+--server2 "$server2"} \
		${fallback:+--fallback "$fallback"} \
		${bind:+--bind "$bind"} \
		${port:+--port "$port"} \
		${log_level:+--log-level "$log_level"} \
		--interface "$ifname" \
		--hook /lib/netifd/teredo.script
}

proto_teredo_teardown() {
	local config="$1"
	# SIGTERM: Shipworm runs the hook (down, destroy) and removes the tunnel.
	proto_kill_command "$config"
}

[ -n "$INCLUDE_ONLY" ] || add_protocol teredo
