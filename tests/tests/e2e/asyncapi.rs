//! `docs/asyncapi.yaml`, the AsyncAPI 3.0 document of the topics courier writes and reads, against an
//! independent validator and against the code, without a broker:
//!
//! * the AsyncAPI Initiative's parser (`tests/independent/validate_asyncapi.cjs`, npm `@asyncapi/parser`)
//!   parses it with no error and no warning: the AsyncAPI schema, the Kafka bindings, every `$ref` (the event
//!   schemas of `schemas/events/` among them);
//! * its channels are the topics of the default settings: what each registered consumer reads and publishes,
//!   its dead-letter topics (`dlq_topic`), the topics of `POST /v1/events`, with the default partitions and
//!   replicas, and the dead-letter address of any group;
//! * every registered consumer receives on each topic it reads in its consumer group, sends to each topic it
//!   publishes and to its dead-letter topics, and the producer sends to its topics; no other consumer group is
//!   named;
//! * each event message has its type, source and the JSON Schema of its data as the code and the settings name
//!   them;
//! * the dead letter's headers are those `dlq_headers` writes (required: those it always writes) and the
//!   replayed record's `courier.replay.*` those `courier-dlq replay` writes.
//!
//! (The headers of the records courier publishes, read from a real topic, are held to the document by
//! `order_saga.rs`.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use chrono::Utc;
use courier::delivery::Failure;
use courier::delivery::dlq::{VALUE_OMITTED_HEADER, dlq_headers, dlq_topic};
use courier::delivery::failure::FailedRecord;
use courier::events::{EventData, OrderCreated, OrderPaid, PAYMENT_SOURCE, PRODUCER_SOURCE, PaymentFailed};
use courier::settings::Settings;
use courier_consumers::order_topics::OrderTopics;
use courier_consumers::registry::CONSUMERS;
use courier_dlq::letter::{DeadLetter, RawRecord};
use courier_dlq::replay::{REPLAY_PREFIX, replayed_headers};
use serde_json::Value as Json;
use serde_norway::Value;

use super::compose::{read, topics};

/// The document, parsed.
fn document() -> Value {
    serde_norway::from_str(&read("docs/asyncapi.yaml")).expect("docs/asyncapi.yaml is YAML")
}

/// The object `reference` (`#/components/…`) points to in `document`.
fn resolve<'a>(document: &'a Value, reference: &Value) -> &'a Value {
    let pointer = reference["$ref"].as_str().and_then(|r| r.strip_prefix("#/")).expect("a local $ref");
    pointer.split('/').fold(document, |value, key| &value[key])
}

/// The required and the declared names of the headers schema `name` of `components.schemas`.
fn header_names(document: &Value, name: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let schema = &document["components"]["schemas"][name];
    let names = |value: &Value| -> BTreeSet<String> {
        match value {
            Value::Sequence(names) => names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
            Value::Mapping(properties) => properties.keys().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
            _ => BTreeSet::new(),
        }
    };
    (names(&schema["required"]), names(&schema["properties"]))
}

/// The required and the declared record headers of the events courier publishes (`eventHeaders`).
pub(super) fn event_headers() -> (BTreeSet<String>, BTreeSet<String>) {
    header_names(&document(), "eventHeaders")
}

/// The channels by address.
fn channels(document: &Value) -> BTreeMap<String, &Value> {
    let channels = document["channels"].as_mapping().expect("channels");
    channels.values().map(|c| (c["address"].as_str().expect("an address").to_owned(), c)).collect()
}

/// Every operation as (action, its channel's address, its Kafka group id, when it names one).
fn operations(document: &Value) -> BTreeSet<(String, String, Option<String>)> {
    let operations = document["operations"].as_mapping().expect("operations");
    operations
        .values()
        .map(|operation| {
            let channel = resolve(document, &operation["channel"]);
            let group = operation["bindings"]["kafka"]["groupId"]["enum"][0].as_str().map(str::to_owned);
            let action = operation["action"].as_str().expect("an action").to_owned();
            (action, channel["address"].as_str().expect("an address").to_owned(), group)
        })
        .collect()
}

