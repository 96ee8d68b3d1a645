# Sourced by the namespace tests in this folder (server_cli.sh, daemon_cli.sh,
# privileges.sh): what they share, once.
#
#   source "$(dirname "$0")/common.sh"
#   glue_binary "$@"            # $bin: the argument, or a fresh debug build
#   glue_namespaces NAME [peer] # $ns (and $peer), $tmp, $pids, $failed;
#                               # everything removed on any exit
# then pass/fail to report, in_ns/in_peer to run commands there, and
# wait_for FILE REGEX [TENTHS] to wait for a log line.

# The binary under test: the path given, else the debug build (honouring
# CARGO_TARGET_DIR).
glue_binary() {
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    if [ $# -ge 1 ]; then
        bin=$(realpath "$1")
    else
        (cd "$here/../.." && cargo build -q -p shipworm) || exit 1
        bin="${CARGO_TARGET_DIR:-$here/../../target}/debug/shipworm"
    fi
}

# A namespace "$1<pid>" (and its peer "$1<pid>p" with a second argument
# "peer"), a temporary directory readable by the unprivileged user the roles
# switch to (SIGHUP reads configuration there after the switch), and a trap
# that ends only the processes recorded in $pids and deletes both.
# Roles started without --status-socket create the default sockets in
# /var/run, and one that has dropped root cannot unlink its own at exit:
# the trap also removes those that did not exist before the script.
glue_namespaces() {
    ns="$1$$"
    peer=""
    [ "${2:-}" = peer ] && peer="$1$$p"
    tmp=$(mktemp -d)
    chmod 755 "$tmp"
    pids=()
    failed=0
    new_sockets=()
    local role
    for role in client relay server; do
        [ -e "/var/run/shipworm-$role.sock" ] || new_sockets+=("/var/run/shipworm-$role.sock")
    done
    trap glue_cleanup EXIT
    trap 'exit 1' INT TERM
}

glue_cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    [ -n "$peer" ] && ip netns del "$peer" 2>/dev/null
    local sock
    for sock in "${new_sockets[@]}"; do
        [ -S "$sock" ] && rm -f "$sock"
    done
    rm -rf "$tmp"
}

pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }
in_ns() { ip netns exec "$ns" "$@"; }
in_peer() { ip netns exec "$peer" "$@"; }

# wait_for FILE REGEX [TENTHS]: up to 5 s (or TENTHS/10 s) for a log line.
wait_for() {
    for _ in $(seq "${3:-50}"); do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
