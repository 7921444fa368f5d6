#!/usr/bin/env python3
"""Writes records to a Kafka topic as applications that never heard of courier do: with the confluent-kafka
client (librdkafka) and, for CloudEvents, the CloudEvents Python SDK's own Kafka binding. The independent
producer of courier's end-to-end format tests (tests/tests/e2e/formats.rs): nothing here is courier's code.

usage: produce.py BOOTSTRAP TOPIC KIND COUNT

  json                COUNT records {"user_id": "u-<i>", "email": "user<i>@example.com"} keyed u-<i>, serialized
                      by json.dumps; then one record keyed "bad" whose value is not JSON.
  cloudevents-binary  COUNT user.registered CloudEvents (source /signup, id reg-<i>, subject u-<i>) in the Kafka
                      binding's binary mode (cloudevents.v1.kafka.to_binary: ce_* headers, content-type
                      application/json, the data as the value), keyed u-<i>; then one keyed "bad" whose value is
                      not the JSON its content type says.
  keyed               COUNT records {"user_id": "u-<i>", "email": "user<i>@example.com"} keyed k-<i> (the even ones
                      with a content-type header application/vnd.example.user+json); then one without a key
                      ({"user_id": "u-nokey", …}), one keyed "no-member" without a user_id ({"email": …}), and one
                      keyed "bad" whose value is not JSON (content-type text/plain).
  avro, protobuf,     COUNT records in the Confluent wire format, the committed fixtures of
  json-schema         tests/fixtures/schema-registry/records (written by confluent-kafka's serializers:
                      make_fixtures.py) taken in turn, each keyed by its fixture's name: avro-user, avro-payment;
                      protobuf-order, protobuf-order-item, protobuf-customer; json-schema-user. Then one keyed
                      "bad": for avro and protobuf the first fixture naming schema id 4040, which the registry does
                      not know (the id is bytes 1-4 of the wire format, big-endian); for json-schema
                      json-schema-user-invalid, which its schema refuses.

Prints one JSON line per record once the broker acknowledged it: {"key", "partition", "offset"} (key "" for a
record without a key).
"""

import json
import pathlib
import sys

from cloudevents.v1.http import CloudEvent
from cloudevents.v1.kafka import to_binary
from confluent_kafka import Producer


# The records written by confluent-kafka's serializers, by format: the good ones in turn, then the bad one.
FIXTURES = {
    "avro": (["avro-user", "avro-payment"], "avro-user"),
    "protobuf": (["protobuf-order", "protobuf-order-item", "protobuf-customer"], "protobuf-order"),
    "json-schema": (["json-schema-user"], "json-schema-user-invalid"),
}

# A schema id the fixtures' registry does not know.
UNKNOWN_SCHEMA_ID = 4040


def fixture(name):
    """The bytes of fixture record `name`."""
    return (pathlib.Path(__file__).parent.parent / "fixtures/schema-registry/records" / f"{name}.bin").read_bytes()


def registered(kind, count):
    """(key, value, headers) of the records of a schema registry format."""
    good, bad = FIXTURES[kind]
    for i in range(count):
        name = good[i % len(good)]
        yield name, fixture(name), []
    value = fixture(bad)
    if kind != "json-schema":
        value = value[:1] + UNKNOWN_SCHEMA_ID.to_bytes(4, "big") + value[5:]
    yield "bad", value, []


def keyed(count):
    """(key, value, headers) of the records of kind `keyed`: users keyed by one thing and identified by another."""
    for i in range(count):
        user = {"user_id": f"u-{i}", "email": f"user{i}@example.com"}
        headers = [("content-type", b"application/vnd.example.user+json")] if i % 2 == 0 else []
        yield f"k-{i}", json.dumps(user).encode(), headers
    yield None, json.dumps({"user_id": "u-nokey", "email": "nokey@example.com"}).encode(), []
    yield "no-member", json.dumps({"email": "nomember@example.com"}).encode(), []
    yield "bad", b"not json {", [("content-type", b"text/plain")]


def records(kind, count):
    """(key, value, headers) of each record to write."""
    if kind in FIXTURES:
        yield from registered(kind, count)
        return
    if kind == "keyed":
        yield from keyed(count)
        return
    for i in range(count):
        user = {"user_id": f"u-{i}", "email": f"user{i}@example.com"}
        if kind == "json":
            yield f"u-{i}", json.dumps(user).encode(), []
        elif kind == "cloudevents-binary":
            attributes = {"type": "user.registered", "source": "/signup", "id": f"reg-{i}", "subject": f"u-{i}",
                          "datacontenttype": "application/json"}
            message = to_binary(CloudEvent(attributes, user), data_marshaller=lambda d: json.dumps(d).encode())
            yield f"u-{i}", message.value, list(message.headers.items())
        else:
            raise SystemExit(f"unknown kind {kind!r}")
    if kind == "json":
        yield "bad", b"not json {", []
    else:
        attributes = {"type": "user.registered", "source": "/signup", "id": "reg-bad", "subject": "bad",
                      "datacontenttype": "application/json"}
        message = to_binary(CloudEvent(attributes, None), data_marshaller=lambda d: b"")
        yield "bad", b"{not json", list(message.headers.items())


def main():
    bootstrap, topic, kind, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    acknowledged = []

    def on_delivery(error, message):
        if error is not None:
            raise SystemExit(f"not acknowledged: {error}")
        key = message.key()
        acknowledged.append({"key": key.decode() if key is not None else "", "partition": message.partition(),
                             "offset": message.offset()})

    for key, value, headers in records(kind, count):
        key = key.encode() if key is not None else None
        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
        # One record at a time: the order of the output is the order of writing.
        producer.flush(30)
    if producer.flush(30) != 0:
        raise SystemExit("records left unacknowledged")
    for record in acknowledged:
        print(json.dumps(record))


if __name__ == "__main__":
    main()