#[test]
fn the_asyncapi_document_validates_with_the_asyncapi_parser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("tests/independent/validate_asyncapi.cjs");
    let output = Command::new("node")
        .arg(&script)
        .arg(root.join("docs/asyncapi.yaml"))
        .output()
        .expect("node runs (scripts/test.sh installs @asyncapi/parser next to the script)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} refuses docs/asyncapi.yaml:\n{stdout}{stderr}", script.display());
    let lines: Vec<Json> =
        stdout.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))).collect();
    let (summary, diagnostics) = lines.split_last().expect("a summary");
    let serious: Vec<&Json> = diagnostics.iter().filter(|d| d["severity"].as_u64().is_some_and(|s| s <= 1)).collect();
    assert!(serious.is_empty(), "errors or warnings: {serious:#?}");
    // What the parser read is the whole document.
    let document = document();
    let count = |key: &str| document[key].as_mapping().map_or(0, |m| m.len() as u64);
    assert_eq!(summary["parsed"], true);
    assert_eq!(summary["channels"], count("channels"), "{summary}");
    assert_eq!(summary["operations"], count("operations"), "{summary}");
}

#[test]
fn the_asyncapi_document_has_the_topics_groups_and_events_of_the_code() {
    let document = document();
    let settings = Settings::load_with_env(None, Some(HashMap::new())).expect("the default settings load");
    let channels = channels(&document);
    let any_group = dlq_topic("{topic}", "{group}");
    let addresses: BTreeSet<String> = channels.keys().filter(|a| **a != any_group).cloned().collect();
    assert_eq!(addresses, topics(), "the channels are not the topics of the default settings");
    assert!(channels.contains_key(&any_group), "no channel {any_group} for the dead letters of any group");
    for (address, channel) in channels.iter().filter(|(a, _)| **a != any_group) {
        let kafka = &channel["bindings"]["kafka"];
        assert_eq!(kafka["topic"].as_str(), Some(address.as_str()), "{address}: the binding's topic");
        assert_eq!(kafka["partitions"].as_i64(), Some(i64::from(settings.topics.partitions)), "{address}");
        assert_eq!(kafka["replicas"].as_i64(), Some(i64::from(settings.topics.replication_factor)), "{address}");
    }

    let operations = operations(&document);
    let mut expected = BTreeSet::new();
    let send = |topic: &str| ("send".to_owned(), topic.to_owned(), None);
    expected.insert(send(settings.topics.orders_created()));
    expected.extend(settings.producer.events.values().map(|route| send(&route.topic)));
    for consumer in CONSUMERS {
        let spec = (consumer.spec)(&settings);
        for topic in &spec.topics {
            expected.insert(("receive".to_owned(), topic.clone(), Some(spec.group.clone())));
            expected.insert(send(&dlq_topic(topic, &spec.group)));
        }
        expected.extend(spec.publishes.iter().map(|topic| send(topic)));
    }
    // A receiving operation without a group of its own is `forward`'s: each route is a group named after it.
    let (forward, named): (BTreeSet<_>, BTreeSet<_>) = operations
        .into_iter()
        .filter(|(_, address, _)| *address != any_group)
        .partition(|(action, _, group)| action == "receive" && group.is_none());
    assert_eq!(named, expected, "the operations are not what the registered consumers and the producer do");
    let users = &settings.producer.events["users"].topic;
    let forward: Vec<String> = forward.into_iter().map(|(_, address, _)| address).collect();
    assert_eq!(forward, std::slice::from_ref(users), "`forward`'s example routes read {users}");

    // Each event message: its type, source and data schema as the code and the settings have them.
    let schema_of = |route_schema: &str| format!("../{route_schema}");
    let mut events = vec![
        (settings.topics.orders_created(), OrderCreated::EVENT_TYPE, Some(PRODUCER_SOURCE), None),
        (settings.topics.orders_paid(), OrderPaid::EVENT_TYPE, Some(PAYMENT_SOURCE), None),
        (settings.topics.payment_failed(), PaymentFailed::EVENT_TYPE, Some(PAYMENT_SOURCE), None),
    ];
    for route in settings.producer.events.values() {
        let schema = Some(schema_of(&route.schema)).filter(|_| !route.schema.is_empty());
        events.extend(route.types.iter().map(|t| (route.topic.as_str(), t.as_str(), None, schema.clone())));
    }
    for (topic, event_type, source, schema) in events {
        let messages = channels[topic]["messages"].as_mapping().expect("messages");
        let message = messages
            .values()
            .map(|m| resolve(&document, m))
            .find(|m| m["name"] == event_type)
            .unwrap_or_else(|| panic!("{topic} has no message {event_type}"));
        let payload = &message["payload"]["allOf"][1]["properties"];
        assert_eq!(payload["type"]["const"].as_str(), Some(event_type), "{event_type}");
        assert_eq!(payload["source"]["const"].as_str(), source, "{event_type}: its source");
        let data = payload["data"]["$ref"].as_str().expect("its data's schema");
        let expected = schema.unwrap_or_else(|| format!("../schemas/events/{event_type}.json"));
        assert_eq!(data, expected, "{event_type}: the schema of its data");
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs").join(data).is_file(), "{data}");
        assert_eq!(resolve(&document, &message["headers"]), &document["components"]["schemas"]["eventHeaders"]);
    }
}

