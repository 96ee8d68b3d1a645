#!/usr/bin/env bash
# Issue 4, Teredo client: forged packets are not accepted.  lab/teredo_forge.py
# runs in the server's namespace and sends with a raw socket through the
# holes NAT1 really keeps open for client1 (Shipworm): as the server's
# 198.51.100.1:3544 (while the server runs) and as the relay's address and
# port (client1 has talked to the native host through it).  A sniffer on
# client1's tunnel sees what the client delivers to its host.  Every
# negative case waits until the client has counted the packet's drop reason
# (SIGUSR1 status: so it did arrive and was judged) and asserts that it did
# not reach the tunnel.  Every negative case has a positive control: a
# well-formed packet through the same hole, differing only in what is
# checked, that IS delivered or accepted; without the check in the client,
# the negative case would fail.
#  (b) ICMPv6 Echo Request from a Teredo source whose embedded mapping is
#      not the UDP source (RFC 4380 §5.2.3) → spoofed_teredo_source;
#      control: the Teredo source embedding the UDP source → delivered;
#  (c) from a native source through a relay not verified for it
#      (RFC 4380 §5.2.3, §5.2.9): the client holds the packet and tests the
#      source; the native host's address through the server's hole →
#      wrong_relay (its real echo reply verifies the relay's mapping, not
#      the server's, so the held packet is discarded), an unknown native
#      address through the relay's hole → unverified (when its echo test
#      gives up, ~8 s later); control: the native host's address through
#      the relay's hole → delivered;
#  (a) Router Advertisements with another mapping: while qualified (none
#      solicited) with a wrong nonce and with none → unsolicited, the
#      address stays; then during a re-qualification, a fake server in the
#      server's place answers every RS first with a wrong nonce (mapping
#      203.0.113.66:6666), 0.3 s later with the right one (203.0.113.77:7777):
#      the client must count wrong_nonce and move to …77:7777 (control), and
#      never to …66:6666.  The real server then brings the real mapping back.
# The server only matters as the sender of RAs here, which the fake server
# replaces, so run.sh runs this test against the Shipworm server only.
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=miredo}"
FORGE=$LAB_ROOT/teredo_forge.py
SERVER_HOLE=$LAB_SERVER_IP:3544
BAD_MAPPING=203.0.113.66:6666
GOOD_MAPPING=203.0.113.77:7777

lab_test_begin client_forged
lab_require "lab up" lab_up
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"
lab_require "start the Miredo relay" lab_start_miredo_relay
lab_require "start shipworm client in client1" lab_start_shipworm_client client1
pid=$LAB_LAST_PID
log=$LAB_DIR/shipworm-client1.log
a1=''
lab_require "client1 (shipworm) qualifies within 10 s" lab_wait_teredo_addr client1 10 a1
lab_require "client1 → native (makes the relay's hole and trust)" lab_ping client1 "$LAB_NATIVE_IP6" 2
read -r _ port mapped _ < <(lab_teredo_decode "$a1")
target=$mapped:$port
lab_pass "client1 $a1, NAT1 mapping $target"

forge() { lab_exec server python3 "$FORGE" "$@"; }
# The client's counter <name> (lab_status_count) from a fresh status line.
counter() {  # <stats|data> <name>
    local lines
    lines=$(lab_client_status "$pid" "$log") || { echo -1; return; }
    lab_status_count "$(grep " $1: " <<<"$lines")" "$2"
}
counter_above() { (($(counter "$1" "$2") > $3)); }

# What client1 delivers to its host: marked Echo Requests seen on teredo.
sniffed=$LAB_DIR/sniff-teredo.log
lab_spawn client1 "$sniffed" python3 "$FORGE" sniff teredo
lab_require "sniffer on client1's teredo" lab_wait_for 5 grep -q '^listening' "$sniffed"
seq=0

# inject_echo <what> <drop reason|delivered> <udp-source> <ipv6-source> [wait-s]:
# a marked Echo Request to client1 from <udp-source> (spoofed) and
# <ipv6-source>.  A drop must be counted under its reason (the packet did
# arrive) and the packet must not reach the tunnel; a delivery must.
inject_echo() {
    local what=$1 want=$2 n=0 wait=${5:-5}
    seq=$((seq + 1))
    [[ $want != delivered ]] && n=$(counter data "$want")
    forge echo "$3" "$target" --src6 "$4" --dst6 "$a1" --seq "$seq" ||
        { lab_fail "$what: teredo_forge.py failed"; return; }
    if [[ $want == delivered ]]; then
        if lab_wait_for 5 grep -q "^delivered seq=$seq " "$sniffed"; then
            lab_pass "$what: delivered to the host"
        else
            lab_fail "$what: not delivered within 5 s"
        fi
    elif ! lab_wait_for "$wait" counter_above data "$want" "$n"; then
        lab_fail "$what: drop counter $want stayed at $n: $(grep ' data: ' "$log" | tail -n 1)"
    else
        sleep 0.3
        if grep -q "^delivered seq=$seq " "$sniffed"; then
            lab_fail "$what: dropped as $want, yet delivered to the host"
        else
            lab_pass "$what: dropped as $want ($n → $(counter data "$want")), not delivered"
        fi
    fi
}

