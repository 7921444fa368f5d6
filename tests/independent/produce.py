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

Prints one JSON line per record once the broker acknowledged it: {"key", "partition", "offset"}.
"""

import json
import sys

from cloudevents.v1.http import CloudEvent
from cloudevents.v1.kafka import to_binary
from confluent_kafka import Producer


def records(kind, count):
    """(key, value, headers) of each record to write."""
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
        acknowledged.append({"key": message.key().decode(), "partition": message.partition(),
                             "offset": message.offset()})

    for key, value, headers in records(kind, count):
        producer.produce(topic, key=key.encode(), value=value, headers=headers, on_delivery=on_delivery)
        # One record at a time: the order of the output is the order of writing.
        producer.flush(30)
    if producer.flush(30) != 0:
        raise SystemExit("records left unacknowledged")
    for record in acknowledged:
        print(json.dumps(record))


if __name__ == "__main__":
    main()
