# Test stand-in for the packages feed's lang/rust/rust-package.mk.
RUST_ARCH_DEPENDS:=@(aarch64||arm||i386||loongarch64||mips||mips64||mips64el||mipsel||powerpc||powerpc64||riscv64||x86_64)

define RustBinPackage
endef
