# Sourced by the repro-*.sh scripts: the Python venv with confluent-kafka (.local/tansu-defects-venv), a
# private Tansu broker per run (sqlite storage in a temporary directory, a free loopback port), process
# bookkeeping, and the cleanup that stops everything started here when the script exits.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=$root/.local/tansu-defects-venv
py=$venv/bin/python
export PATH="$HOME/.cargo/bin:$PATH"
work=""
keep_logs=0
pids=()

setup() {
  if ! command -v tansu >/dev/null 2>&1; then
    echo "tansu is not on PATH nor in ~/.cargo/bin: scripts/install-tansu.sh installs it" >&2
    exit 1
  fi
  tansu --version 2>/dev/null | grep -q "0\.6\.0" || echo "warning: $(tansu --version 2>&1 | head -1), these notes are about 0.6.0" >&2
  if ! "$py" -c "import confluent_kafka" 2>/dev/null; then
    echo "creating $venv with confluent-kafka…"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet confluent-kafka
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/tansu-defects.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

# SIGTERM, up to 4 s to finish (members close and leave the group), then SIGKILL.
stop_pids() {
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$@" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

# Clients first, the broker last.
stop_run() {
  if [ ${#pids[@]} -gt 1 ]; then stop_pids "${pids[@]:1}"; fi
  if [ -n "${pids[0]:-}" ]; then stop_pids "${pids[0]}"; fi # empty while a killed broker is down
  pids=()
}

cleanup() {
  trap - EXIT INT TERM
  stop_run
  if [ "$keep_logs" = 1 ]; then
    echo "logs kept in $work"
  elif [ -n "$work" ]; then
    rm -rf "$work"
  fi
}

fail() { # message [log file]
  echo "error: $1" >&2
  if [ -n "${2:-}" ] && [ -f "$2" ]; then tail -n 20 "$2" >&2; fi
  keep_logs=1
  exit 1
}

# Sets up $run_dir and a free loopback port ($port, $bootstrap) for a run.
new_run() { # run number
  run_dir=$work/run-$1
  mkdir -p "$run_dir"
  port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  bootstrap=127.0.0.1:$port
}

# Starts Tansu (pids[0]) on $bootstrap with its sqlite storage in $run_dir, and waits until it listens. Called
# again after a kill, it restarts the broker on the same storage and port (broker.log is appended to).
start_broker() {
  (cd "$run_dir" && exec tansu broker --listener-url "tcp://$bootstrap" --advertised-listener-url "tcp://$bootstrap" \
    --storage-engine sqlite://repro.db) >>"$run_dir/broker.log" 2>&1 &
  pids[0]=$!
  local up=0
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1 && break; fi
    sleep 0.1
  done
  [ "$up" = 1 ] || fail "tansu did not open $bootstrap" "$run_dir/broker.log"
}

# Starts a broker (pids[0]), creates the topics and starts the producer; sets $run_dir and $bootstrap.
start_run() { # run number
  new_run "$1"
  start_broker
  "$py" "$here/clients.py" topics "$bootstrap" >"$run_dir/topics.log" 2>&1 || fail "creating topics" "$run_dir/topics.log"
  "$py" "$here/clients.py" produce "$bootstrap" 100 >"$run_dir/producer.log" 2>&1 &
  pids+=($!)
}

# Starts a member with its log in $run_dir/NAME.log and its pid in $member_pid.
start_member() { # name [member options…]
  local name=$1
  shift
  "$py" "$here/clients.py" member "$name" "$bootstrap" "$@" >"$run_dir/$name.log" 2>&1 &
  member_pid=$!
  pids+=("$member_pid")
}

now() { date +%s.%N; }

# Partitions a member holds according to its last assigned/revoking/revoked/lost line, and that line's time.
# Empty before the member's first assignment.
held() { awk '$3 ~ /^(assigned|revoking|revoked|lost)$/ { n = $NF } END { sub("total=", "", n); print n }' "$run_dir/$1.log"; }
held_since() { awk '$3 ~ /^(assigned|revoking|revoked|lost)$/ { t = $1 } END { print t }' "$run_dir/$1.log"; }

wait_for_held() { # name partitions timeout_s
  local deadline
  deadline=$(awk -v t="$(now)" -v d="$3" 'BEGIN { printf "%.3f", t + d }')
  while awk -v t="$(now)" -v d="$deadline" 'BEGIN { exit !(t < d) }'; do
    [ "$(held "$1")" = "$2" ] && return 0
    sleep 0.2
  done
  return 1
}

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; } # from to