#[test]
fn the_asyncapi_document_has_the_headers_dead_letters_and_replays_carry() {
    let document = document();
    let (http, decode) =
        (Failure::http("POST http://api/x", 503, "busy".to_owned()), Failure::new("decode", "not JSON"));
    let now = Utc::now();
    let record = |failure, channel, format, timestamp_ms| FailedRecord {
        topic: "orders.created",
        partition: 1,
        offset: 7,
        key: Some(b"o-1"),
        value: Some(b"{}"),
        headers: &[],
        timestamp_ms,
        event_id: Some("e-1"),
        format,
        attempts: 3,
        channel,
        failure,
        first_failure_at: now,
        last_failure_at: now,
    };
    let names = |headers: &[(String, String)]| -> BTreeSet<String> { headers.iter().map(|(k, _)| k.clone()).collect() };
    // Every header (a call's failure on a channel, a record with a timestamp and a format), and those of the
    // barest dead letter (a record without a timestamp that did not decode).
    let all = dlq_headers(&record(&http, Some("sms"), Some("json"), Some(1)), "notification", "notification");
    let always = names(&dlq_headers(&record(&decode, None, None, None), "g", "c"));
    let mut written = names(&all);
    written.insert(VALUE_OMITTED_HEADER.to_owned());
    let (required, declared) = header_names(&document, "deadLetterHeaders");
    assert_eq!(declared, written, "the dead letter's headers are not those dlq_headers writes");
    assert_eq!(required, always, "the dead letter's required headers are not those every dead letter has");

    let letter = RawRecord {
        topic: "orders.created.notification.dlq".to_owned(),
        partition: 1,
        offset: 0,
        timestamp_ms: None,
        key: Some(b"o-1".to_vec()),
        value: Some(b"{}".to_vec()),
        headers: all.iter().map(|(k, v)| (k.clone().into_bytes(), Some(v.clone().into_bytes()))).collect(),
    };
    let replayed: BTreeSet<String> = replayed_headers(&letter, &DeadLetter::parse(&letter))
        .into_iter()
        .map(|(k, _)| String::from_utf8(k).expect("a UTF-8 name"))
        .filter(|name| name.starts_with(REPLAY_PREFIX))
        .collect();
    let (_, event_headers) = header_names(&document, "eventHeaders");
    let declared: BTreeSet<String> = event_headers.into_iter().filter(|h| h.starts_with(REPLAY_PREFIX)).collect();
    assert_eq!(declared, replayed, "a replayed record's headers are not those courier-dlq replay writes");
}
