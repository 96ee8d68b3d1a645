#!/usr/bin/env bash
# Issue 3, Teredo server: the RS/RA exchange on the wire, captured on the
# server's interface and decoded by tshark's Teredo dissector, must follow
# RFC 4380 §5.2.1/§5.3.2 and RFC 4861 §4.1/§4.2:
#   RS: link-local IPv6 source -> ff02::2, hop limit 255, auth header (nonce);
#   RA: from the server's link-local fe80::8000:f227:<~198.51.100.1> to the
#       RS source, hop limit 255, same nonce, confirmation 0, an origin
#       indication equal to the NAT's mapping, leaving from 198.51.100.1:3544
#       (cone bit 0) to that mapping, exactly one PIO 2001:0:c633:6401::/64
#       with the A flag, MTU option 1280.
set -u -o pipefail
# shellcheck source=../lab.sh
source "$(dirname "$0")/../lab.sh"
: "${SERVER_IMPL:=miredo}"

lab_test_begin tshark_rsra
lab_require "lab up" lab_up
lab_require "start the $SERVER_IMPL server" lab_start_server "$SERVER_IMPL"
pcap=$LAB_DIR/rsra.pcapng
lab_require "start dumpcap on the server" lab_capture_start server eth0 "$pcap"
cap_pid=$LAB_LAST_PID
lab_start_miredo_client client1
lab_wait_teredo_addr client1 10 addr || lab_fail "client1 did not qualify (checking the capture anyway)"
lab_capture_wait "$pcap" 2 3 || lab_fail "fewer than 2 packets captured"
lab_stop "$cap_pid"

tshark -r "$pcap" 2>/dev/null | head -n 4 | sed 's/^/     /'
tshark -r "$pcap" -O teredo,icmpv6 >"$LAB_DIR/rsra-decode.log" 2>/dev/null

# The first packet of a type, as '|'-separated fields.
fields() {  # <display filter> <field>...
    local filter=$1 f
    local -a args=()
    shift
    for f in "$@"; do args+=(-e "$f"); done
    tshark -r "$pcap" -Y "$filter" -T fields -E separator='|' "${args[@]}" 2>/dev/null | head -n 1
}
IFS='|' read -r rs_ip_src rs_port_src rs_ip_dst rs_port_dst rs_src rs_dst rs_hlim rs_nonce rs_code < <(
    fields 'icmpv6.type == 133' ip.src udp.srcport ip.dst udp.dstport ipv6.src ipv6.dst ipv6.hlim \
        teredo.auth.nonce icmpv6.code)
IFS='|' read -r ra_ip_src ra_port_src ra_ip_dst ra_port_dst orig_port orig_addr ra_nonce ra_conf \
    ra_src ra_dst ra_hlim ra_code opt_types prefix prefix_len prefix_a mtu < <(
    fields 'icmpv6.type == 134' ip.src udp.srcport ip.dst udp.dstport teredo.orig.port teredo.orig.addr \
        teredo.auth.nonce teredo.auth.conf ipv6.src ipv6.dst ipv6.hlim icmpv6.code icmpv6.opt.type \
        icmpv6.opt.prefix icmpv6.opt.prefix.length icmpv6.opt.prefix.flag.a icmpv6.opt.mtu)
[[ -n ${rs_src:-} ]] || { lab_fail "no Router Solicitation in the capture"; lab_finish; }
[[ -n ${ra_src:-} ]] || { lab_fail "no Router Advertisement in the capture"; lab_finish; }

# The NAT's mapping is what the server sees as the RS's UDP source; NAT1's
# conntrack must agree.
nat_port=$(lab_exec nat1 conntrack -L -p udp --dst "$LAB_SERVER_IP" --dport 3544 2>/dev/null |
    grep -o 'dport=[0-9]*' | tail -n 1 | cut -d= -f2)
lab_check "RS UDP source = NAT1's mapping" "$LAB_NAT1_WAN:${nat_port:-none}" "$rs_ip_src:$rs_port_src"
lab_check "RS UDP destination" "$LAB_SERVER_IP:3544" "$rs_ip_dst:$rs_port_dst"
lab_check "RS IPv6 source is link-local" fe80:0000:0000:0000 "$(lab_ipv6_expand "$rs_src" | cut -d: -f1-4)"
lab_check "RS IPv6 destination" ff02::2 "$rs_dst"
lab_check "RS hop limit" 255 "$rs_hlim"
lab_check "RS ICMPv6 code" 0 "$rs_code"

lab_check "RA origin indication (port, address)" "$rs_port_src $rs_ip_src" "$orig_port $orig_addr"
lab_check "RA UDP source (cone bit 0: same address)" "$LAB_SERVER_IP:3544" "$ra_ip_src:$ra_port_src"
lab_check "RA UDP destination = the mapping" "$rs_ip_src:$rs_port_src" "$ra_ip_dst:$ra_port_dst"
lab_check "RA auth nonce = RS nonce" "$rs_nonce" "$ra_nonce"
lab_check "RA auth confirmation byte" 00 "$ra_conf"
lab_check "RA IPv6 source (server link-local)" "$(lab_ipv6_expand fe80::8000:f227:39cc:9bfe)" \
    "$(lab_ipv6_expand "$ra_src")"
lab_check "RA IPv6 destination = RS source" "$(lab_ipv6_expand "$rs_src")" "$(lab_ipv6_expand "$ra_dst")"
lab_check "RA hop limit" 255 "$ra_hlim"
lab_check "RA ICMPv6 code" 0 "$ra_code"
lab_check "RA prefix information options" 1 "$(tr ',' '\n' <<<"$opt_types" | grep -cx 3)"
lab_check "RA prefix" "2001:0:c633:6401::/64" "$prefix/$prefix_len"
lab_check "RA prefix A flag" 1 "$prefix_a"
lab_check "RA MTU option" 1280 "$mtu"
lab_finish
