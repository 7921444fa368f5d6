//! Record formats: how a record read from Kafka becomes the event a consumer handles, and what identifies it.
//!
//! * [`Format`]: what a topic is read as (`forward.routes.<name>.format`, a coded consumer's
//!   [`crate::delivery::ConsumerSpec`]): `cloudevents` (structured JSON), `cloudevents-binary` (the Kafka
//!   binding's `ce_*` headers), `json`, `bytes`, `avro`, `protobuf`, `json-schema` (the Confluent wire format,
//!   decoded to JSON with the writer's schema from a [`SchemaRegistry`]), or `auto` (each record as what it is;
//!   never a registry format).
//! * [`Reading`]: a format with the identity rule of records that are not CloudEvents ([`IdFrom`]) and the
//!   content type of bytes.
//! * [`Decoder`]: decodes one record in its [`Reading`] to a [`Decoded`] view and its identity, or says why it
//!   cannot ([`Undecodable`]: permanent, dead-lettered; transient, tried again and never dead-lettered).
//! * [`identity`]: the identity of a record without an envelope (its coordinates, its key, or a member of its
//!   value), kept across a replay by `courier-dlq`.
//!
//! A format is one variant of [`Format`] and one arm of [`Decoder::decode`], each returning a [`Decoded`] view or
//! an [`Undecodable`]. A record of a registry format decodes to [`Decoded::Json`]: the JSON its schema gives it.

pub mod identity;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

pub use identity::IdFrom;

use crate::events::{self, DecodeError, RawEvent, kafka_binding};
use crate::kafka::headers::{self, RawHeader};
use crate::schema_registry::{SchemaFormat, SchemaRegistry};

/// What a topic's records are read as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Each record as what it is: a CloudEvent in binary mode (a `ce_specversion` header), else a CloudEvent in
    /// structured mode (a JSON object with a `specversion` member, or a `content-type` of
    /// `application/cloudevents…`), else JSON, else bytes. Never a registry format: a leading zero byte does not
    /// prove the Confluent wire format, so such a topic names its format.
    #[default]
    Auto,
    /// A CloudEvent in JSON, structured mode (what courier's producer writes); anything else is undecodable.
    Cloudevents,
    /// A CloudEvent in the Kafka binding's binary mode: `ce_*` headers, the value as `data`.
    CloudeventsBinary,
    /// Any JSON value.
    Json,
    /// The value as it is, of the content type its `content-type` header or the setting says.
    Bytes,
    /// Avro in the Confluent wire format, decoded to JSON with its writer's schema from the registry.
    Avro,
    /// Protobuf in the Confluent wire format (with its message indexes), decoded to JSON with its schema from the
    /// registry.
    Protobuf,
    /// JSON validated against its JSON Schema from the registry, in the Confluent wire format.
    JsonSchema,
}

impl Format {
    /// Its name in settings.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Cloudevents => "cloudevents",
            Format::CloudeventsBinary => "cloudevents-binary",
            Format::Json => "json",
            Format::Bytes => "bytes",
            Format::Avro => "avro",
            Format::Protobuf => "protobuf",
            Format::JsonSchema => "json-schema",
        }
    }

    /// The registry format it is, when its records name their schema in a [`SchemaRegistry`].
    pub fn schema_format(self) -> Option<SchemaFormat> {
        match self {
            Format::Avro => Some(SchemaFormat::Avro),
            Format::Protobuf => Some(SchemaFormat::Protobuf),
            Format::JsonSchema => Some(SchemaFormat::JsonSchema),
            Format::Auto | Format::Cloudevents | Format::CloudeventsBinary | Format::Json | Format::Bytes => None,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a consumer reads its topics: the format, and what a record that is not a CloudEvent is identified by
/// and sent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The format of its records.
    pub format: Format,
    /// The identity of a record that is not a CloudEvent.
    pub id_from: IdFrom,
    /// The content type of a `bytes` record without a `content-type` header.
    pub content_type: String,
}

impl Reading {
    /// Structured CloudEvents only, as courier's producer writes them: how the coded consumers read.
    pub fn cloudevents() -> Self {
        Self::of(Format::Cloudevents)
    }

    /// Records of `format`, identified by their coordinates, bytes of `application/octet-stream`.
    pub fn of(format: Format) -> Self {
        Self { format, id_from: IdFrom::Offset, content_type: kafka_binding::OCTET_STREAM.to_owned() }
    }
}

/// What a record decoded to.
#[derive(Debug, Clone)]
pub enum Decoded {
    /// A CloudEvent, read from structured or binary mode.
    CloudEvent {
        /// Its envelope; `data` stays raw JSON.
        event: RawEvent,
        /// The event in structured mode: the record's value for a structured record, the JSON built from the
        /// headers and the value for a binary one.
        structured: Bytes,
    },
    /// A JSON value: the record's value, or the JSON a registry format's schema decoded it to.
    Json(Box<RawValue>),
    /// Bytes: the record's value, of `content_type`.
    Bytes {
        /// Its content type: the record's `content-type` header, else [`Reading::content_type`].
        content_type: String,
    },
}

impl Decoded {
    /// `cloudevent`, `json` or `bytes`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Decoded::CloudEvent { .. } => "cloudevent",
            Decoded::Json(_) => "json",
            Decoded::Bytes { .. } => "bytes",
        }
    }
}

