#!/usr/bin/env bash
# Runs courier locally: builds it, installs and starts the Tansu broker (sqlite storage under .local/),
# starts the mock APIs, the producer, the consumers (every binary of consumers/src/bin/,
# which a test holds to consumers/src/registry.rs) and `forward` with config/examples/user-registration.toml, sends sample orders (one with a declined
# payment) and shows what arrived at each API.
# Keeps running until Ctrl-C, then stops every process it started.
#
# Settings: any COURIER__* variable (see config/default.toml) is passed on to the services, and
# MOCK_APIS_FAIL_BODY_CONTAINS to the mock APIs (an outage for one customer, docs/dead-letters.md). Ports:
#   COURIER_KAFKA_PORT (9092), COURIER_PRODUCER_PORT (8080), COURIER_MOCK_PORT (8090), COURIER_HEALTH_PORT
#   (8081; the consumers' health servers use it and the next ports, one each); data: COURIER_DATA_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
data=${COURIER_DATA_DIR:-$root/.local}
kafka_port=${COURIER_KAFKA_PORT:-9092}
producer_port=${COURIER_PRODUCER_PORT:-8080}
mock_port=${COURIER_MOCK_PORT:-8090}
health_base=${COURIER_HEALTH_PORT:-8081}
export PATH="$HOME/.cargo/bin:$PATH"
# Every consumer binary but forward (started below with its example routes): the registered consumers.
consumers=$(cd consumers/src/bin && ls -- *.rs | sed 's/\.rs$//' | grep -vx forward | tr '\n' ' ')
consumers=${consumers% }
read -r -a consumer_list <<<"$consumers"
health_ports=()
# One health port per consumer, and the last one for forward (the user-registration routes).
for ((i = 0; i <= ${#consumer_list[@]}; i++)); do health_ports+=($((health_base + i))); done

for port in "$kafka_port" "$producer_port" "$mock_port" "${health_ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use: stop what listens there or choose another port (see the top of $0)" >&2
    exit 1
  fi
done

scripts/install-tansu.sh
echo "building courier (release)…"
# The commit the binaries report in courier_build_info.
export COURIER_GIT_SHA=${COURIER_GIT_SHA:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
cargo build --release --locked --bin producer --bin mock-apis --bin demo --bin forward --bin courier-dlq --bin ${consumers// / --bin }
# Where cargo put them: CARGO_TARGET_DIR when set (relative to the repository, as cargo reads it), else target/.
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
bin=$target/release

mkdir -p "$data/tansu" "$data/logs"
pids=()
stop_all() {
  trap - EXIT INT TERM
  if [ ${#pids[@]} -gt 0 ]; then
    echo
    echo "stopping ${#pids[@]} processes, the broker last…"
    # Newest first: consumers and producer finish their work and commit while the broker is still up.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      kill -TERM "${pids[i]}" 2>/dev/null || true
      wait "${pids[i]}" 2>/dev/null || true
    done
  fi
  echo "stopped. Logs are in $data/logs."
}
trap stop_all EXIT
trap 'exit 130' INT TERM

wait_for_port() { # name port
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not open port $2; see $data/logs/$1.log" >&2
  exit 1
}

echo "starting tansu on 127.0.0.1:$kafka_port (sqlite storage in $data/tansu)"
(cd "$data/tansu" && exec setsid tansu broker \
  --listener-url "tcp://127.0.0.1:$kafka_port" --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
  --storage-engine sqlite://courier.db) >"$data/logs/tansu.log" 2>&1 &
pids+=($!)
wait_for_port tansu "$kafka_port"

# The services take their settings from COURIER__* variables; short group timeouts suit a local broker.
export COURIER__KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:$kafka_port"
export COURIER__KAFKA__SESSION_TIMEOUT_MS=${COURIER__KAFKA__SESSION_TIMEOUT_MS:-6000}
export COURIER__KAFKA__HEARTBEAT_INTERVAL_MS=${COURIER__KAFKA__HEARTBEAT_INTERVAL_MS:-1500}
export COURIER__KAFKA__MAX_POLL_INTERVAL_MS=${COURIER__KAFKA__MAX_POLL_INTERVAL_MS:-15000}
# Tansu 0.6.0's group coordinator can leave a restarted member without partitions, or lose a member that rejoins
# late after a rebalance (RELIABILITY.md): rejoin when unassigned for 15 s, and keep the revoke short.
export COURIER__KAFKA__REJOIN_UNASSIGNED_AFTER_MS=${COURIER__KAFKA__REJOIN_UNASSIGNED_AFTER_MS:-15000}
export COURIER__CONSUMER__REBALANCE_TIMEOUT_MS=${COURIER__CONSUMER__REBALANCE_TIMEOUT_MS:-1000}
export COURIER__TOPICS__PARTITIONS=${COURIER__TOPICS__PARTITIONS:-8}
export COURIER__PRODUCER__LISTEN="127.0.0.1:$producer_port"
# Every API of config/default.toml (one per API a registered consumer calls: a test checks it) and of the
# forward example points at the mock APIs.
for api in $(sed -n 's/^\[apis\.\([a-z_]*\)\]$/\1/p' config/default.toml config/examples/*.toml | grep -vx defaults | sort -u); do
  export "COURIER__APIS__$(echo "$api" | tr '[:lower:]' '[:upper:]')__BASE_URL=http://127.0.0.1:$mock_port/$api"
done
export COURIER__TELEMETRY__LOG_FORMAT=${COURIER__TELEMETRY__LOG_FORMAT:-pretty}

echo "starting mock APIs on 127.0.0.1:$mock_port"
setsid "$bin/mock-apis" --listen "127.0.0.1:$mock_port" >"$data/logs/mock-apis.log" 2>&1 &
pids+=($!)
wait_for_port mock-apis "$mock_port"

echo "starting the producer on 127.0.0.1:$producer_port (it creates orders.created)"
setsid "$bin/producer" >"$data/logs/producer.log" 2>&1 &
pids+=($!)
wait_for_port producer "$producer_port"

health_port=$health_base
for consumer in "${consumer_list[@]}"; do
  echo "starting the $consumer consumer (health: http://127.0.0.1:$health_port/readyz)"
  COURIER__CONSUMER__HEALTH_LISTEN="127.0.0.1:$health_port" setsid "$bin/$consumer" >"$data/logs/$consumer.log" 2>&1 &
  pids+=($!)
  health_port=$((health_port + 1))
done
echo "starting forward with config/examples/user-registration.toml (health: http://127.0.0.1:$health_port/readyz)"
COURIER__CONSUMER__HEALTH_LISTEN="127.0.0.1:$health_port" setsid "$bin/forward" \
  --config "$root/config/examples/user-registration.toml" >"$data/logs/forward.log" 2>&1 &
pids+=($!)

"$bin/demo" --producer "http://127.0.0.1:$producer_port" --apis "http://127.0.0.1:$mock_port" --orders "${DEMO_ORDERS:-5}"

cat <<MSG

courier is running:
  order API      http://127.0.0.1:$producer_port/v1/orders   (try: $bin/demo --orders 10)
  mock APIs      http://127.0.0.1:$mock_port/stats
  consumers      $consumers, forward; readiness on :${health_ports[*]} (/readyz)
  user events    curl -H 'content-type: application/cloudevents+json' http://127.0.0.1:$producer_port/v1/events -d \\
                   '{"specversion":"1.0","id":"reg-1","source":"/signup","type":"user.registered","subject":"u-1","data":{"user_id":"u-1","email":"ada@example.com"}}'
                 then: http://127.0.0.1:$mock_port/auth/effects and http://127.0.0.1:$mock_port/email/effects
  dead letters   COURIER__KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:$kafka_port $bin/courier-dlq list   (docs/dead-letters.md)
  broker         127.0.0.1:$kafka_port (Tansu, sqlite in $data/tansu)
  logs           $data/logs/
Press Ctrl-C to stop everything.
MSG
# Services run in their own sessions (setsid), so Ctrl-C reaches only this script, which then sends each
# one SIGTERM: they finish in-flight work, commit and exit.
# Wait until a service dies or Ctrl-C arrives.
wait -n "${pids[@]}" || true
echo "a service exited; see $data/logs" >&2
