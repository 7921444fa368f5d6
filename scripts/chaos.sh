#!/usr/bin/env bash
# Runs the chaos suite (see RELIABILITY.md): the real binaries through a real broker, with consumers and the
# broker killed, a group scaled, API faults, poison records and the saga race; prints a Markdown report and
# exits non-zero when a scenario lost or doubled an effect. Installs Tansu when missing, builds in release mode,
# and passes its arguments on, e.g.:
#   scripts/chaos.sh                                  # every scenario, full size (about 10 minutes)
#   scripts/chaos.sh --quick                          # the short variant (a few minutes)
#   scripts/chaos.sh --scenario kill-consumers,poison --log-dir /tmp/chaos-logs
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-tansu.sh >/dev/null
cargo build --release --locked --bins
exec target/release/chaos "$@"
