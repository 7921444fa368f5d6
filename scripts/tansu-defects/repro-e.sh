#!/usr/bin/env bash
# Reproduces Tansu 0.6.0 defect E (README.md): reading records back costs a scan of every header the broker
# stores, per record read, so a topic whose records carry headers reads in time that grows with the square of
# what it holds. For each count N, a fresh broker takes N records with 4 headers each (or none) on a new
# one-partition topic, and one plain confluent-kafka consumer reads them back from offset 0; prints one line per
# run with the read time. Each run uses its own broker.
#   scripts/tansu-defects/repro-e.sh [--counts "1000 2000 4000"] [--headers 4] [--timeout S (300)] [--keep-logs]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

counts="1000 2000 4000"
headers=4
timeout=300
while [ $# -gt 0 ]; do
  case $1 in
    --counts) counts=$2 && shift 2 ;;
    --headers) headers=$2 && shift 2 ;;
    --timeout) timeout=$2 && shift 2 ;;
    --keep-logs) keep_logs=1 && shift ;;
    *) sed -n '2,7s/^# \{0,1\}//p' "$0" && exit 2 ;;
  esac
done

setup
run=0
for n in $counts; do
  for h in 0 "$headers"; do
    run=$((run + 1))
    new_run "$run"
    start_broker
    "$py" "$here/clients.py" read "$bootstrap" "$n" "$h" --timeout "$timeout" >"$run_dir/read.log" 2>&1 ||
      fail "reading $n records with $h headers" "$run_dir/read.log"
    echo "run $run: $(tail -n 1 "$run_dir/read.log")"
    stop_run
  done
done
