#!/usr/bin/env bash
# Runs every test. Installs the Tansu broker the integration tests start (cached; skipped when present).
# Set COURIER_TEST_BOOTSTRAP=host:port to test against a running broker instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-tansu.sh
cargo test --workspace --locked "$@"
