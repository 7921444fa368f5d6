//! The decoder against the test kit's registry, on records written by independent encoders (confluent-kafka's
//! serializers, fastavro, protoc's Python classes: `tests/fixtures/schema-registry/make_fixtures.py`).

use std::path::PathBuf;
use std::time::Duration;

use mock_schema_registry::{Fault, MockSchemaRegistry, Recorded, Required};
use secrecy::SecretString;
use serde_json::json;

use super::*;

/// The fixtures' directory.
fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/schema-registry")
}

/// The registry the fixtures were written with.
fn recorded() -> Recorded {
    Recorded::load(&fixtures().join("registry.json"))
}

/// The bytes of record `name`.
fn record(name: &str) -> Vec<u8> {
    let path = fixtures().join("records").join(format!("{name}.bin"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Settings of the registry at `url`, with short timeouts and permanent failures remembered for a minute (the
/// default).
fn settings(url: &str) -> SchemaRegistrySettings {
    SchemaRegistrySettings {
        url: url.into(),
        connect_timeout_ms: Duration::from_millis(500),
        request_timeout_ms: Duration::from_millis(500),
        failure_cache_ms: Duration::from_secs(60),
        ..SchemaRegistrySettings::default()
    }
}

/// A decoder of the fixtures' registry, and that registry.
async fn decoder() -> (SchemaRegistry, MockSchemaRegistry) {
    let server = MockSchemaRegistry::start(recorded()).await;
    (SchemaRegistry::new(&settings(server.url())).expect("registry client"), server)
}

#[tokio::test]
async fn avro_records_decode_to_the_json_a_user_expects() {
    let (registry, _server) = decoder().await;
    let value = registry.decode(SchemaFormat::Avro, &record("avro-user")).await.expect("decodes");
    assert_eq!(
        value,
        json!({
            "user_id": "u-1",
            "email": "ada@example.com",
            "age": 36,
            "visits": 12_345_678_901_i64,
            "verified": true,
            "score": 4.5,
            "nickname": "ada",
            "referrer": null,
            "credit": 250,
            "plan": "PRO",
            "addresses": [{"city": "London", "zip": "N1"}, {"city": "Paris", "zip": "75001"}],
            "tags": {"beta": 1},
            "avatar": "AAH+",
            "fingerprint": "3q2+7w==",
            "birthday": "1990-12-10",
            "registered_at": "2026-12-07T04:30:15.123Z",
            "last_seen_at": "2026-12-07T04:31:00.123456Z",
            "wake_up": "07:30:00.250",
            "balance": "1234.56",
            "session": "6f1c5b1e-9a2b-4c3d-8e4f-0a1b2c3d4e5f",
        })
    );
    let other = registry.decode(SchemaFormat::Avro, &record("avro-user-2")).await.expect("decodes");
    assert_eq!(
        (&other["nickname"], &other["referrer"], &other["credit"], &other["plan"]),
        (&json!(null), &json!("newsletter"), &json!("unlimited"), &json!("FREE")),
        "each union is the value of its branch"
    );
}

#[tokio::test]
async fn an_avro_schema_decodes_with_the_schemas_it_references() {
    let (registry, server) = decoder().await;
    let payment = registry.decode(SchemaFormat::Avro, &record("avro-payment")).await.expect("decodes");
    assert_eq!(
        payment,
        json!({
            "payment_id": "p-1",
            "total": {"currency": "EUR", "amount": "25.98"},
            "refund": {"currency": "EUR", "amount": "-5.00"},
        }),
        "the referenced record's decimal keeps its scale"
    );
    assert_eq!(server.requests(), ["/schemas/ids/8", "/subjects/com.example.shop.Money/versions/1"]);
}

#[tokio::test]
async fn protobuf_records_decode_by_their_message_indexes() {
    let (registry, server) = decoder().await;
    let order = registry.decode(SchemaFormat::Protobuf, &record("protobuf-order")).await.expect("decodes");
    assert_eq!(
        order,
        json!({
            "order_id": "o-1",
            "total": {"currency": "EUR", "units": 2598},
            "items": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}],
            "status": "STATUS_PAID",
            "placed_at": "2026-12-07T04:30:15.500Z",
            "labels": {"channel": "web"},
            "priority": 0,
            "signature": "AQI=",
        }),
        "every field but the unset `optional` note, with its .proto name"
    );
    let item = registry.decode(SchemaFormat::Protobuf, &record("protobuf-order-item")).await.expect("[1, 0]");
    assert_eq!(item, json!({"sku": "SKU-9", "quantity": 3}));
    let customer = registry.decode(SchemaFormat::Protobuf, &record("protobuf-customer")).await.expect("[0]");
    assert_eq!(customer, json!({"id": "c-1", "email": "ada@example.com"}));
    // The imported common.proto came from its subject; Google's timestamp.proto from protox's own copy.
    assert!(server.requests().contains(&"/subjects/common.proto/versions/1".to_owned()), "{:?}", server.requests());
}

#[tokio::test]
async fn json_schema_records_are_validated() {
    let (registry, _server) = decoder().await;
    let user = registry.decode(SchemaFormat::JsonSchema, &record("json-schema-user")).await.expect("valid");
    assert_eq!(user, json!({"user_id": "u-1", "email": "ada@example.com", "age": 36, "tags": ["beta"]}));
    let invalid = registry.decode(SchemaFormat::JsonSchema, &record("json-schema-user-invalid")).await;
    match invalid {
        Err(error @ DecodeError::Malformed(_)) => {
            assert!(!error.is_transient());
            assert!(error.to_string().contains("/age"), "{error}");
        }
        other => panic!("a record its schema refuses is malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn each_schema_is_fetched_once_even_by_concurrent_first_records() {
    let (registry, server) = decoder().await;
    server.set_delay(Duration::from_millis(100));
    let bytes = record("avro-user");
    let decodes = (0..8).map(|_| registry.decode(SchemaFormat::Avro, &bytes));
    for result in futures::future::join_all(decodes).await {
        result.expect("decodes");
    }
    registry.decode(SchemaFormat::Avro, &bytes).await.expect("from the cache");
    assert_eq!(server.requests(), ["/schemas/ids/1"], "one request for schema 1");
}

#[tokio::test]
async fn a_schema_several_schemas_reference_is_fetched_once() {
    // Schemas 3, 4 and 5 each import common.proto (subject common.proto, version 1).
    let (registry, server) = decoder().await;
    server.set_delay(Duration::from_millis(50));
    let records = [record("protobuf-order"), record("protobuf-order-item"), record("protobuf-customer")];
    let decodes = records.iter().map(|bytes| registry.decode(SchemaFormat::Protobuf, bytes));
    for result in futures::future::join_all(decodes).await {
        result.expect("decodes");
    }
    for bytes in &records {
        registry.decode(SchemaFormat::Protobuf, bytes).await.expect("from the cache");
    }
    let mut requests = server.requests();
    requests.sort();
    assert_eq!(
        requests,
        ["/schemas/ids/3", "/schemas/ids/4", "/schemas/ids/5", "/subjects/common.proto/versions/1"],
        "each schema once, and the import they share once"
    );
}

#[tokio::test]
async fn a_backlog_naming_an_unknown_id_asks_the_registry_once_while_the_failure_is_remembered() {
    let server = MockSchemaRegistry::start(recorded().without(1)).await;
    server.set_delay(Duration::from_millis(50));
    let registry = SchemaRegistry::new(&settings(server.url())).expect("client");
    let bytes = record("avro-user");
    let first = (0..8).map(|_| registry.decode(SchemaFormat::Avro, &bytes));
    let backlog = futures::future::join_all(first).await;
    for _ in 0..32 {
        let error = registry.decode(SchemaFormat::Avro, &bytes).await.expect_err("unknown id");
        assert!(matches!(&error, DecodeError::UnknownSchema { id: 1, .. }), "{error:?}");
    }
    for error in backlog {
        assert!(matches!(error, Err(DecodeError::UnknownSchema { id: 1, .. })), "{error:?}");
    }
    assert_eq!(server.requests(), ["/schemas/ids/1"], "40 records, concurrent first ones too: one request");

    // Remembered for failure_cache_ms only: asked again after it.
    let brief = SchemaRegistrySettings { failure_cache_ms: Duration::from_millis(50), ..settings(server.url()) };
    server.set_delay(Duration::ZERO);
    let registry = SchemaRegistry::new(&brief).expect("client");
    for _ in 0..4 {
        registry.decode(SchemaFormat::Avro, &bytes).await.expect_err("unknown id");
    }
    assert_eq!(server.requests().len(), 2, "one more request for four records");
    // The failure's time passing is the event awaited here.
    tokio::time::sleep(Duration::from_millis(100)).await;
    registry.decode(SchemaFormat::Avro, &bytes).await.expect_err("unknown id");
    assert_eq!(server.requests().len(), 3, "asked again once the failure is forgotten");

    // failure_cache_ms = 0: every record asks.
    let never = SchemaRegistrySettings { failure_cache_ms: Duration::ZERO, ..settings(server.url()) };
    let registry = SchemaRegistry::new(&never).expect("client");
    for _ in 0..3 {
        registry.decode(SchemaFormat::Avro, &bytes).await.expect_err("unknown id");
    }
    assert_eq!(server.requests().len(), 6, "a request per record");
}

#[tokio::test]
async fn an_avro_schema_naming_a_type_it_defines_decodes() {
    // A record type defined in field `a` and named again by field `b`: the parsed schema refers to it by name.
    let mut recorded = recorded();
    let pair = json!({
        "type": "record", "name": "Pair", "namespace": "com.example",
        "fields": [
            {"name": "a", "type": {"type": "record", "name": "Cell", "fields": [{"name": "v", "type": "string"}]}},
            {"name": "b", "type": "Cell"},
        ],
    });
    recorded.schemas.insert(100, json!({"schema": pair.to_string()}));
    let server = MockSchemaRegistry::start(recorded).await;
    let registry = SchemaRegistry::new(&settings(server.url())).expect("client");
    // The wire format (magic byte 0, id 100), then the Avro binary encoding of {"a": {"v": "x"}, "b": {"v": "y"}}:
    // each string its zigzag length (1 is 0x02) and its bytes.
    let bytes = [0, 0, 0, 0, 100, 0x02, b'x', 0x02, b'y'];
    let value = registry.decode(SchemaFormat::Avro, &bytes).await.expect("decodes");
    assert_eq!(value, json!({"a": {"v": "x"}, "b": {"v": "y"}}));
}

#[tokio::test]
async fn permanent_failures_say_why() {
    // Schema 1 is not in this registry: 404 with error code 40403.
    let server = MockSchemaRegistry::start(recorded().without(1)).await;
    let registry = SchemaRegistry::new(&settings(server.url())).expect("client");
    let error = registry.decode(SchemaFormat::Avro, &record("avro-user")).await.expect_err("unknown id");
    assert!(matches!(&error, DecodeError::UnknownSchema { id: 1, .. }), "{error:?}");
    assert!(error.to_string().contains("Schema 1 not found (error code 40403)"), "{error}");
    assert!(!error.is_transient());

    let (registry, _server) = decoder().await;
    let error = registry.decode(SchemaFormat::Avro, b"{\"user_id\":\"u-1\"}").await.expect_err("not framed");
    assert!(matches!(&error, DecodeError::Malformed(reason) if reason.contains("magic byte")), "{error:?}");
    let mut truncated = record("avro-user");
    truncated.truncate(20);
    let error = registry.decode(SchemaFormat::Avro, &truncated).await.expect_err("truncated");
    assert!(matches!(error, DecodeError::Malformed(_)), "{error:?}");
    let error = registry.decode(SchemaFormat::Avro, &record("protobuf-customer")).await.expect_err("wrong format");
    assert!(matches!(&error, DecodeError::InvalidSchema { reason, .. } if reason.contains("PROTOBUF")), "{error:?}");
    let error = registry.decode(SchemaFormat::JsonSchema, &record("avro-user")).await.expect_err("wrong format");
    assert!(matches!(&error, DecodeError::InvalidSchema { reason, .. } if reason.contains("AVRO")), "{error:?}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_schema_that_does_not_parse_is_permanent() {
    let mut broken = recorded();
    broken.schemas.insert(1, json!({"schema": "{\"type\": \"record\", \"name\": \"X\", \"fields\": [{\"name\": \"a\", \"type\": \"nope\"}]}"}));
    broken.schemas.insert(3, json!({"schemaType": "PROTOBUF", "schema": "syntax = \"proto3\"; message {"}));
    let server = MockSchemaRegistry::start(broken).await;
    let registry = SchemaRegistry::new(&settings(server.url())).expect("client");
    for (format, name) in [(SchemaFormat::Avro, "avro-user"), (SchemaFormat::Protobuf, "protobuf-order")] {
        let error = registry.decode(format, &record(name)).await.expect_err("does not parse");
        assert!(matches!(error, DecodeError::InvalidSchema { .. }), "{name}: {error:?}");
        assert!(!error.is_transient());
    }
}

#[tokio::test]
async fn a_refusing_registry_is_permanent_and_credentials_are_sent() {
    let required = Required::Basic("API-KEY".into(), "api-s3cret".into());
    let server = MockSchemaRegistry::start_with_credentials(recorded(), required).await;
    let anonymous = SchemaRegistry::new(&settings(server.url())).expect("client");
    let error = anonymous.decode(SchemaFormat::Avro, &record("avro-user")).await.expect_err("no credentials");
    assert_eq!(error, DecodeError::Refused { status: 401, message: "Unauthorized (error code 401)".into() });
    assert!(!error.is_transient());

    let basic = SchemaRegistrySettings {
        username: "API-KEY".into(),
        password: Some(SecretString::from("api-s3cret")),
        ..settings(server.url())
    };
    let registry = SchemaRegistry::new(&basic).expect("client");
    assert!(!format!("{registry:?}").contains("api-s3cret"));
    registry.decode(SchemaFormat::Avro, &record("avro-user")).await.expect("basic auth");

    let server = MockSchemaRegistry::start_with_credentials(recorded(), Required::Bearer("t0ken".into())).await;
    let bearer = SchemaRegistrySettings { token: Some(SecretString::from("t0ken")), ..settings(server.url()) };
    let registry = SchemaRegistry::new(&bearer).expect("client");
    registry.decode(SchemaFormat::Avro, &record("avro-user")).await.expect("bearer auth");
    server.set_fault(Some(Fault::Forbidden));
    let fresh = SchemaRegistry::new(&bearer).expect("client");
    let error = fresh.decode(SchemaFormat::Avro, &record("avro-user")).await.expect_err("forbidden");
    assert!(matches!(&error, DecodeError::Refused { status: 403, message } if message.contains("40301")), "{error:?}");
}

#[tokio::test]
async fn an_unavailable_registry_is_transient_and_asked_again() {
    let (registry, server) = decoder().await;
    let bytes = record("avro-user");
    for fault in [Fault::Unavailable, Fault::BackendError, Fault::Slow(Duration::from_secs(2))] {
        server.set_fault(Some(fault));
        let error = registry.decode(SchemaFormat::Avro, &bytes).await.expect_err("unavailable");
        assert!(error.is_transient(), "{fault:?}: {error:?}");
    }
    server.set_fault(None);
    registry.decode(SchemaFormat::Avro, &bytes).await.expect("a failed fetch is not kept: asked again");

    // Nothing listens on port 1 of loopback.
    let unreachable = SchemaRegistry::new(&settings("http://127.0.0.1:1")).expect("client");
    let error = unreachable.decode(SchemaFormat::Avro, &bytes).await.expect_err("unreachable");
    assert!(matches!(error, DecodeError::Unavailable(_)), "{error:?}");
}