/// Why a record cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecodable {
    /// No retry can help (the bytes are what they are): the record is dead-lettered at once.
    Permanent {
        /// The failure's kind: `decode`, or `unknown_version` for a CloudEvent of another `specversion`.
        kind: &'static str,
        /// What is wrong, in words, starting with the format.
        reason: String,
    },
    /// Decoding needs something unavailable for now (a schema registry that cannot be reached): tried again,
    /// never dead-lettered.
    Transient {
        /// What is unavailable, in words.
        reason: String,
    },
}

impl Undecodable {
    /// The failure of a record of registry format `format`: transient when the registry is unavailable, else
    /// permanent (kind `decode`, the reason after the format's name).
    fn of_registry(format: Format, error: &crate::schema_registry::DecodeError) -> Self {
        if error.is_transient() {
            Undecodable::Transient { reason: format!("{format}: {error}") }
        } else {
            Undecodable::permanent(format, error)
        }
    }

    /// A permanent failure of `format`: kind `decode`, `reason` after the format's name.
    pub fn permanent(format: Format, reason: impl std::fmt::Display) -> Self {
        Undecodable::Permanent { kind: "decode", reason: format!("{format}: {reason}") }
    }

    /// The permanent failure of a CloudEvent that does not decode, its kind as the coded consumers have it.
    fn of_cloudevent(format: Format, error: &DecodeError) -> Self {
        let kind = match error {
            DecodeError::UnsupportedSpecVersion(_) => "unknown_version",
            DecodeError::UnknownType(_) => "unknown_type",
            _ => "decode",
        };
        Undecodable::Permanent { kind, reason: format!("{format}: {error}") }
    }
}

/// A record as the decoder reads it.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, byte for byte.
    pub key: Option<&'a [u8]>,
    /// Its value, byte for byte (`None`: a tombstone).
    pub value: Option<&'a Bytes>,
    /// Its headers, in order.
    pub headers: &'a [RawHeader],
}

/// Decodes records in one [`Reading`].
#[derive(Debug, Clone)]
pub struct Decoder {
    /// The format, identity rule and content type.
    reading: Reading,
    /// The registry the schemas of a registry format come from (the process's one, shared).
    registry: Option<SchemaRegistry>,
}

impl Decoder {
    /// A decoder of records in `reading`, of a format that needs no registry.
    pub fn new(reading: Reading) -> Self {
        Self { reading, registry: None }
    }

    /// The same, taking the schemas of a registry format from `registry`.
    #[must_use]
    pub fn with_registry(mut self, registry: Option<SchemaRegistry>) -> Self {
        self.registry = registry;
        self
    }

    /// The format it decodes.
    pub fn format(&self) -> Format {
        self.reading.format
    }

