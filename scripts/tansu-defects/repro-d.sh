#!/usr/bin/env bash
# Reproduces Tansu 0.6.0 defect D (README.md): with the cooperative-sticky assignor, a group scales 1 -> 3 -> 1.
# After b leaves, c's rejoin is held by the coordinator (3 s, twice) long enough for its 6 s session to expire:
# the coordinator drops c as dead while c still owns and consumes its partitions, and the leader a, answered with
# itself as the only member, assigns itself all 16. Plain confluent-kafka clients, no courier. The verdict comes
# from the members' logs (overlaps.py): partitions owned by two members at the same time, and for how long.
# Each run uses its own broker; prints one verdict line per run.
#   scripts/tansu-defects/repro-d.sh [--runs N (5)] [--leave seq|together (seq)] [--gap S|settle (12)]
#        [--revoke-secs S (0)] [--drain S (0)] [--commit sync|none (none)] [--assignor A (cooperative-sticky)]
#        [--session-timeout-ms MS (6000)] [--observe S (15)] [--keep-logs]
#   --leave seq  b leaves, then c --gap seconds later (settle: once a and c hold all 16 partitions between them)
#   --leave together  b and c leave at once
set -euo pipefail
source "$(dirname "$0")/lib.sh"

runs=5
leave=seq
gap=12
revoke_secs=0
drain=0
commit=none
assignor=cooperative-sticky
session_timeout_ms=6000
observe=15
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2 && shift 2 ;;
    --leave) leave=$2 && shift 2 ;;
    --gap) gap=$2 && shift 2 ;;
    --revoke-secs) revoke_secs=$2 && shift 2 ;;
    --drain) drain=$2 && shift 2 ;;
    --commit) commit=$2 && shift 2 ;;
    --assignor) assignor=$2 && shift 2 ;;
    --session-timeout-ms) session_timeout_ms=$2 && shift 2 ;;
    --observe) observe=$2 && shift 2 ;;
    --keep-logs) keep_logs=1 && shift ;;
    *) sed -n '2,12s/^# \{0,1\}//p' "$0" && exit 2 ;;
  esac
done
case $leave in seq | together) ;; *) echo "--leave takes seq or together" >&2 && exit 2 ;; esac
case $commit in sync | none) ;; *) echo "--commit takes sync or none" >&2 && exit 2 ;; esac

# Partitions the named members hold between them (distinct), from their last "owns" lines.
held_by() { # names…
  for name in "$@"; do awk '$3 == "owns" { p = $5 } END { print p }' "$run_dir/$name.log"; done |
    tr ',' '\n' | grep -v '^-\?$' | sort -u | wc -l
}

holds_some() { local n; n=$(held "$1"); [ -n "$n" ] && [ "$n" != 0 ]; } # name

wait_until_held_by() { # partitions timeout_s names…
  local want=$1 deadline
  deadline=$(awk -v t="$(now)" -v d="$2" 'BEGIN { printf "%.3f", t + d }')
  shift 2
  while awk -v t="$(now)" -v d="$deadline" 'BEGIN { exit !(t < d) }'; do
    [ "$(held_by "$@")" = "$want" ] && return 0
    sleep 0.2
  done
  return 1
}

setup
reproduced=0
member_opts=(--assignor "$assignor" --commit "$commit" --revoke-secs "$revoke_secs" --drain "$drain"
  --session-timeout-ms "$session_timeout_ms")
for run in $(seq 1 "$runs"); do
  start_run "$run"
  start_member a "${member_opts[@]}"
  wait_for_held a 16 30 || fail "member a never held all 16 partitions" "$run_dir/a.log"
  sleep 3
  start_member b "${member_opts[@]}"
  b_pid=$member_pid
  start_member c "${member_opts[@]}"
  c_pid=$member_pid
  # Until each of the three holds some partitions and all 16 are held, then 3 s of records flowing.
  settled=0
  for _ in $(seq 1 150); do
    if [ "$(held_by a b c)" = 16 ] && holds_some a && holds_some b && holds_some c; then
      settled=1 && break
    fi
    sleep 0.2
  done
  [ "$settled" = 1 ] || echo "run $run/$runs: warning: the group of three did not settle within 30 s" >&2
  sleep 3
  left=$(now)
  last_left=$left
  if [ "$leave" = together ]; then
    stop_pids "$b_pid" "$c_pid"
    how="b and c left together"
  else
    stop_pids "$b_pid"
    if [ "$gap" = settle ]; then
      wait_until_held_by 16 30 a c || echo "run $run/$runs: warning: a and c did not hold all 16 within 30 s" >&2
      how="c left once a and c held all 16, $(secs "$left" "$(now)") s after b"
    else
      sleep "$gap"
      how="c left $gap s after b"
    fi
    last_left=$(now)
    stop_pids "$c_pid"
  fi

  # Watch a for --observe seconds after the last leave, or until it holds all 16 partitions.
  end=$(awk -v t="$last_left" -v o="$observe" 'BEGIN { printf "%.3f", t + o }')
  while awk -v t="$(now)" -v e="$end" 'BEGIN { exit !(t < e) }'; do
    [ "$(held a)" = 16 ] && break
    sleep 0.5
  done
  a_held=$(held a)
  a_since=$(secs "$last_left" "$(held_since a)")
  sleep 1
  stop_run

  overlaps=$("$py" "$here/overlaps.py" --ref "$left" "$run_dir/a.log" "$run_dir/b.log" "$run_dir/c.log")
  if [ -n "$overlaps" ]; then
    verdict="defect D reproduced: $(awk '{
      printf "%spartitions %s owned by %s and %s at once for %s s (%s to %s s after b left; records received meanwhile: %s %s, %s %s)",
        (NR > 1 ? "; " : ""), $7, $2, $3, $4, $5, $6, $2, $8, $3, $9 }' <<<"$overlaps")"
    reproduced=$((reproduced + 1))
    # With RUST_LOG=warn,tansu_broker::coordinator=debug (or =info): members the coordinator dropped meanwhile.
    dropped=$(sed 's/\x1b\[[0-9;]*m//g' "$run_dir/broker.log" |
      awk '/missed heartbeat for [a-z]-/ { split($0, w, "missed heartbeat for "); split(w[2], m, "-"); split($0, t, "after "); printf "%s%s (%s after its last contact)", (n++ ? ", " : ""), m[1], t[2] }')
    [ -z "$dropped" ] || verdict="$verdict; the coordinator dropped for a missed heartbeat: $dropped"
  else
    verdict="not reproduced: no partition owned by two members at once; a held $a_held partitions $a_since s after the last leave"
  fi
  echo "run $run/$runs ($how): $verdict"
done
echo "defect D reproduced in $reproduced of $runs runs"
