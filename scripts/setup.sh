#!/usr/bin/env bash
# Installs what a fresh machine lacks for building Alcove. Idempotent.
set -euo pipefail

need_apt=()
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v perl >/dev/null 2>&1 || need_apt+=(perl)   # vendored OpenSSL build (compiled, not linked)
# scripts/lib-size.sh (the size gate in test.sh): strip, nm, size.
{ command -v strip && command -v nm && command -v size; } >/dev/null 2>&1 || need_apt+=(binutils)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)   # Kotlin/JVM tests
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# The relay's PostgreSQL tests start a throwaway cluster (scripts/postgres.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi
