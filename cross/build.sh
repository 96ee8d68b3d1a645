#!/usr/bin/env bash
# Cross-builds Shipworm for OpenWrt routers without Docker: zig (through
# cargo-zigbuild) is the linker and brings its own musl, and nightly's
# `-Z build-std` builds std for the tier-3 MIPS targets, which rustup does not
# ship. Every produced binary is checked (static, right machine, endianness,
# soft-float on MIPS) because a wrong linker can "succeed" and silently yield a
# dynamic glibc binary.
#
#   cross/build.sh build [TRIPLE...]   release `shipworm` per router triple,
#                                      checked, copied to $TGT/dist/TRIPLE/
#   cross/build.sh test  [TRIPLE...]   shipworm-core's tests under qemu-user
#   cross/build.sh run   TRIPLE [ARG...]  run the built binary under qemu-user
#   cross/build.sh size  [TRIPLE...]   stripped sizes, release and smallest
#                                      profile, next to a std hello-world
#   cross/build.sh nostd               shipworm-core for thumbv7em-none-eabihf
#                                      (stable, and nightly build-std=core)
#   cross/build.sh check FILE TRIPLE   verify one binary
#   cross/build.sh all                 nostd, build, test
#
# Needs: rustup toolchains `stable` and `nightly` (with rust-src), the rustup
# targets thumbv7em-none-eabihf (both) and aarch64-unknown-linux-musl (stable),
# `pip install ziglang cargo-zigbuild`, qemu-user, binutils (readelf), file,
# llvm (llvm-strip).
# Environment: CARGO_TARGET_DIR (default ./target), SHIPWORM_NIGHTLY and
# SHIPWORM_STABLE (toolchain names), SHIPWORM_BUILD_STD=1 to build std from
# source even where rustup ships it, PROPTEST_CASES (proptest's, passed on).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
NIGHTLY=${SHIPWORM_NIGHTLY:-nightly}
STABLE=${SHIPWORM_STABLE:-stable}
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TGT
# Keep zig's caches (it compiles musl and libunwind per target) and
# cargo-zigbuild's linker wrappers with the build, not in ~/.cache.
export ZIG_GLOBAL_CACHE_DIR=${ZIG_GLOBAL_CACHE_DIR:-$TGT/zig-cache}
export CARGO_ZIGBUILD_CACHE_DIR=${CARGO_ZIGBUILD_CACHE_DIR:-$TGT/zigbuild}

# The OpenWrt-relevant triples; see the README table for which router family
# uses which.
ROUTER_TRIPLES=(
    mips-unknown-linux-musl
    mipsel-unknown-linux-musl
    armv7-unknown-linux-musleabihf
    aarch64-unknown-linux-musl
)
# One big-endian and one other 32-bit and one 64-bit CPU: enough to catch
# endianness and word-size bugs.
TEST_TRIPLES=(
    mips-unknown-linux-musl
    armv7-unknown-linux-musleabihf
    aarch64-unknown-linux-musl
)
NOSTD_TRIPLE=thumbv7em-none-eabihf

die() {
    echo "cross/build.sh: ERROR: $*" >&2
    exit 1
}
say() { echo "==> $*" >&2; }

# cargo-zigbuild finds zig through `python3 -m ziglang` when no `zig` is on
# PATH; only cargo-zigbuild itself must be reachable.
command -v cargo-zigbuild >/dev/null || die "cargo-zigbuild not found (pip install ziglang cargo-zigbuild)"

qemu_for() {
    case $1 in
    mips-*) echo qemu-mips ;;
    mipsel-*) echo qemu-mipsel ;;
    armv7-* | arm-*) echo qemu-arm ;;
    aarch64-*) echo qemu-aarch64 ;;
    *) die "no qemu-user emulator known for $1" ;;
    esac
}

known_triple() {
    local t
    for t in "${ROUTER_TRIPLES[@]}"; do [ "$t" = "$1" ] && return 0; done
    die "unknown triple '$1' (known: ${ROUTER_TRIPLES[*]})"
}

# Whether std must come from source: always for tier-3 MIPS (rustup has no
# std for it), and for armv7 (not installed as a rustup target here).
needs_build_std() {
    case $1 in
    aarch64-unknown-linux-musl) [ "${SHIPWORM_BUILD_STD:-0}" = 1 ] ;;
    *) return 0 ;;
    esac
}

