#!/usr/bin/env bash
# Builds ios/AlcoveFFI.xcframework and the Swift bindings. Runs on a Mac with
# Xcode and rustup; not on Linux (no Apple linker, lipo or xcodebuild).
#   ios/build-xcframework.sh            # ffi-release, the shipping profile
#   PROFILE=debug ios/build-xcframework.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(uname -s)" = Darwin ] || { echo "build-xcframework.sh: needs macOS with Xcode" >&2; exit 1; }

profile="${PROFILE:-ffi-release}"
flag=(--profile "$profile"); [ "$profile" = debug ] && flag=()
device=aarch64-apple-ios
sims=(aarch64-apple-ios-sim x86_64-apple-ios)
target_dir="${CARGO_TARGET_DIR:-target}"
out=ios/build
lib=libalcove_ffi

rustup target add "$device" "${sims[@]}" >/dev/null
for t in "$device" "${sims[@]}"; do
  # IPHONEOS_DEPLOYMENT_TARGET matches Package.swift's platform.
  IPHONEOS_DEPLOYMENT_TARGET=15.0 cargo build --locked "${flag[@]}" -p alcove-ffi --target "$t"
done

rm -rf "$out" ios/AlcoveFFI.xcframework
mkdir -p "$out/headers" "$out/bindings" "$out/ios-simulator"
# One simulator slice holding both architectures.
lipo -create "$target_dir/aarch64-apple-ios-sim/$profile/$lib.a" \
  "$target_dir/x86_64-apple-ios/$profile/$lib.a" -output "$out/ios-simulator/$lib.a"

# Library mode: the interface is read from the built library itself.
cargo run --locked -q -p uniffi-bindgen -- generate \
  --library "$target_dir/$device/$profile/$lib.dylib" --language swift --out-dir "$out/bindings"
cp "$out/bindings/alcove_ffiFFI.h" "$out/headers/"
cp "$out/bindings/alcove_ffiFFI.modulemap" "$out/headers/module.modulemap"

xcodebuild -create-xcframework \
  -library "$target_dir/$device/$profile/$lib.a" -headers "$out/headers" \
  -library "$out/ios-simulator/$lib.a" -headers "$out/headers" \
  -output ios/AlcoveFFI.xcframework

mkdir -p ios/Sources/Alcove/Generated
cp "$out/bindings/alcove_ffi.swift" ios/Sources/Alcove/Generated/
echo "built ios/AlcoveFFI.xcframework ($profile) and ios/Sources/Alcove/Generated/alcove_ffi.swift"
