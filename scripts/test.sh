#!/usr/bin/env bash
# Runs every test of Alcove: formatting, lints, and all test suites.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A one-shot run has no use for the incremental cache (3 GB of target/).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
echo "== disk free before the build: $(df -h . | awk 'NR == 2 { print $4 }')"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (with a throwaway PostgreSQL for the relay's PostgreSQL tests)"
log=$(mktemp)
pgdir=$(mktemp -d)
trap 'scripts/postgres.sh stop "$pgdir"; rm -rf "$pgdir" "$log"' EXIT
ALCOVE_TEST_POSTGRES=$(scripts/postgres.sh start "$pgdir")
export ALCOVE_TEST_POSTGRES ALCOVE_REQUIRE_POSTGRES=1
cargo test --workspace --locked 2>&1 | tee "$log"
echo "== Kotlin bindings: JUnit on the JVM against the native library"
android/run-tests.sh 2>&1 | tee -a "$log"
echo "== the phone library's size (ffi-release, stripped; fails over 8 MiB or with OpenSSL linked)"
scripts/lib-size.sh 2>&1 | grep -v "^ *Compiling " | tee -a "$log"
echo "== target/ after every suite: $(du -sh target 2>/dev/null | cut -f1), disk free: $(df -h . | awk 'NR == 2 { print $4 }')"
# One closing line over every suite (cargo's last line is a doc-test run;
# Surefire's is its own).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /Tests run: [0-9]+, Failures: [0-9]+, Errors: [0-9]+, Skipped: [0-9]+$/ {
       gsub(",", ""); p += $4 - $6 - $8 - $10; f += $6 + $8 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
