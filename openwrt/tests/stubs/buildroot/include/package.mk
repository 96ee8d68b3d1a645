# Test stand-in for OpenWrt's package.mk: BuildPackage makes two targets,
# `install-root` (runs Package/<name>/install into $(DESTROOT)) and
# `print-conffiles`, and `print-VAR` prints a variable.
define BuildPackage
install-root:
	$$(call Package/$(1)/install,$$(DESTROOT))

print-conffiles:
	@printf '%s\n' '$$(strip $$(Package/$(1)/conffiles))'
endef

print-%:
	@printf '%s\n' '$($*)'