# Sets TOOLCHAIN, BUILD_STD (array of cargo -Z flags) and FLAGS (rustflags)
# for triple $1 and profile $2 (release | small | test).
configure() {
    local triple=$1 profile=$2
    # crt-static: the MIPS musl targets default to dynamic linking
    # (crt_static_default=false); a router binary must not depend on the
    # router's libc version.
    FLAGS="-C target-feature=+crt-static"
    case $triple in
    # The MIPS musl targets compile position-independent (abicalls) code by
    # default, but a static MIPS binary is linked non-PIE anyway: every call
    # then still goes through the GOT (load, jalr, delay slot) for nothing.
    # Non-PIC code is ~9% smaller (lab: 523,932 -> 476,464 bytes on mipsel).
    mips*) FLAGS+=" -C relocation-model=static" ;;
    esac
    BUILD_STD=()
    if needs_build_std "$triple" || [ "$profile" = small ]; then
        TOOLCHAIN=$NIGHTLY
        # build-std does not produce rustup's "self-contained" crt objects
        # that rustc asks for with crt-static (crt1.o not found); zig brings
        # its own. Zig also notes that the sysroot lib directory build-std
        # leaves empty does not exist: harmless, silenced.
        FLAGS+=" -C link-self-contained=no -A linker_messages"
        case $profile in
        # The release profile's panic=abort clashes with the test harness
        # under build-std (E0152, std built twice): tests use the dev
        # profile and a plain build-std.
        test) BUILD_STD=(-Z build-std) ;;
        release) BUILD_STD=(-Z build-std=std,panic_abort) ;;
        small)
            BUILD_STD=(-Z build-std=std,panic_abort -Z build-std-features=optimize_for_size)
            # This nightly replaced the `panic_immediate_abort` std feature
            # by a real panic strategy. No panic message, no unwinding
            # machinery: a panic is an immediate trap.
            FLAGS+=" -Z unstable-options -C panic=immediate-abort"
            # Nothing unwinds and nothing prints a backtrace: the unwind
            # tables (.eh_frame, ~30 kB on mipsel) would be dead weight.
            FLAGS+=" -C force-unwind-tables=no"
            ;;
        esac
    else
        TOOLCHAIN=$STABLE
    fi
}

# cargo through cargo-zigbuild with the configured toolchain and flags.
# $1 = cargo-zigbuild subcommand (zigbuild | test), $2 = triple, rest = args.
zcargo() {
    local sub=$1 triple=$2
    shift 2
    say "RUSTUP_TOOLCHAIN=$TOOLCHAIN RUSTFLAGS='$FLAGS' cargo-zigbuild $sub --target $triple ${BUILD_STD[*]} $*"
    RUSTUP_TOOLCHAIN=$TOOLCHAIN RUSTFLAGS=$FLAGS \
        cargo-zigbuild "$sub" --target "$triple" "${BUILD_STD[@]}" "$@"
}

