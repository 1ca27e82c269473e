#!/usr/bin/env bash
# Builds the FFI library the way the phones ship it (the `ffi-release`
# profile of the workspace Cargo.toml), strips a copy and prints its size,
# then the biggest contributors. Exits 1 when the stripped library is over
# the budget (8 MiB unless ALCOVE_SIZE_BUDGET says otherwise, in bytes), so
# CI can gate on it.
#
#   scripts/lib-size.sh                      # the host target
#   scripts/lib-size.sh --target aarch64-linux-android
#
# A cold build takes several minutes (fat LTO over one codegen unit).
set -euo pipefail
cd "$(dirname "$0")/.."

budget=${ALCOVE_SIZE_BUDGET:-8388608}
target_args=()
triple=""
while [ $# -gt 0 ]; do
    case "$1" in
        --target)
            triple=${2:?--target needs a target triple}
            target_args=(--target "$triple")
            shift 2
            ;;
        *)
            echo "usage: $0 [--target <triple>]" >&2
            exit 2
            ;;
    esac
done

# A Linux cross target (e.g. aarch64-unknown-linux-gnu, the same code
# generation as Android's arm64-v8a without the NDK) builds with the
# distribution's cross compiler and binutils when they are installed
# (Debian: gcc-aarch64-linux-gnu).
tool_prefix=""
link_args=()
case "$triple" in
    *-unknown-linux-gnu)
        arch=${triple%%-*}
        if command -v "$arch-linux-gnu-gcc" >/dev/null; then
            tool_prefix="$arch-linux-gnu-"
            upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')
            lower=$(echo "$triple" | tr '-' '_')
            export "CARGO_TARGET_${upper}_LINKER=${tool_prefix}gcc"
            export "CC_${lower}=${tool_prefix}gcc"
            export "AR_${lower}=${tool_prefix}ar"
        fi
        # Link it as the NDK links Android's arm64 library: with lld and
        # Android's packed relocations (ffi/build.rs), so the figure is the
        # one a phone's copy would show.
        # (The cross gcc's -fuse-ld=lld looks for a prefixed name, so it
        # is handed lld as its plain `ld` through -B.)
        if command -v ld.lld >/dev/null; then
            export ALCOVE_PACK_RELOCS=android
            lld_dir=$(mktemp -d)
            ln -s "$(command -v ld.lld)" "$lld_dir/ld"
            link_args=(-C "link-arg=-B$lld_dir")
        fi
        ;;
esac

# The profile strips symbols itself; this one build keeps them (for the
# last crate only, so the dependencies stay as the profile built them) so
# that the contributors below can be named. The size printed is that of a
# copy stripped here: the bytes a phone ships.
cargo rustc -p alcove-ffi --lib --profile ffi-release --locked "${target_args[@]}" \
    -- -C strip=none "${link_args[@]}" >&2

target_dir=${CARGO_TARGET_DIR:-target}
out_dir="$target_dir/${triple:+$triple/}ffi-release"
lib="$out_dir/libalcove_ffi.so"
[ -f "$lib" ] || { echo "no library at $lib" >&2; exit 1; }

strip_tool=${tool_prefix}strip
nm_tool=${tool_prefix}nm
if { [ -n "$triple" ] && [ -z "$tool_prefix" ]; } || ! command -v "$strip_tool" >/dev/null; then
    strip_tool=llvm-strip
    nm_tool=llvm-nm
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$strip_tool" --strip-all -o "$work/libalcove_ffi.so" "$lib"
bytes=$(stat -c %s "$work/libalcove_ffi.so")

echo "== sections of the stripped library (bytes)"
"${tool_prefix}size" -A "$work/libalcove_ffi.so" | awk '$2 ~ /^[0-9]+$/ && $2 >= 16384 { printf "  %-22s %10d\n", $1, $2 }'

# Symbol sizes grouped by where they come from: Rust symbols by crate (the
# first path segment after demangling), C symbols by library prefix.
echo "== biggest contributors (symbol bytes, before strip)"
"$nm_tool" --size-sort --print-size --radix=d --demangle=rust "$lib" 2>/dev/null | awk '
    $3 ~ /^[tTrRdDbB]$/ {
        size = $2 + 0; name = $4
        for (i = 5; i <= NF; i++) name = name " " $i
        sub(/^</, "", name)            # <T as Trait>::f -> T as Trait...
        sub(/^_</, "", name)
        if (name ~ /^(sqlite3|sqlcipher)/)                  owner = "[C] SQLCipher"
        else if (name ~ /^(ring_core_|GFp_|RING_)/)          owner = "[C] ring"
        else if (name ~ /^(uniffi_|ffi_alcove)/)             owner = "[exported UniFFI scaffolding]"
        else if (name ~ /::/) { owner = name; sub(/::.*/, "", owner); sub(/^.* as /, "", owner) }
        else                                                 owner = "[other C: SQLite internals]"
        total[owner] += size
    }
    END { for (o in total) printf "%10d  %s\n", total[o], o }
' | sort -rn | head -25

# SQLCipher's provider is sqlcipher-crypto (RustCrypto): OpenSSL still
# compiles (libsqlite3-sys's vendored feature) but none of it may be linked.
openssl=$("$nm_tool" --defined-only "$lib" 2>/dev/null | grep -cE ' [TtDdRr] (EVP_|OSSL_|CRYPTO_malloc|ERR_get_error|SHA512_Update)' || true)
echo "== OpenSSL symbols in the library: $openssl"
if [ "$openssl" -ne 0 ]; then
    echo "OpenSSL is linked: SQLCipher is not using sqlcipher-crypto (see .cargo/config.toml)" >&2
    exit 1
fi

mib=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
budget_mib=$(awk -v b="$budget" 'BEGIN { printf "%.2f", b / 1048576 }')
echo "== libalcove_ffi.so (${triple:-host}, ffi-release, stripped): $bytes bytes = $mib MiB (budget $budget bytes = $budget_mib MiB)"
if [ "$bytes" -gt "$budget" ]; then
    echo "over budget by $((bytes - budget)) bytes" >&2
    exit 1
fi
