#!/usr/bin/env bash
# Reproduces Tansu 0.6.0 defect C (README.md): an idempotent producer (acks=all, message.timeout.ms 5000 as in
# courier) writes 100 records/s; the broker is killed with SIGKILL mid-stream and restarted on the same storage
# and port DOWN seconds later. Records time out during the outage, librdkafka bumps the producer's epoch, the
# broker's storage task panics on the bumped epoch, and from then on nobody can publish: the old producer gets
# "Unknown broker error", a new idempotent producer and a non-idempotent one deliver nothing. Plain
# confluent-kafka clients, no courier. Each run uses its own broker; prints one verdict line per run.
#   scripts/tansu-defects/repro-c.sh [--runs N (3)] [--down S (6)] [--idle-kill] [--freeze] [--consumer]
#        [--recover stop-old|keep-old] [--message-timeout-ms MS (5000)] [--observe S (20)] [--keep-logs]
#   --idle-kill  the old producer produces nothing from 2 s before the kill until the restart
#   --freeze     SIGSTOP the broker for DOWN seconds, then SIGCONT, instead of kill -9 and a restart
#   --consumer   also a consumer-group member, in the group (all 16 partitions) before the kill
#   --recover    afterwards the broker is killed and restarted once more, the old producer stopped before
#                (stop-old) or still running (keep-old), and a third idempotent producer tries for 10 s
set -euo pipefail
source "$(dirname "$0")/lib.sh"

runs=3
down=6
idle_kill=0
freeze=0
consumer=0
recover=""
message_timeout_ms=5000
observe=20
new_after=5 # the new producers start this long after the restart
rate=100
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2 && shift 2 ;;
    --down) down=$2 && shift 2 ;;
    --idle-kill) idle_kill=1 && shift ;;
    --freeze) freeze=1 && shift ;;
    --consumer) consumer=1 && shift ;;
    --recover) recover=$2 && shift 2 ;;
    --message-timeout-ms) message_timeout_ms=$2 && shift 2 ;;
    --observe) observe=$2 && shift 2 ;;
    --keep-logs) keep_logs=1 && shift ;;
    *) sed -n '2,14s/^# \{0,1\}//p' "$0" && exit 2 ;;
  esac
done
case $recover in "" | stop-old | keep-old) ;; *) echo "--recover takes stop-old or keep-old" >&2 && exit 2 ;; esac

# KEY=value of the last EVENT line of a client's log, or of the last one before epoch time BEFORE.
kv() { # log event key [before]
  awk -v e="$2" -v k="$3" -v b="${4:-}" '$3 == e && (b == "" || $1 < b) {
    for (i = 4; i <= NF; i++) if (index($i, k "=") == 1) v = substr($i, length(k) + 2) } END { print v }' "$1"
}
n() { echo "${1:-0}"; } # a count, 0 when missing
# A producer's failed records of one kind (UNKNOWN, _MSG_TIMED_OUT, ...), from its last status line before BEFORE.
errors_of() { # log kind before
  kv "$1" status errors "$3" | tr ',' '\n' | awk -F: -v k="$2" '$1 == k { print $2 }' | grep . || echo 0
}
# A producer's KEY count between two epoch times, from its status lines (one a second).
count_between() { # log key from to
  echo $(($(n "$(kv "$1" status "$2" "$4")") - $(n "$(kv "$1" status "$2" "$3")")))
}
wait_for_line() { # log event timeout_s
  local deadline
  deadline=$(awk -v t="$(now)" -v d="$3" 'BEGIN { printf "%.3f", t + d }')
  while awk -v t="$(now)" -v d="$deadline" 'BEGIN { exit !(t < d) }'; do
    awk -v e="$2" '$3 == e { found = 1 } END { exit !found }' "$1" && return 0
    sleep 0.2
  done
  return 1
}
# Starts a producer (clients.py producer) with its pid in $producer_pid, its lines in $run_dir/NAME.log and
# librdkafka's log in $run_dir/NAME.err (apart: librdkafka's threads would cut into the lines).
producer() { # name [producer options…]
  local name=$1
  shift
  "$py" "$here/clients.py" producer "$name" "$bootstrap" --rate "$rate" --message-timeout-ms "$message_timeout_ms" \
    "$@" >"$run_dir/$name.log" 2>"$run_dir/$name.err" &
  producer_pid=$!
  pids+=("$producer_pid")
}
kill_broker() {
  { kill -KILL "${pids[0]}" && wait "${pids[0]}"; } 2>/dev/null || true
  pids[0]=""
}

