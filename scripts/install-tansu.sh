#!/usr/bin/env bash
# Installs the Tansu broker (a Kafka-protocol broker) that the run command and the tests use.
# Skips the build when `tansu` 0.6.0 is already on PATH or in ~/.cargo/bin. First build: ~12 min on 2 cores.
set -euo pipefail

TANSU_VERSION="0.6.0"
export PATH="$HOME/.cargo/bin:$PATH"

if command -v tansu >/dev/null 2>&1 && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  echo "tansu $TANSU_VERSION already installed: $(command -v tansu)"
  exit 0
fi

echo "installing tansu $TANSU_VERSION from crates.io (one-time, ~12 minutes on two cores)…"
cargo install tansu --locked --version "$TANSU_VERSION" --features dynostore,libsql
tansu --version
