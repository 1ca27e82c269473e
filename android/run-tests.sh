#!/usr/bin/env bash
# Runs the Kotlin suites. The Maven build itself builds the native library
# and the alcove binary (cargo), generates the Kotlin bindings from the
# library (UniFFI library mode), compiles, and runs the JUnit suite on the JVM
# against them and a real relay on loopback; then the Android glue on
# Robolectric against the same library and bindings.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
native="$(cd "$target" && pwd)/debug"
rm -rf android/target/generated-sources/uniffi
cd android
mvn -B -ntp -Dstyle.color=never -Dalcove.native.dir="$native" test
mvn -B -ntp -Dstyle.color=never -Dalcove.native.dir="$native" -f glue/pom.xml test   # Android glue on Robolectric