setup
reproduced=0
what="killed, restarted $down s later"
after="the restart"
if [ "$freeze" = 1 ]; then what="frozen for $down s" && after="SIGCONT"; fi
[ "$idle_kill" = 1 ] && what="$what, producer idle at the kill"
for run in $(seq 1 "$runs"); do
  new_run "$run"
  start_broker
  "$py" "$here/clients.py" topics "$bootstrap" >"$run_dir/topics.log" 2>&1 || fail "creating topics" "$run_dir/topics.log"
  if [ "$consumer" = 1 ]; then
    start_member member
    wait_for_held member 16 30 || fail "the member never held all 16 partitions" "$run_dir/member.log"
  fi
  # The old producer (the order API's, say), with librdkafka's idempotence log (epoch bumps) in its log.
  producer old --debug eos --pause-file "$run_dir/pause" --flush 2
  old_pid=$producer_pid
  wait_for_line "$run_dir/old.log" status 30 || fail "the producer did not start" "$run_dir/old.log"
  sleep 8 # about 900 records delivered
  if [ "$idle_kill" = 1 ]; then touch "$run_dir/pause" && sleep 2; fi
  if [ "$freeze" = 1 ]; then
    kill -STOP "${pids[0]}"
    sleep "$down"
    kill -CONT "${pids[0]}"
  else
    kill_broker
    sleep "$down"
    start_broker # same storage, same port
  fi
  restarted=$(now)
  rm -f "$run_dir/pause"

  # A new idempotent producer (new process, new producer id) and a non-idempotent one.
  sleep "$new_after"
  producer new --duration "$observe"
  producer plain --plain --duration "$observe"
  wait_for_line "$run_dir/new.log" done $((observe + 20)) || true
  wait_for_line "$run_dir/plain.log" done 20 || true
  observed=$(now)
  if [ "$consumer" = 1 ]; then
    consumed=$(($(n "$(kv "$run_dir/member.log" status consumed)") - $(n "$(kv "$run_dir/member.log" status consumed "$restarted")")))
    member="; the member held $(held member) partitions $(secs "$restarted" "$observed") s after $after (since"
    member="$member $(secs "$restarted" "$(held_since member)") s after it), consumed $consumed records after $after"
  fi

  if [ -n "$recover" ]; then
    [ "$recover" = stop-old ] && stop_pids "$old_pid"
    kill_broker
    sleep 1
    start_broker
    sleep 3
    producer again --duration 10
    wait_for_line "$run_dir/again.log" done 30 || true
  fi
  stop_pids "$old_pid" # (if still running) it flushes for 2 s and writes its done line

  old_failed=$(count_between "$run_dir/old.log" failed "$restarted" "$observed")
  old_delivered=$(count_between "$run_dir/old.log" delivered "$restarted" "$observed")
  old_unknown=$(errors_of "$run_dir/old.log" UNKNOWN "$observed")
  old_timed_out=$(errors_of "$run_dir/old.log" _MSG_TIMED_OUT "$observed")
  epoch=$({ grep -a 'bumped epoch to PID' "$run_dir/old.err" || true; } | awk -F'|' -v o="$observed" '$2 < o { e = $0 }
    END { if (e != "") { sub(/.*bumped epoch to PID[{]Id:[0-9]*,Epoch:/, "", e); sub(/[}].*/, "", e); print e } }')
  panics=$({ grep -ao 'panicked at [^ ]*' "$run_dir/broker.log" || true; } | sed 's/.*src\///; s/:[0-9]*:$//' |
    sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
  facts="after $after the old producer got $old_failed errors ($old_unknown Unknown broker error) and delivered"
  facts="$facts $old_delivered ($old_timed_out of its records timed out in all;"
  facts="$facts $([ -n "$epoch" ] && echo "librdkafka bumped its epoch from 0 to $epoch" || echo "no epoch bump"));"
  facts="$facts a new idempotent producer delivered $(n "$(kv "$run_dir/new.log" done delivered)") of"
  facts="$facts $(n "$(kv "$run_dir/new.log" done sent)") records; a non-idempotent producer delivered"
  facts="$facts $(n "$(kv "$run_dir/plain.log" done delivered)") of $(n "$(kv "$run_dir/plain.log" done sent)")"
  [ "$consumer" = 1 ] && facts="$facts$member"
  if [ -n "$recover" ]; then
    facts="$facts; broker restarted again with the old producer $([ "$recover" = stop-old ] && echo stopped || echo running):"
    facts="$facts a third producer delivered $(n "$(kv "$run_dir/again.log" done delivered)") of $(n "$(kv "$run_dir/again.log" done sent)")"
  fi
  facts="$facts; broker panics: ${panics:-none}"
  new_sent=$(kv "$run_dir/new.log" done sent)
  new_delivered=$(kv "$run_dir/new.log" done delivered)
  if grep -q 'lite.rs:503' "$run_dir/broker.log" && [ "$(n "$new_delivered")" = 0 ]; then
    verdict="defect C reproduced: $facts"
    reproduced=$((reproduced + 1))
  elif [ -z "$panics" ] && [ -n "$new_sent" ] && [ "$new_delivered" = "$new_sent" ]; then
    verdict="not reproduced: $facts"
  else
    verdict="inconclusive: $facts"
  fi
  echo "run $run/$runs ($what): $verdict"
  stop_run
done
echo "defect C reproduced in $reproduced of $runs runs"
