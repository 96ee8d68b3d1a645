# Test stand-in for /etc/rc.common with procd and /lib/functions.sh's UCI
# helpers: procd_* calls are recorded; config_load parses a UCI file from
# $UCI_DIR (config/option lines, as /etc/config files are written).
. "${STUBS:?}/calls.sh"

procd_open_instance() { record procd_open_instance "$@"; }
procd_set_param() { record procd_set_param "$@"; }
procd_close_instance() { record procd_close_instance "$@"; }
procd_open_data() { record procd_open_data "$@"; }
procd_close_data() { record procd_close_data "$@"; }
procd_add_reload_trigger() { record procd_add_reload_trigger "$@"; }
logger() { record logger "$@"; }

_uci_unquote() {
	local v="$1"
	case "$v" in
	\'*\') v="${v#\'}" v="${v%\'}" ;;
	\"*\") v="${v#\"}" v="${v%\"}" ;;
	esac
	printf '%s' "$v"
}

config_load() {
	local kw a b n=0 section=
	CONFIG_SECTIONS=
	while read -r kw a b; do
		case "$kw" in
		config)
			n=$((n + 1))
			section="$(_uci_unquote "$b")"
			[ -n "$section" ] || section="cfg$n"
			CONFIG_SECTIONS="$CONFIG_SECTIONS $section"
			eval "CONFIG_${section}_TYPE=\$a"
			;;
		option)
			eval "CONFIG_${section}_${a}=\$(_uci_unquote \"\$b\")"
			;;
		esac
	done <"${UCI_DIR:?}/$1"
}

config_get() {
	eval "$1=\${CONFIG_${2}_${3}:-\$4}"
}

config_get_bool() {
	local v
	config_get v "$2" "$3" "$4"
	case "$v" in
	1 | yes | on | true | enabled) v=1 ;;
	*) v=0 ;;
	esac
	eval "$1=\$v"
}

config_foreach() {
	local fn="$1" type="$2" s t
	for s in $CONFIG_SECTIONS; do
		eval "t=\$CONFIG_${s}_TYPE"
		[ "$t" = "$type" ] && "$fn" "$s"
	done
	return 0
}