# Verifies that $1 is a static executable for triple $2: right class,
# endianness and machine; no ELF interpreter, no shared libraries; soft-float
# on MIPS (OpenWrt's MIPS userland is soft-float).
check_binary() {
    local f=$1 triple=$2 class data machine hdr prog dyn attrs
    [ -f "$f" ] || die "$f: missing"
    case $triple in
    mips-*) class=ELF32 data="big endian" machine=MIPS ;;
    mipsel-*) class=ELF32 data="little endian" machine=MIPS ;;
    armv7-*) class=ELF32 data="little endian" machine=ARM ;;
    aarch64-*) class=ELF64 data="little endian" machine=AArch64 ;;
    *) die "check: unknown triple $triple" ;;
    esac
    # Whole outputs first, then grep on here-strings: `readelf | grep -q`
    # under pipefail can fail on SIGPIPE and turn a match into a miss.
    hdr=$(readelf -h "$f") || die "$f: not an ELF file"
    prog=$(readelf -lW "$f")
    dyn=$(readelf -d "$f")
    grep -q "Class: *$class" <<<"$hdr" || die "$f: not $class"
    grep -q "Data: .*$data" <<<"$hdr" || die "$f: not $data"
    grep -q "Machine: *$machine" <<<"$hdr" || die "$f: machine is not $machine"
    grep -Eq "Type: *(EXEC|DYN)" <<<"$hdr" || die "$f: not an executable"
    if grep -q INTERP <<<"$prog"; then
        die "$f: dynamically linked: $(grep -o 'interpreter: [^]]*' <<<"$prog")"
    fi
    if grep -q NEEDED <<<"$dyn"; then
        die "$f: needs shared libraries: $(grep NEEDED <<<"$dyn" | tr -s ' ' | tr '\n' ';')"
    fi
    case $triple in
    mips*)
        attrs=$(readelf -A "$f")
        grep -q "FP ABI: *Soft float" <<<"$attrs" ||
            die "$f: not soft-float ($(grep 'FP ABI' <<<"$attrs" || echo 'no FP ABI record'))"
        ;;
    esac
    if command -v file >/dev/null; then
        local desc
        desc=$(file -b "$f")
        grep -Eq "statically linked|static-pie linked" <<<"$desc" || die "$f: file(1) says: $desc"
        echo "ok: $triple: $desc" >&2
    else
        echo "ok: $triple: static $class $data $machine" >&2
    fi
}

# Copies binary $1 to $2, stripped of everything not loaded at run time.
# The linker's --strip-all (profile `strip = true`) keeps non-allocated
# sections such as MIPS's .pdr (procedure descriptors, ~70 KB), which
# OpenWrt's own strip would drop anyway.
strip_to() {
    if command -v llvm-strip >/dev/null; then
        llvm-strip --strip-all -o "$2" "$1"
    else
        echo "warning: llvm-strip not found; $2 keeps non-loaded sections" >&2
        cp "$1" "$2"
    fi
}

