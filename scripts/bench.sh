#!/usr/bin/env bash
# Runs the benchmark (courier vs. a per-partition baseline and an unordered ceiling, in one run).
# Installs Tansu when missing, builds in release mode, and passes its arguments on, e.g.:
#   scripts/bench.sh --quick
#   scripts/bench.sh --events 50000 --keys 10000 --latency-ms 20 --max-in-flight 512
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-tansu.sh >/dev/null
cargo build --release --locked -p bench
exec target/release/bench "$@"
