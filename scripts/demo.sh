#!/usr/bin/env bash
# Runs Alcove's demo: a relay on loopback, a therapist and a client (each an
# encrypted SQLite database), enrolment by invite, a conversation, a push
# wake-up and a sync. Everything it writes goes under DIR (default ./demo-data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --locked -q -p alcove-cli -- demo --data-dir "${1:-./demo-data}"