# --- (b) Teredo sources: the embedded mapping must be the UDP source.
spoofed_src=$(python3 "$FORGE" teredo "$LAB_SERVER_IP" 203.0.113.9:4000)
honest_src=$(python3 "$FORGE" teredo "$LAB_SERVER_IP" "$SERVER_HOLE")
inject_echo "(b) from Teredo $spoofed_src (mapping 203.0.113.9:4000) via $SERVER_HOLE" \
    spoofed_teredo_source "$SERVER_HOLE" "$spoofed_src"
inject_echo "(b) control: from Teredo $honest_src (mapping $SERVER_HOLE) via $SERVER_HOLE" \
    delivered "$SERVER_HOLE" "$honest_src"

# --- (c) native sources: only through the relay an echo test verified.
# The relay sends from a port of its own (not 3544): NAT1's entry has it.
relay_port=$(lab_exec nat1 conntrack -L -p udp --src "$LAB_CLIENT1_IP" --dst "$LAB_RELAY_IP" 2>/dev/null |
    grep -o 'dport=[0-9]*' | head -n 1 | cut -d= -f2)
relay_hole=$LAB_RELAY_IP:${relay_port:-0}
[[ -n $relay_port ]] || lab_fail "no NAT1 entry towards the relay"
inject_echo "(c) from native $LAB_NATIVE_IP6 via the server's $SERVER_HOLE" \
    wrong_relay "$SERVER_HOLE" "$LAB_NATIVE_IP6" 14
inject_echo "(c) from unknown native 2001:db8:1::bad via the relay's $relay_hole" \
    unverified "$relay_hole" 2001:db8:1::bad 14
lab_require "client1 → native (the relay is still trusted)" lab_ping client1 "$LAB_NATIVE_IP6" 1
inject_echo "(c) control: from native $LAB_NATIVE_IP6 via the relay's $relay_hole" \
    delivered "$relay_hole" "$LAB_NATIVE_IP6"

# --- (a) Router Advertisements.
# inject_ra <what> forge-args…: an RA while none is solicited.
inject_ra() {
    local what=$1 n
    shift
    n=$(counter stats unsolicited)
    forge ra "$@" || { lab_fail "$what: teredo_forge.py failed"; return; }
    if lab_wait_for 5 counter_above stats unsolicited "$n"; then
        lab_pass "$what: dropped as unsolicited ($n → $(counter stats unsolicited))"
    else
        lab_fail "$what: not counted as unsolicited: $(grep ' stats: ' "$log" | tail -n 1)"
    fi
}
inject_ra "(a) RA with a wrong nonce and mapping $BAD_MAPPING, none solicited" \
    "$SERVER_HOLE" "$target" --server "$LAB_SERVER_IP" --mapping "$BAD_MAPPING" --nonce 0123456789abcdef
inject_ra "(a) RA without a nonce, mapping $BAD_MAPPING, none solicited" \
    "$SERVER_HOLE" "$target" --server "$LAB_SERVER_IP" --mapping "$BAD_MAPPING"
lab_check "(a) address after the unsolicited RAs" "$a1" "$(lab_teredo_addr client1)"

lab_stop "$LAB_SERVER_PID"
lab_spawn server "$LAB_DIR/fake-server.log" python3 "$FORGE" fake-server \
    "$LAB_SERVER_IP" "$LAB_SERVER_IP2" --server "$LAB_SERVER_IP" --bad "$BAD_MAPPING" --good "$GOOD_MAPPING"
fake_pid=$LAB_LAST_PID
lab_require "fake server listening" lab_wait_for 5 grep -q '^listening' "$LAB_DIR/fake-server.log"
wrong=$(counter stats wrong_nonce)
mapping_of() { python3 "$FORGE" mapping "$(lab_teredo_addr client1)"; }
mapping_is() { [[ $(mapping_of) == "$1" ]]; }
t=$(lab_now)
# A default route change makes the client re-qualify at once (client_qualify).
lab_exec client1 ip route del default
lab_exec client1 ip route add default via 192.0.2.1
if lab_wait_for 10 mapping_is "$GOOD_MAPPING"; then
    lab_pass "(a) control: the right nonce is accepted, mapping $GOOD_MAPPING after $(lab_since "$t") s"
else
    lab_fail "(a) control: mapping $(mapping_of) 10 s after the re-qualification began, expected $GOOD_MAPPING"
fi
now_wrong=$(counter stats wrong_nonce)
if ((now_wrong > wrong)); then
    lab_pass "(a) RAs with a wrong nonce while soliciting: dropped as wrong_nonce ($wrong → $now_wrong)"
else
    lab_fail "(a) wrong_nonce stayed at $wrong: the forged RAs did not reach the client?"
fi
lab_check "(a) times the wrong-nonce mapping $BAD_MAPPING was taken" 0 "$(grep -c "${BAD_MAPPING%:*}" "$log")"
echo "     fake server: $(grep -c '^RS from' "$LAB_DIR/fake-server.log") RS answered; client: $(grep 'mapping changed' "$log" | tail -n 1 | sed 's/.*: mapping/mapping/')"

lab_stop "$fake_pid"
lab_require "restart the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"
lab_exec client1 ip route del default
lab_exec client1 ip route add default via 192.0.2.1
if lab_wait_for 10 mapping_is "$target"; then
    lab_pass "back on the real mapping $target with the real server"
else
    lab_fail "mapping $(mapping_of) 10 s after re-qualifying with the real server, expected $target"
fi
lab_finish
