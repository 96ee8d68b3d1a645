#!/usr/bin/env bash
# lab/install-deps.sh — install what the lab needs from Debian (root).
#
# Debian's miredo package would start a Teredo client in the root namespace,
# aimed at a public server, if its init scripts were allowed to run.  So make
# sure /usr/sbin/policy-rc.d forbids service starts (exit 101) BEFORE
# installing; the lab only ever runs Miredo inside its own namespaces.
set -eu -o pipefail

need=(ip:iproute2 iptables:iptables conntrack:conntrack ping:iputils-ping
    miredo:miredo miredo-server:miredo-server dumpcap:tshark tshark:tshark
    iperf3:iperf3)
missing=()
PATH=$PATH:/usr/sbin:/sbin
for pair in "${need[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]} == 0)); then
    echo "lab dependencies present"
    exit 0
fi
if ((EUID != 0)); then
    echo "lab/install-deps.sh: need root to install: ${missing[*]}" >&2
    exit 1
fi

policy=/usr/sbin/policy-rc.d
if [[ ! -x $policy ]] || ! grep -q 'exit 101' "$policy"; then
    [[ -e $policy ]] && cp -p "$policy" "$policy.shipworm-lab.bak"
    printf '#!/bin/sh\n# Installed by shipworm lab/install-deps.sh: no service starts.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    echo "installed $policy (exit 101) so that miredo is not started by apt"
fi

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Miredo worker drops privileges to this user (Debian's compiled-in
# default); the package's postinst creates it.
id miredo >/dev/null