    /// `record` decoded, with its identity (see [`identity`]); or why it cannot be.
    pub async fn decode(&self, record: RecordRef<'_>) -> Result<(Decoded, String), Undecodable> {
        let format = self.reading.format;
        let decoded = match format {
            Format::Cloudevents => structured(format, record.value)?,
            Format::CloudeventsBinary => binary(format, record)?,
            Format::Json => Decoded::Json(json(format, record.value)?),
            Format::Bytes => Decoded::Bytes { content_type: self.content_type(record.headers) },
            Format::Auto => self.auto(record)?,
            // Boxed: the registry's lookup is a large future, which would otherwise be part of every event's
            // task in every format, for as long as the event is unfinished.
            Format::Avro | Format::Protobuf | Format::JsonSchema => {
                Decoded::Json(Box::pin(self.registered(format, record)).await?)
            }
        };
        let identity = match &decoded {
            Decoded::CloudEvent { event, .. } => event.identity().into_owned(),
            Decoded::Json(value) => self.reading.id_from.identity(record, Some(&**value))?,
            Decoded::Bytes { .. } => self.reading.id_from.identity(record, None)?,
        };
        Ok((decoded, identity))
    }

    /// A record in `auto`: what it is.
    fn auto(&self, record: RecordRef<'_>) -> Result<Decoded, Undecodable> {
        let format = Format::Auto;
        if kafka_binding::is_binary(record.headers) {
            return binary(format, record);
        }
        let Some(value) = record.value else {
            return Ok(Decoded::Bytes { content_type: self.content_type(record.headers) });
        };
        let declared = headers::text(record.headers, kafka_binding::CONTENT_TYPE_HEADER)
            .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("application/cloudevents"));
        match events::decode_envelope(Some(&value[..])) {
            Ok(event) => Ok(Decoded::CloudEvent { event, structured: value.clone() }),
            Err(error @ DecodeError::UnsupportedSpecVersion(_)) => Err(Undecodable::of_cloudevent(format, &error)),
            Err(error) if declared => Err(Undecodable::of_cloudevent(format, &error)),
            Err(DecodeError::NotCloudEvent(error)) => {
                let raw: Box<RawValue> =
                    serde_json::from_slice(value).map_err(|_| Undecodable::permanent(format, &error))?;
                if claims_specversion(&raw) {
                    return Err(Undecodable::of_cloudevent(format, &DecodeError::NotCloudEvent(error)));
                }
                Ok(Decoded::Json(raw))
            }
            Err(_) => Ok(Decoded::Bytes { content_type: self.content_type(record.headers) }),
        }
    }

    /// A record of registry format `format`, decoded by its writer's schema to JSON.
    async fn registered(&self, format: Format, record: RecordRef<'_>) -> Result<Box<RawValue>, Undecodable> {
        let Some(schema_format) = format.schema_format() else {
            return Err(Undecodable::permanent(format, "not a schema registry format"));
        };
        let Some(registry) = &self.registry else {
            return Err(Undecodable::permanent(format, "no schema registry is configured: set schema_registry.url"));
        };
        let value = record.value.ok_or_else(|| Undecodable::permanent(format, DecodeError::Empty))?;
        let json = registry.decode(schema_format, value).await.map_err(|e| Undecodable::of_registry(format, &e))?;
        serde_json::value::to_raw_value(&json).map_err(|e| Undecodable::permanent(format, e))
    }

    /// The content type of a bytes record: its `content-type` header, else the reading's.
    fn content_type(&self, headers: &[RawHeader]) -> String {
        headers::text(headers, kafka_binding::CONTENT_TYPE_HEADER)
            .filter(|t| !t.trim().is_empty())
            .unwrap_or(&self.reading.content_type)
            .to_owned()
    }
}

/// Whether a JSON value is an object with a `specversion` member: a CloudEvent by its own claim.
fn claims_specversion(raw: &RawValue) -> bool {
    serde_json::from_str::<std::collections::HashMap<&str, serde::de::IgnoredAny>>(raw.get())
        .is_ok_and(|members| members.contains_key("specversion"))
}

