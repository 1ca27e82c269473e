#!/usr/bin/env bash
# The FFI benchmark (issue #5), release builds, one run, ratios against a
# baseline measured in the same run:
#  (a) one cheap AlcoveClient call (is_locked, account_id) from Kotlin
#      through the generated bindings (JNA) vs the same call from Rust;
#  (b) 1,000 messages queued at a loopback relay and synced on one wake,
#      AlcoveClient.sync called from Kotlin vs from Rust (µs/message);
# and the stripped size of the release libalcove_ffi.so.
# Not part of scripts/test.sh (slow). Needs Maven (as run-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -q -p alcove-ffi -p alcove-cli -p uniffi-bindgen
native="$(cd "$target" && pwd)/release"
out=android/target/generated-sources/uniffi
rm -rf "$out" && mkdir -p "$out"
"$native/uniffi-bindgen" generate --no-format --library "$native/libalcove_ffi.so" \
  --language kotlin --out-dir "$out" >/dev/null

work="$(mktemp -d)"
relay_pid=""
cleanup() {
  if [ -n "$relay_pid" ]; then kill "$relay_pid" 2>/dev/null || true; wait "$relay_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
# The benchmark queues 1,000 signed messages from one sender on purpose:
# the relay's rate limits (which would stop such a flood) are off here.
off='{ count = 0, window_secs = 1 }'
cat >"$work/relay.toml" <<TOML
[rate_limits]
sends_per_account = $off
signed_sends_per_pair = $off
bundle_fetches_per_requester = $off
bundle_fetches_per_target = $off
registrations_per_address = $off
failed_auth_per_address = $off
TOML
"$native/alcove" relay --config "$work/relay.toml" --db "$work/relay.db" --bind "127.0.0.1:$port" >"$work/relay.log" 2>&1 &
relay_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

results="$work/results"
rust() {
  echo "== Rust (cargo bench -p alcove-ffi --bench ffi)"
  ALCOVE_BENCH_RELAY_URL="$url" ALCOVE_BENCH_RELAY_DB="$work/relay.db" \
    cargo bench --locked -q -p alcove-ffi --bench ffi 2>/dev/null | tee -a "$results"
}
# Rust before and after Kotlin; every number is the best round of all runs
# (this machine is shared: load only ever adds time).
rust
echo "== Kotlin (JVM, JNA, release library)"
(cd android && mvn -B -q -ntp -Dstyle.color=never -Dalcove.native.dir="$native" -Dalcove.skipNative=true test-compile \
  org.codehaus.mojo:exec-maven-plugin:3.5.0:java -Dexec.classpathScope=test \
  -Dexec.mainClass=org.alcove.bench.FfiBenchKt -Djna.library.path="$native" \
  -Dalcove.bin="$native/alcove" -Dalcove.bench.relay.url="$url" \
  -Dalcove.bench.relay.db="$work/relay.db") | sed 's/\x1b\[[0-9;]*m//g' | tee -a "$results"
rust

lib="$work/libalcove_ffi.so"
cp "$native/libalcove_ffi.so" "$lib"
strip "$lib"
awk -v full="$(stat -c %s "$native/libalcove_ffi.so")" -v stripped="$(stat -c %s "$lib")" '
  $1 == "RESULT" && (!($2 in v) || $3 < v[$2]) { v[$2] = $3 }
  END {
    printf "\n%-40s %12s %12s %8s\n", "measurement", "Rust", "Kotlin", "ratio"
    printf "%-40s %9.1f ns %9.1f ns %7.1fx\n", "is_locked() per call", v["rust.is_locked_ns"], v["kotlin.is_locked_ns"], v["kotlin.is_locked_ns"] / v["rust.is_locked_ns"]
    printf "%-40s %9.1f ns %9.1f ns %7.1fx\n", "account_id() per call", v["rust.account_id_ns"], v["kotlin.account_id_ns"], v["kotlin.account_id_ns"] / v["rust.account_id_ns"]
    printf "%-40s %9.1f us %9.1f us %7.2fx\n", "sync of 1,000 queued messages, per msg", v["rust.sync_us_per_msg"], v["kotlin.sync_us_per_msg"], v["kotlin.sync_us_per_msg"] / v["rust.sync_us_per_msg"]
    printf "%-40s %9.1f ns\n", "boundary cost (Kotlin - Rust, is_locked)", v["kotlin.is_locked_ns"] - v["rust.is_locked_ns"]
    printf "\nlibalcove_ffi.so (release, x86_64): %.2f MiB, stripped %.2f MiB\n", full / 1048576, stripped / 1048576
  }' "$results"
