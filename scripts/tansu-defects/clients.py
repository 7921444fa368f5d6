#!/usr/bin/env python3
"""Plain confluent-kafka clients for the Tansu 0.6.0 reproductions (see README.md):
  clients.py topics BOOTSTRAP            create topics t1 and t2 with 8 partitions each (16 in all)
  clients.py produce BOOTSTRAP [RATE]    write RATE records per second to each topic until SIGTERM
  clients.py member NAME BOOTSTRAP ...   one consumer-group member of group "repro" (eager unless --assignor
                                         cooperative-sticky), until SIGTERM
  clients.py producer NAME BOOTSTRAP ... one idempotent (or --plain) producer writing to t1, logging outcomes
  clients.py read BOOTSTRAP N HEADERS    write N records with HEADERS headers each to a new one-partition topic,
                                         then read them back from the start, timing the read
A member prints one line per event: <epoch seconds> <name> <event> <details>; the assigned, revoking, revoked
and lost lines read mono=<CLOCK_MONOTONIC seconds> +N|-N <the callback's partitions: t1/0,...> total=<partitions
held> (the repro scripts read the total); after each change an "owns mono=... <partitions held>" line, and every
half second a "fetched mono=... t1/0:12,..." line (records received per partition since the last one), which
overlaps.py reads. A producer prints a status line every second, each new client error and the first delivery
error of each kind, and a done line at the end, with sent=N delivered=N failed=N errors=NAME:N,... (counts since
it started), which repro-c.sh reads. read prints one line: records=N of=N headers=H produce_s=S read_s=S, which
repro-e.sh prints."""
import argparse
import os
import signal
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TOPICS = ("t1", "t2")
PARTITIONS = 8


def topics(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    futures = admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in TOPICS], request_timeout=10)
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as e:
            if "already exists" not in str(e).lower():
                sys.exit(f"creating topic {name}: {e}")


def produce(args):
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 20})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    i = 0
    while not stop.is_set():
        for t in TOPICS:
            producer.produce(t, key=str(i).encode(), value=b"x" * 100, partition=i % PARTITIONS)
        i += 1
        producer.poll(0)
        time.sleep(1.0 / args.rate)
    producer.flush(5)


def wait_for_go(go_file, log):
    """Waits for `go_file` to exist (start-up, interpreter and imports, is done before the go signal)."""
    log("waiting", f"for {go_file}")
    deadline = time.time() + 300
    while not os.path.exists(go_file):
        if time.time() > deadline:
            sys.exit("no go signal")
        time.sleep(0.01)


