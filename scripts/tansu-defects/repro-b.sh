#!/usr/bin/env bash
# Reproduces Tansu 0.6.0 defect B (README.md): the only member of a group is killed with SIGKILL and a new
# member joins DELAY seconds later, while the dead member is still the group's leader. The new member ends up
# with an empty assignment and the group never rebalances again. Plain confluent-kafka clients, no courier.
# Each run uses its own broker; prints one verdict line per run.
#   scripts/tansu-defects/repro-b.sh [--runs N (3)] [--delay S (2.5)] [--observe S (40)] [--keep-logs]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

runs=3
delay=2.5
observe=40
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2 && shift 2 ;;
    --delay) delay=$2 && shift 2 ;;
    --observe) observe=$2 && shift 2 ;;
    --keep-logs) keep_logs=1 && shift ;;
    *) sed -n '2,6s/^# \{0,1\}//p' "$0" && exit 2 ;;
  esac
done

setup
reproduced=0
for run in $(seq 1 "$runs"); do
  start_run "$run"
  # Same client.id for both, as a restarted service would have.
  start_member old --client-id courier-inventory
  old_pid=$member_pid
  wait_for_held old 16 30 || fail "the first member never held all 16 partitions" "$run_dir/old.log"
  sleep 8
  start_member new --client-id courier-inventory --go-file "$run_dir/go" --delay "$delay"
  for _ in $(seq 1 100); do # until the new process has finished its imports
    grep -q ' waiting ' "$run_dir/new.log" && break
    sleep 0.1
  done
  { kill -KILL "$old_pid" && wait "$old_pid"; } 2>/dev/null || true
  killed=$(now)
  touch "$run_dir/go"

  # Watch until the new member holds all 16 partitions, or for --observe seconds after its first assignment.
  verdict=""
  end=$(awk -v t="$killed" -v d="$delay" -v o="$observe" 'BEGIN { printf "%.3f", t + d + o + 30 }')
  while awk -v t="$(now)" -v e="$end" 'BEGIN { exit !(t < e) }'; do
    n=$(held new)
    if [ "$n" = 16 ]; then
      verdict="not reproduced: 16 partitions $(secs "$killed" "$(held_since new)") s after the kill"
      break
    fi
    if [ -n "$n" ]; then
      since=$(held_since new)
      if awk -v t="$(now)" -v s="$since" -v o="$observe" 'BEGIN { exit !(t - s >= o) }'; then
        verdict="defect B reproduced: restarted member got $n partitions $(secs "$killed" "$since") s after the kill and stayed at $n for $observe s"
        reproduced=$((reproduced + 1))
        break
      fi
    fi
    sleep 0.5
  done
  joined=$(awk '$3 == "subscribed" { print $1 }' "$run_dir/new.log")
  [ -n "$verdict" ] || verdict="inconclusive: restarted member holds '$(held new)' partitions after $(secs "$killed" "$(now)") s"
  echo "run $run/$runs (joined $(secs "$killed" "${joined:-$killed}") s after the kill): $verdict"
  stop_run
done
echo "defect B reproduced in $reproduced of $runs runs"
