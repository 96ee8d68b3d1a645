# Test stand-in for OpenWrt's rules.mk: only what the package Makefile's
# install recipe uses (same install modes as OpenWrt's).
INCLUDE_DIR:=$(TOPDIR)/include
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_CONF:=install -m0600