def member(args):
    def log(event, details=""):
        print(f"{time.time():.3f} {args.name} {event} {details}".rstrip(), flush=True)

    if args.go_file:
        # After the go signal, so --delay is the real join delay.
        wait_for_go(args.go_file, log)
        time.sleep(args.delay)

    # Short group timeouts, as in courier's local run and tests; librdkafka's default (eager) assignors unless
    # --assignor says otherwise (cooperative-sticky: the incremental protocol, the callbacks get the changes).
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "repro",
        "client.id": args.client_id or args.name,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": 1500,
        "max.poll.interval.ms": 15000,
        "partition.assignment.strategy": args.assignor,
        "error_cb": lambda e: log("error", str(e)),
    })
    held = set()

    def names(parts):
        return ",".join(f"{t}/{p}" for t, p in sorted(parts)) or "-"

    def change(event, sign, parts):
        # The callback's own partitions, then what the member holds; mono= orders the members' lines.
        log(event, f"mono={time.monotonic():.3f} {sign}{len(parts)} "
                   f"{names((p.topic, p.partition) for p in parts)} total={len(held)}")

    def owns():
        log("owns", f"mono={time.monotonic():.3f} {names(held)} member_id={consumer.memberid()}")

    def on_assign(_, parts):
        held.update((p.topic, p.partition) for p in parts)
        change("assigned", "+", parts)
        owns()

    def on_revoke(_, parts):
        change("revoking", "-", parts)
        if args.commit == "sync":
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as e:
                log("commit-failed", str(e))
        # Stands in for an application finishing its in-flight work before giving partitions up.
        time.sleep(args.revoke_secs)
        held.difference_update((p.topic, p.partition) for p in parts)
        change("revoked", "-", parts)
        owns()

    def on_lost(_, parts):
        held.difference_update((p.topic, p.partition) for p in parts)
        change("lost", "-", parts)
        owns()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    consumer.subscribe(list(TOPICS), on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    log("subscribed", f"commit={args.commit} revoke_secs={args.revoke_secs} assignor={args.assignor}")
    consumed, last_commit, last_status = 0, time.time(), time.time()
    fetched, last_fetched = {}, time.time()  # records received per partition since the last "fetched" line

    def log_fetched():
        nonlocal fetched
        if fetched:
            log("fetched", f"mono={time.monotonic():.3f} " + ",".join(f"{k}:{n}" for k, n in sorted(fetched.items())))
            fetched = {}

    def receive(store):
        nonlocal consumed, last_fetched
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            if store:
                consumer.store_offsets(message=msg)
                consumed += 1
            key = f"{msg.topic()}/{msg.partition()}"
            fetched[key] = fetched.get(key, 0) + 1
        if time.time() - last_fetched >= 0.5:
            last_fetched = time.time()
            log_fetched()

    while not stop.is_set():
        receive(store=True)
        now = time.time()
        if args.commit == "sync" and held and now - last_commit > 1:
            last_commit = now
            try:
                consumer.commit(asynchronous=True)
            except KafkaException:
                pass  # nothing stored yet
        if now - last_status > 5:
            last_status = now
            log("status", f"held={len(held)} consumed={consumed}")
    log("stopping", f"consumed={consumed}")
    # Keep polling a little, as a service finishing its work would, then leave the group.
    end = time.time() + args.drain
    while time.time() < end:
        receive(store=False)
    log_fetched()
    consumer.close()
    log("closed")


def producer(args):
    def log(event, details=""):
        print(f"{time.time():.3f} {args.name} {event} {details}".rstrip(), flush=True)

    if args.go_file:
        wait_for_go(args.go_file, log)

    counts = {"sent": 0, "delivered": 0, "failed": 0}
    seen_errors = {}  # delivery error name (UNKNOWN, _MSG_TIMED_OUT, ...) -> count
    seen_client = set()

    def totals():
        errors = ",".join(f"{name}:{n}" for name, n in seen_errors.items()) or "-"
        return f"sent={counts['sent']} delivered={counts['delivered']} failed={counts['failed']} errors={errors}"

    def on_error(err):
        # Client-level errors (connection reset, all brokers down, fatal idempotence errors): each new text once.
        text = f"{'FATAL ' if err.fatal() else ''}{err.str()}"
        if text not in seen_client:
            seen_client.add(text)
            log("client-error", text)

    def on_delivery(err, _msg):
        if err is None:
            counts["delivered"] += 1
            return
        counts["failed"] += 1
        seen_errors[err.name()] = seen_errors.get(err.name(), 0) + 1
        if seen_errors[err.name()] == 1:
            log("delivery-error", f"name={err.name()} {totals()} {err.str()}")

    # As courier's publishers (shared/src/kafka.rs): idempotence, acks=all, message.timeout.ms from
    # producer.publish_timeout_ms (5000 by default), linger.ms 5; librdkafka's defaults otherwise.
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "client.id": args.name,
        "enable.idempotence": not args.plain,
        "acks": "all",
        "message.timeout.ms": args.message_timeout_ms,
        "linger.ms": 5,
        "error_cb": on_error,
        **({"debug": args.debug} if args.debug else {}),
    })
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log("started", f"idempotence={not args.plain} rate={args.rate}")
    start = last_status = time.time()
    end = start + args.duration if args.duration else None
    while not stop.is_set():
        now = time.time()
        if end and now >= end or args.count and counts["sent"] >= args.count:
            break
        if args.pause_file and os.path.exists(args.pause_file):
            p.poll(0.1)  # paused: nothing new, deliveries still served
            if now - last_status >= 1:
                last_status = now
                log("status", f"paused queued={len(p)} {totals()}")
            continue
        try:
            p.produce("t1", key=str(counts["sent"]).encode(), value=b"x" * 100,
                      partition=counts["sent"] % PARTITIONS, on_delivery=on_delivery)
            counts["sent"] += 1
        except BufferError:
            pass  # local queue full: try again after the next poll
        except KafkaException as e:
            on_error(e.args[0])
        p.poll(0)
        if now - last_status >= 1:
            last_status = now
            log("status", f"queued={len(p)} {totals()}")
        time.sleep(1.0 / args.rate)
    p.flush(args.flush)
    log("done", f"undelivered={len(p)} {totals()}")


