#!/usr/bin/env bash
# lab/shell.sh — bring the lab up with every daemon running and drop into a
# shell for manual poking; everything is torn down when the shell exits.
#
#   sudo lab/shell.sh [--nat1 symmetric]   Miredo server, relay, two clients
#   SERVER_IMPL=shipworm lab/shell.sh      the Shipworm server instead
#   NAT1_TYPE=symmetric lab/shell.sh       NAT1 with MASQUERADE --random
#
# Inside the shell the lab.sh functions are available (lab_exec, lab_ping,
# lab_spawn, lab_capture_start …), bound to this lab.
set -u -o pipefail
# shellcheck source=lab.sh
source "$(dirname "$0")/lab.sh"
: "${SERVER_IMPL:=miredo}"

lab_up "$@" || exit 1
lab_start_server "$SERVER_IMPL" || exit 1
lab_start_miredo_relay || exit 1
lab_start_miredo_client client1
lab_start_miredo_client client2
lab_wait_teredo_addr client1 10 a1 || a1="(not qualified)"
lab_wait_teredo_addr client2 10 a2 || a2="(not qualified)"

rc=$LAB_DIR/shellrc
cat >"$rc" <<EOF
[[ -f ~/.bashrc ]] && source ~/.bashrc
LAB_PREFIX=$LAB_PREFIX
LAB_DIR=$LAB_DIR
source "$LAB_ROOT/lab.sh"
PS1="[lab $LAB_PREFIX] \\w\\\$ "
EOF
cat <<EOF

Lab $LAB_PREFIX is up ($SERVER_IMPL server).  Logs and configs: $LAB_DIR
  client1 $a1  (behind nat1 ${NAT1_TYPE:-cone}, WAN $LAB_NAT1_WAN)
  client2 $a2  (behind nat2 ${NAT2_TYPE:-cone}, WAN $LAB_NAT2_WAN)
  native  $LAB_NATIVE_IP6, relay $LAB_RELAY_IP / $LAB_RELAY_IP6
Try:
  lab_exec client1 ping -6 -c 3 $LAB_NATIVE_IP6
  lab_exec client1 ping -6 -c 3 $a2
  lab_exec native ping -6 $a1
  lab_exec nat1 conntrack -L
  lab_capture_start server eth0 \$LAB_DIR/x.pcapng; lab_stop \$LAB_LAST_PID
  ip netns exec $(lab_ns client1) bash     # a shell inside a node
Exit the shell to tear everything down.

EOF
bash --rcfile "$rc" -i