/// A structured CloudEvent.
fn structured(format: Format, value: Option<&Bytes>) -> Result<Decoded, Undecodable> {
    let event = events::decode_envelope(value.map(|v| &v[..])).map_err(|e| Undecodable::of_cloudevent(format, &e))?;
    Ok(Decoded::CloudEvent { event, structured: value.cloned().unwrap_or_default() })
}

/// A CloudEvent in the Kafka binding's binary mode.
fn binary(format: Format, record: RecordRef<'_>) -> Result<Decoded, Undecodable> {
    if !kafka_binding::is_binary(record.headers) {
        return Err(Undecodable::permanent(format, "the record has no ce_specversion header"));
    }
    let value = record.value.map(|v| &v[..]).unwrap_or_default();
    let event = kafka_binding::to_structured(record.headers, value).map_err(|e| Undecodable::permanent(format, e))?;
    let structured = Bytes::from(serde_json::to_vec(&event).map_err(|e| Undecodable::permanent(format, e))?);
    let event = events::decode_envelope(Some(&structured)).map_err(|e| Undecodable::of_cloudevent(format, &e))?;
    Ok(Decoded::CloudEvent { event, structured })
}

/// A JSON value.
fn json(format: Format, value: Option<&Bytes>) -> Result<Box<RawValue>, Undecodable> {
    let value = value.ok_or_else(|| Undecodable::permanent(format, DecodeError::Empty))?;
    serde_json::from_slice(value).map_err(|e| Undecodable::permanent(format, DecodeError::NotJson(e)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A record of `value` and `headers` at `orders`/3@42, keyed `k-1`.
    fn decode(
        reading: Reading,
        value: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<(Decoded, String), Undecodable> {
        let value = value.map(Bytes::copy_from_slice);
        let headers: Vec<RawHeader> =
            headers.iter().map(|(k, v)| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))).collect();
        let record = RecordRef {
            topic: "orders",
            partition: 3,
            offset: 42,
            key: Some(&b"k-1"[..]),
            value: value.as_ref(),
            headers: &headers,
        };
        futures::executor::block_on(Decoder::new(reading).decode(record))
    }

    const STRUCTURED: &str = r#"{"specversion":"1.0","id":"e-1","source":"/signup","type":"user.registered",
        "time":"2026-12-03T10:00:00Z","datacontenttype":"application/json","data":{"user_id":"u-1"}}"#;

    const BINARY: &[(&str, &str)] = &[
        ("ce_specversion", "1.0"),
        ("ce_id", "e-1"),
        ("ce_source", "/signup"),
        ("ce_type", "user.registered"),
        ("ce_time", "2026-12-03T10:00:00Z"),
        ("content-type", "application/json"),
    ];

    #[test]
    fn a_structured_cloudevent_is_its_envelope_and_identified_by_source_and_id() {
        for format in [Format::Cloudevents, Format::Auto] {
            let (decoded, identity) = decode(Reading::of(format), Some(STRUCTURED.as_bytes()), &[]).expect("decodes");
            let Decoded::CloudEvent { event, structured } = decoded else { panic!("{format}: not a CloudEvent") };
            assert_eq!((event.id.as_str(), &structured[..]), ("e-1", STRUCTURED.as_bytes()), "{format}");
            assert_eq!(identity, event.identity(), "{format}");
        }
    }

    #[test]
    fn a_binary_cloudevent_is_the_same_event_as_its_structured_twin() {
        let value = br#"{"user_id":"u-1"}"#;
        for format in [Format::CloudeventsBinary, Format::Auto] {
            let (decoded, identity) = decode(Reading::of(format), Some(&value[..]), BINARY).expect("decodes");
            let Decoded::CloudEvent { event, structured } = decoded else { panic!("{format}: not a CloudEvent") };
            let twin: serde_json::Value = serde_json::from_str(STRUCTURED).expect("JSON");
            assert_eq!(serde_json::from_slice::<serde_json::Value>(&structured).expect("JSON"), twin, "{format}");
            assert_eq!((event.event_type.as_str(), identity), ("user.registered", event.identity().into_owned()));
        }
        let missing =
            decode(Reading::of(Format::CloudeventsBinary), Some(&value[..]), &[("content-type", "application/json")]);
        assert!(
            matches!(missing, Err(Undecodable::Permanent { kind: "decode", reason }) if reason.contains("ce_specversion"))
        );
        let no_time: Vec<_> = BINARY.iter().filter(|(k, _)| *k != "ce_time").copied().collect();
        let invalid = decode(Reading::of(Format::CloudeventsBinary), Some(&value[..]), &no_time);
        assert!(matches!(invalid, Err(Undecodable::Permanent { kind: "decode", .. })), "{invalid:?}");
    }

    #[test]
    fn json_is_any_json_value_identified_by_its_coordinates() {
        for format in [Format::Json, Format::Auto] {
            for value in
                [&br#"{"user_id":"u-1","email":"ada@example.com"}"#[..], &b"[1,2]"[..], &b"\"text\""[..], &b"7"[..]]
            {
                let (decoded, identity) = decode(Reading::of(format), Some(value), &[]).expect("decodes");
                let Decoded::Json(raw) = decoded else { panic!("{format}: not JSON") };
                assert_eq!(raw.get().as_bytes(), value);
                assert_eq!(identity, "orders-3-42", "{format}");
            }
        }
        let not_json = decode(Reading::of(Format::Json), Some(&b"not json"[..]), &[]).expect_err("not JSON");
        assert!(
            matches!(&not_json, Undecodable::Permanent { kind: "decode", reason } if reason.starts_with("json: record value is not JSON")),
            "{not_json:?}"
        );
        assert!(
            matches!(decode(Reading::of(Format::Json), None, &[]), Err(Undecodable::Permanent { .. })),
            "a tombstone"
        );
    }

    #[test]
    fn bytes_are_the_value_of_the_content_type_its_header_or_the_setting_says() {
        let csv = Reading { content_type: "text/csv".into(), ..Reading::of(Format::Bytes) };
        let (decoded, identity) = decode(csv.clone(), Some(&b"a,b"[..]), &[]).expect("decodes");
        assert!(matches!(&decoded, Decoded::Bytes { content_type } if content_type == "text/csv"), "{decoded:?}");
        assert_eq!(identity, "orders-3-42");
        let (decoded, _) = decode(csv, Some(&b"{}"[..]), &[("content-type", "application/xml")]).expect("decodes");
        assert!(matches!(&decoded, Decoded::Bytes { content_type } if content_type == "application/xml"));
        for value in [None, Some(&[0xff, 0x00][..]), Some(&b"not json"[..])] {
            let (decoded, _) = decode(Reading::of(Format::Auto), value, &[]).expect("decodes");
            assert!(
                matches!(&decoded, Decoded::Bytes { content_type } if content_type == "application/octet-stream"),
                "{value:?}"
            );
        }
    }

    #[test]
    fn auto_holds_a_record_to_the_cloudevent_it_claims_to_be() {
        let auto = Reading::of(Format::Auto);
        let no_id = json!({"specversion": "1.0", "source": "/s", "type": "t"}).to_string();
        let claimed = decode(auto.clone(), Some(no_id.as_bytes()), &[]).expect_err("a CloudEvent without an id");
        assert!(
            matches!(&claimed, Undecodable::Permanent { kind: "decode", reason } if reason.contains("not a CloudEvent")),
            "{claimed:?}"
        );
        let old = STRUCTURED.replace("\"1.0\"", "\"0.3\"");
        let version = decode(auto.clone(), Some(old.as_bytes()), &[]).expect_err("specversion 0.3");
        assert!(matches!(version, Undecodable::Permanent { kind: "unknown_version", .. }));
        let declared = decode(auto, Some(&b"[1]"[..]), &[("content-type", "application/cloudevents+json")]);
        assert!(
            matches!(declared, Err(Undecodable::Permanent { kind: "decode", .. })),
            "its content type says CloudEvent"
        );
        let strict = decode(Reading::cloudevents(), Some(&br#"{"user_id":"u-1"}"#[..]), &[]).expect_err("JSON");
        assert!(
            matches!(&strict, Undecodable::Permanent { reason, .. } if reason.starts_with("cloudevents: record value is not a CloudEvent"))
        );
    }

    /// Record `fixture` of the Schema Registry fixtures (written by confluent-kafka's serializers).
    fn registry_fixture(fixture: &str) -> Bytes {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/schema-registry/records")
            .join(format!("{fixture}.bin"));
        Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    #[tokio::test]
    async fn a_registry_format_decodes_to_the_json_of_its_schema_and_says_which_failures_are_transient() {
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/schema-registry/registry.json");
        let server =
            mock_schema_registry::MockSchemaRegistry::start(mock_schema_registry::Recorded::load(&fixtures)).await;
        let settings = crate::settings::SchemaRegistrySettings {
            url: server.url().into(),
            connect_timeout_ms: std::time::Duration::from_millis(500),
            request_timeout_ms: std::time::Duration::from_millis(500),
            ..Default::default()
        };
        let registry = SchemaRegistry::new(&settings).expect("a registry client");
        let reading = Reading { id_from: IdFrom::Value(vec!["user_id".into()]), ..Reading::of(Format::Avro) };
        let decoder = Decoder::new(reading.clone()).with_registry(Some(registry));
        let decode = |value: Bytes| {
            let decoder = decoder.clone();
            async move {
                let record =
                    RecordRef { topic: "users", partition: 0, offset: 9, key: None, value: Some(&value), headers: &[] };
                decoder.decode(record).await
            }
        };

        let (decoded, identity) = decode(registry_fixture("avro-user")).await.expect("decodes");
        let Decoded::Json(raw) = decoded else { panic!("not JSON: {decoded:?}") };
        let user: serde_json::Value = serde_json::from_str(raw.get()).expect("JSON");
        assert_eq!((&user["email"], &user["plan"]), (&json!("ada@example.com"), &json!("PRO")));
        assert_eq!(identity, "u-1", "id_from reads the decoded JSON");

        let mut unknown = registry_fixture("avro-user").to_vec();
        unknown[1..5].copy_from_slice(&4040_u32.to_be_bytes());
        let error = decode(Bytes::from(unknown)).await.expect_err("schema 4040 is unknown");
        assert!(
            matches!(&error, Undecodable::Permanent { kind: "decode", reason } if reason.starts_with("avro: schema 4040 is unknown")),
            "{error:?}"
        );
        let error = decode(Bytes::from_static(b"{}")).await.expect_err("not the wire format");
        assert!(matches!(&error, Undecodable::Permanent { reason, .. } if reason.contains("magic byte")), "{error:?}");

        server.set_fault(Some(mock_schema_registry::Fault::Unavailable));
        let error = decode(registry_fixture("avro-payment")).await.expect_err("the registry is out");
        assert!(matches!(&error, Undecodable::Transient { reason } if reason.starts_with("avro: ")), "{error:?}");

        let value = registry_fixture("avro-user");
        let record =
            RecordRef { topic: "users", partition: 0, offset: 9, key: None, value: Some(&value), headers: &[] };
        let without = Decoder::new(reading).decode(record).await;
        assert!(
            matches!(&without, Err(Undecodable::Permanent { reason, .. }) if reason.contains("schema_registry.url")),
            "{without:?}"
        );
    }

    #[test]
    fn auto_never_reads_the_confluent_wire_format_as_a_registry_format() {
        let (decoded, _) = decode(Reading::of(Format::Auto), Some(&registry_fixture("avro-user")), &[]).expect("bytes");
        assert!(matches!(decoded, Decoded::Bytes { .. }), "{decoded:?}");
    }

    #[test]
    fn formats_are_named_in_settings_as_in_kebab_case() {
        for format in [
            Format::Auto,
            Format::Cloudevents,
            Format::CloudeventsBinary,
            Format::Json,
            Format::Bytes,
            Format::Avro,
            Format::Protobuf,
            Format::JsonSchema,
        ] {
            let read: Format = serde_json::from_value(json!(format.name())).expect("a format");
            assert_eq!(read, format);
        }
        assert!(serde_json::from_value::<Format>(json!("xml")).is_err());
    }
}
