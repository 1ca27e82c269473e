#!/usr/bin/env bash
# Builds the native library and the alcove binary, generates the Kotlin
# bindings from the library (UniFFI library mode) and runs the JUnit suite on
# the JVM against them and a real relay on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
# --workspace: the same feature set as `cargo test --workspace`, so nothing rebuilds.
cargo build --workspace --locked -q
native="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug"
out=android/target/generated-sources/uniffi
rm -rf "$out" && mkdir -p "$out"
"$native/uniffi-bindgen" generate --no-format --library "$native/libalcove_ffi.so" \
  --language kotlin --out-dir "$out" >/dev/null
cd android
mvn -B -ntp -Dstyle.color=never -Dalcove.native.dir="$native" test
mvn -B -ntp -Dstyle.color=never -Dalcove.native.dir="$native" -f glue/pom.xml test   # Android glue on Robolectric
