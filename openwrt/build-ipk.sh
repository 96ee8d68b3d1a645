#!/usr/bin/env bash
# Assembles an opkg package (.ipk) of Shipworm from a binary built outside
# the OpenWrt SDK (cross/build.sh: static musl) and the files of the
# package in openwrt/shipworm/, for trying Shipworm on a router without an
# SDK. The SDK build (openwrt/shipworm/Makefile) remains the real package;
# both install the same tree (openwrt/tests/run.sh compares them).
#
#   openwrt/build-ipk.sh <shipworm-binary> <out-dir>
#
# The .ipk is what OpenWrt's ipkg-build writes: a gzip'd tar of
# ./debian-binary, ./data.tar.gz and ./control.tar.gz. Architecture is
# derived from the binary's ELF header (mipsel -> mipsel_24kc, mips ->
# mips_24kc, ARM -> arm_cortex-a7_neon-vfpv4, AArch64 ->
# aarch64_cortex-a53); set IPK_ARCH to the router's own (`opkg
# print-architecture`) when it differs. Output:
# <out-dir>/shipworm_<version>-<release>_<arch>.ipk, byte-reproducible.
set -euo pipefail

die() {
	echo "build-ipk.sh: ERROR: $*" >&2
	exit 1
}

[ $# -eq 2 ] || die "usage: openwrt/build-ipk.sh <shipworm-binary> <out-dir>"
BIN=$1
OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PKG=$HERE/shipworm
FILES=$PKG/files

[ -f "$BIN" ] || die "$BIN: no such file"
hdr=$(readelf -h "$BIN" 2>/dev/null) || die "$BIN: not an ELF file"
grep -Eq 'Type: *(EXEC|DYN)' <<<"$hdr" || die "$BIN: not an executable"

if [ -z "${IPK_ARCH:-}" ]; then
	machine=$(sed -n 's/^ *Machine: *//p' <<<"$hdr")
	data=$(sed -n 's/^ *Data: *//p' <<<"$hdr")
	case $machine in
	MIPS*) case $data in
		*little*) IPK_ARCH=mipsel_24kc ;;
		*) IPK_ARCH=mips_24kc ;;
		esac ;;
	ARM) IPK_ARCH=arm_cortex-a7_neon-vfpv4 ;;
	AArch64) IPK_ARCH=aarch64_cortex-a53 ;;
	*) die "$BIN: machine '$machine' has no default OpenWrt architecture; set IPK_ARCH" ;;
	esac
fi

# Version and release come from the package Makefile, so the two agree.
mkvar() { sed -n "s/^$1:=//p" "$PKG/Makefile"; }
VERSION=$(mkvar PKG_VERSION)-$(mkvar PKG_RELEASE)
LICENSE=$(mkvar PKG_LICENSE)
MAINTAINER=$(mkvar PKG_MAINTAINER)
[ -n "$VERSION" ] && [ "$VERSION" != - ] || die "no PKG_VERSION/PKG_RELEASE in $PKG/Makefile"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/data
CTRL=$WORK/control

# The tree of Package/shipworm/install, with OpenWrt's install modes
# (INSTALL_BIN 0755, INSTALL_CONF 0600).
install -d -m0755 "$ROOT/usr/sbin" "$ROOT/lib/netifd/proto" "$ROOT/etc/init.d" "$ROOT/etc/config"
install -m0755 "$BIN" "$ROOT/usr/sbin/shipworm"
install -m0755 "$FILES/teredo.sh" "$ROOT/lib/netifd/proto/teredo.sh"
install -m0755 "$FILES/teredo.script" "$ROOT/lib/netifd/teredo.script"
install -m0755 "$FILES/shipworm.init" "$ROOT/etc/init.d/shipworm"
install -m0600 "$FILES/shipworm.config" "$ROOT/etc/config/shipworm"

size=$(du -sb "$ROOT" | cut -f1)
install -d -m0755 "$CTRL"
cat >"$CTRL/control" <<CONTROL
Package: shipworm
Version: $VERSION
Depends: libc, kmod-tun
Source: feeds/shipworm/shipworm
SourceName: shipworm
License: $LICENSE
Section: net
Maintainer: $MAINTAINER
Architecture: $IPK_ARCH
Installed-Size: $size
Description:  Teredo (RFC 4380) IPv6 tunnelling client, relay and server.
 The client is proto 'teredo' in /etc/config/network; relay and server are
 services configured in /etc/config/shipworm.
CONTROL
echo /etc/config/shipworm >"$CTRL/conffiles"
# The buildroot's default maintainer scripts: enable the init script on a
# live system (not in an image build), and disable/stop it on removal.
cat >"$CTRL/postinst" <<'SCRIPT'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
SCRIPT
cat >"$CTRL/prerm" <<'SCRIPT'
#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
SCRIPT
chmod 0755 "$CTRL/postinst" "$CTRL/prerm"
chmod 0644 "$CTRL/control" "$CTRL/conffiles"

# Reproducible archives: fixed owner, order and time; gzip without a name
# or timestamp.
EPOCH=${SOURCE_DATE_EPOCH:-0}
tarball() { # <dir> <out> <member...>
	local dir=$1 out=$2
	shift 2
	tar -C "$dir" --owner=0 --group=0 --numeric-owner --sort=name \
		--mtime="@$EPOCH" --format=gnu -cf - "$@" | gzip -9n >"$out"
}
tarball "$ROOT" "$WORK/data.tar.gz" .
tarball "$CTRL" "$WORK/control.tar.gz" .
echo 2.0 >"$WORK/debian-binary"

mkdir -p "$OUT"
IPK=$OUT/shipworm_${VERSION}_${IPK_ARCH}.ipk
tarball "$WORK" "$IPK" ./debian-binary ./data.tar.gz ./control.tar.gz
echo "$IPK"
