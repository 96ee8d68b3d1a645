# Test stand-in for OpenWrt's /lib/netifd/netifd-proto.sh: each proto_*
# call is recorded instead of becoming a ubus message to netifd.
# json_get_vars reads the interface options from CFG_<option> variables.
. "${STUBS:?}/calls.sh"

proto_config_add_string() { record proto_config_add_string "$@"; }
proto_config_add_int() { record proto_config_add_int "$@"; }
proto_config_add_boolean() { record proto_config_add_boolean "$@"; }
proto_init_update() { record proto_init_update "$@"; }
proto_add_ipv6_address() { record proto_add_ipv6_address "$@"; }
proto_add_ipv6_route() { record proto_add_ipv6_route "$@"; }
proto_add_data() { record proto_add_data "$@"; }
proto_close_data() { record proto_close_data "$@"; }
proto_send_update() { record proto_send_update "$@"; }
proto_export() { record proto_export "$@"; }
proto_run_command() { record proto_run_command "$@"; }
proto_kill_command() { record proto_kill_command "$@"; }
proto_notify_error() { record proto_notify_error "$@"; }
proto_block_restart() { record proto_block_restart "$@"; }
proto_add_host_dependency() { record proto_add_host_dependency "$@"; }
add_protocol() { record add_protocol "$@"; }

json_get_vars() {
	local v
	for v in "$@"; do
		eval "$v=\${CFG_$v-}"
	done
}
