#!/usr/bin/env bash
# Reproduces Tansu 0.6.0 defect A (README.md): a group scales 1 -> 3 -> 1. Member a holds all 16 partitions and
# its revoke callback takes --revoke-secs seconds; b and c join, and leave again (SIGTERM, a clean LeaveGroup) while
# a is still in that callback. a never gets its partitions back. Plain confluent-kafka clients, no courier.
# Each run uses its own broker; prints one verdict line per run.
#   scripts/tansu-defects/repro-a.sh [--runs N (3)] [--revoke-secs S (3)] [--commit sync|none (sync)]
#                                    [--observe S (40)] [--keep-logs]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

runs=3
revoke_secs=3
commit=sync
observe=40
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2 && shift 2 ;;
    --revoke-secs) revoke_secs=$2 && shift 2 ;;
    --commit) commit=$2 && shift 2 ;;
    --observe) observe=$2 && shift 2 ;;
    --keep-logs) keep_logs=1 && shift ;;
    *) sed -n '2,7s/^# \{0,1\}//p' "$0" && exit 2 ;;
  esac
done
case $commit in sync | none) ;; *) echo "--commit takes sync or none" >&2 && exit 2 ;; esac

setup
reproduced=0
for run in $(seq 1 "$runs"); do
  start_run "$run"
  start_member a --commit "$commit" --revoke-secs "$revoke_secs"
  wait_for_held a 16 30 || fail "member a never held all 16 partitions" "$run_dir/a.log"
  sleep 5
  start_member b --commit "$commit" --drain 1
  b_pid=$member_pid
  start_member c --commit "$commit" --drain 1
  c_pid=$member_pid
  sleep 3
  stop_pids "$b_pid" "$c_pid"
  left=$(now)

  # Watch a for --observe seconds after b and c have left, or until it holds all 16 partitions again.
  verdict=""
  end=$(awk -v t="$left" -v o="$observe" 'BEGIN { printf "%.3f", t + o }')
  while awk -v t="$(now)" -v e="$end" 'BEGIN { exit !(t < e) }'; do
    if [ "$(held a)" = 16 ]; then
      verdict="not reproduced: a held all 16 partitions again $(secs "$left" "$(held_since a)") s after b and c left"
      break
    fi
    sleep 0.5
  done
  if [ -z "$verdict" ]; then
    verdict="defect A reproduced: a held $(held a) of 16 partitions for $observe s after b and c left"
    reproduced=$((reproduced + 1))
  fi
  echo "run $run/$runs: $verdict"
  stop_run
done
echo "defect A reproduced in $reproduced of $runs runs"
