#!/usr/bin/env bash
# Runs the benchmark (courier vs. a per-partition baseline and an unordered ceiling, in one run; see
# BENCHMARKS.md). Installs Tansu when missing, builds in release mode, and passes its arguments on, e.g.:
#   scripts/bench.sh                 # the full matrix, open-loop latency and producer side (about 30 minutes)
#   scripts/bench.sh --quick         # the target scenario only, short windows (under two minutes)
#   scripts/bench.sh --forward       # the `forward` rows alone: CPU per event by record format
#   scripts/bench.sh --latency-ms 20 --keys 10000 --max-in-flight 64,512 --no-producer
# It prints Markdown; `target/release/bench --help` lists every option.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-tansu.sh >/dev/null
cargo build --release --locked -p bench
# courier is measured as the binary a user runs.
cargo build --release --locked -p courier-consumers --bin inventory --bin forward
exec target/release/bench "$@"