def read(args):
    """Writes `count` records (100-byte values, `headers` headers of about 40 bytes each, as the order API's
    are) to a new topic, then times a plain consumer reading them all from offset 0."""
    topic = f"h{args.headers}n{args.count}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=10)[topic].result()
    headers = [(f"header-{i}", b"0" * 36) for i in range(args.headers)]
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 20})
    started = time.time()
    for i in range(args.count):
        producer.produce(topic, key=str(i).encode(), value=b"x" * 100, headers=headers or None)
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(60) != 0:
        sys.exit("records not acknowledged within 60 s")
    produced = time.time() - started
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": f"read-{topic}", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    started = time.time()
    seen = 0
    while seen < args.count and time.time() - started < args.timeout:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            seen += 1
    read_s = time.time() - started
    consumer.close()
    print(f"records={seen} of={args.count} headers={args.headers} produce_s={produced:.2f} read_s={read_s:.2f}",
          flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("topics")
    p.add_argument("bootstrap")
    p = sub.add_parser("produce")
    p.add_argument("bootstrap")
    p.add_argument("rate", type=float, nargs="?", default=100)
    p = sub.add_parser("member")
    p.add_argument("name")
    p.add_argument("bootstrap")
    p.add_argument("--client-id")
    p.add_argument("--commit", choices=["sync", "none"], default="none",
                   help="sync: commit synchronously in the revoke callback and asynchronously every second")
    p.add_argument("--revoke-secs", type=float, default=0, help="time the revoke callback takes")
    p.add_argument("--drain", type=float, default=0, help="seconds to keep polling after SIGTERM before closing")
    p.add_argument("--session-timeout-ms", type=int, default=6000, help="session.timeout.ms (courier's tests: 6000)")
    p.add_argument("--assignor", default="range,roundrobin",
                   help="partition.assignment.strategy, e.g. cooperative-sticky (default: librdkafka's eager default)")
    p.add_argument("--go-file", help="join only once this file exists (plus --delay)")
    p.add_argument("--delay", type=float, default=0)
    p = sub.add_parser("producer")
    p.add_argument("name")
    p.add_argument("bootstrap")
    p.add_argument("--rate", type=float, default=100, help="records per second")
    p.add_argument("--count", type=int, default=0, help="stop after this many records (0: no limit)")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: no limit)")
    p.add_argument("--plain", action="store_true", help="not idempotent (enable.idempotence=false)")
    p.add_argument("--message-timeout-ms", type=int, default=5000,
                   help="librdkafka message.timeout.ms (courier: producer.publish_timeout_ms, 5000)")
    p.add_argument("--flush", type=float, default=5, help="seconds to wait for outstanding deliveries at the end")
    p.add_argument("--go-file", help="start only once this file exists")
    p.add_argument("--pause-file", help="produce nothing while this file exists")
    p.add_argument("--debug", help="librdkafka debug contexts, e.g. eos,protocol (to stderr)")
    p = sub.add_parser("read")
    p.add_argument("bootstrap")
    p.add_argument("count", type=int)
    p.add_argument("headers", type=int)
    p.add_argument("--timeout", type=float, default=300, help="give up reading after this many seconds")
    args = parser.parse_args()
    {"topics": topics, "produce": produce, "member": member, "producer": producer, "read": read}[args.command](args)


if __name__ == "__main__":
    main()
