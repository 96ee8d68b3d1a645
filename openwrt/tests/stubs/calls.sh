# Shared by the stubs: appends one line per call to $CALLS, every argument
# in single quotes so empty and space-holding arguments stay visible.
record() {
	local line="$1" a
	shift
	for a in "$@"; do
		line="$line '$a'"
	done
	echo "$line" >>"${CALLS:?CALLS unset}"
}

# Stand-ins for libubox's jshn.sh (recorded, not built into JSON).
json_init() { record json_init "$@"; }
json_add_array() { record json_add_array "$@"; }
json_close_array() { record json_close_array "$@"; }
json_add_object() { record json_add_object "$@"; }
json_close_object() { record json_close_object "$@"; }
json_add_string() { record json_add_string "$@"; }
json_add_int() { record json_add_int "$@"; }
json_add_boolean() { record json_add_boolean "$@"; }