cmd_build() {
    local triple out
    [ $# -gt 0 ] || set -- "${ROUTER_TRIPLES[@]}"
    for triple in "$@"; do
        known_triple "$triple"
        configure "$triple" release
        zcargo zigbuild "$triple" --locked --release -p shipworm
        out=$TGT/$triple/release/shipworm
        check_binary "$out" "$triple"
        mkdir -p "$TGT/dist/$triple"
        strip_to "$out" "$TGT/dist/$triple/shipworm"
        check_binary "$TGT/dist/$triple/shipworm" "$triple"
        echo "built: $TGT/dist/$triple/shipworm ($(stat -c %s "$TGT/dist/$triple/shipworm") bytes)"
    done
}

cmd_test() {
    local triple qemu var
    [ $# -gt 0 ] || set -- "${TEST_TRIPLES[@]}"
    for triple in "$@"; do
        known_triple "$triple"
        qemu=$(qemu_for "$triple")
        command -v "$qemu" >/dev/null || die "$qemu not found (apt-get install qemu-user)"
        configure "$triple" test
        # binfmt_misc is not mounted on CI machines: name the emulator.
        var=CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$triple")_RUNNER
        # Doctests are left to the host run (cross doctests need the same
        # build-std setup and add nothing architecture-specific).
        (
            # proptest's default 256 cases take ~40 s on qemu-mips: fine.
            export "$var=$qemu"
            zcargo test "$triple" --locked -p shipworm-core --lib --tests
        )
        echo "tests passed under $qemu: $triple"
    done
}

cmd_run() {
    [ $# -ge 1 ] || die "usage: cross/build.sh run TRIPLE [ARG...]"
    local triple=$1
    shift
    known_triple "$triple"
    local f=$TGT/dist/$triple/shipworm
    [ -x "$f" ] || die "$f: not built yet (cross/build.sh build $triple)"
    "$(qemu_for "$triple")" "$f" "$@"
}

# Writes the comparison program: a bare std hello-world with the workspace's
# release profile.
make_hello() {
    local dir=$TGT/cross-hello
    mkdir -p "$dir/src"
    cat >"$dir/Cargo.toml" <<'EOF'
[package]
name = "hello"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"
strip = true
EOF
    echo 'fn main() { println!("Hello, world!"); }' >"$dir/src/main.rs"
    echo "$dir"
}

# Size budget for the MIPS routers (the smallest flash): a static std
# program with networking measured 570 kB (release) and 160 kB (small) on
# mipsel (lab notes, default code generation); shipworm should be at most
# 150 kB more. Bytes, per profile. Exceeding it is reported loudly; it fails
# the run with SIZE_STRICT=1, as CI runs it.
BUDGET_release=720000
BUDGET_small=310000

cmd_size() {
    local triple profile dir hello sw hw rows=() over=()
    [ $# -gt 0 ] || set -- "${ROUTER_TRIPLES[@]}"
    hello=$(make_hello)
    for triple in "$@"; do
        known_triple "$triple"
        for profile in release small; do
            # build-std for every triple so the figures compare like with
            # like; separate target dirs so the two flag sets do not evict
            # each other's std. The hello-world shares the std build.
            SHIPWORM_BUILD_STD=1 configure "$triple" "$profile"
            dir=$TGT/size-$profile
            CARGO_TARGET_DIR=$dir zcargo zigbuild "$triple" --locked --release -p shipworm
            (cd "$hello" && CARGO_TARGET_DIR=$dir zcargo zigbuild "$triple" --release)
            mkdir -p "$dir/stripped/$triple"
            strip_to "$dir/$triple/release/shipworm" "$dir/stripped/$triple/shipworm"
            strip_to "$dir/$triple/release/hello" "$dir/stripped/$triple/hello"
            check_binary "$dir/stripped/$triple/shipworm" "$triple"
            check_binary "$dir/stripped/$triple/hello" "$triple"
            sw=$(stat -c %s "$dir/stripped/$triple/shipworm")
            hw=$(stat -c %s "$dir/stripped/$triple/hello")
            rows+=("| $triple | $profile | $sw | $hw | $((sw - hw)) |")
            case $triple in
            mips*)
                local budget_var=BUDGET_$profile
                [ "$sw" -le "${!budget_var}" ] ||
                    over+=("$triple/$profile: $sw bytes > ${!budget_var}")
                ;;
            esac
        done
    done
    echo
    echo "Stripped sizes in bytes (release = panic=abort, opt-level=z, LTO;"
    echo "small = release + optimize_for_size std + immediate-abort panics):"
    echo
    echo "| Triple | Profile | shipworm | std hello-world | difference |"
    echo "|---|---|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "MIPS budget: release <= $BUDGET_release bytes, small <= $BUDGET_small bytes."
    if [ ${#over[@]} -gt 0 ]; then
        if [ "${SIZE_STRICT:-0}" = 1 ]; then
            die "size budget exceeded: ${over[*]}"
        fi
        echo "WARNING: size budget exceeded: ${over[*]}" >&2
    fi
}

cmd_nostd() {
    local features
    # The default build proves the core is no_std on a bare-metal target with
    # rustup's prebuilt core+alloc; the build-std=core build proves it does
    # not link `alloc` either (alloc then does not exist at all).
    for features in "" "--features defmt"; do
        say "cargo +$STABLE build -p shipworm-core --target $NOSTD_TRIPLE $features"
        # shellcheck disable=SC2086
        cargo "+$STABLE" build --locked -p shipworm-core --target "$NOSTD_TRIPLE" $features
        say "cargo +$NIGHTLY build -Z build-std=core -p shipworm-core --target $NOSTD_TRIPLE $features"
        # shellcheck disable=SC2086
        CARGO_TARGET_DIR=$TGT/nostd-core cargo "+$NIGHTLY" build --locked -Z build-std=core \
            -p shipworm-core --target "$NOSTD_TRIPLE" $features
    done
    echo "no_std builds ok: $NOSTD_TRIPLE (default, defmt; prebuilt core+alloc and build-std=core)"
}

sub=${1:-}
[ $# -gt 0 ] && shift
case $sub in
build) cmd_build "$@" ;;
test) cmd_test "$@" ;;
run) cmd_run "$@" ;;
size) cmd_size "$@" ;;
nostd) cmd_nostd ;;
check)
    [ $# -eq 2 ] || die "usage: cross/build.sh check FILE TRIPLE"
    check_binary "$1" "$2"
    ;;
all)
    cmd_nostd
    cmd_build
    cmd_test
    ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
