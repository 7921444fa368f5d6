//! What handles an event: the [`Handler`] trait a consumer's handler implements, what it is given
//! ([`Incoming`]) and what it returns ([`Outcome`]). The [`super::Consumer`] declaration builds it.

use std::future::Future;
use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::batch::Batching;
use crate::events::{DecodeError, EventData, RawEvent, decode_envelope};
use crate::formats::Decoded;
use crate::kafka::headers::RawHeader;

/// One event read from Kafka, decoded in its consumer's format ([`crate::formats::Format`]), with where it came
/// from.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Topic the record was read from.
    pub topic: String,
    /// Partition the record was read from.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record key (the order id), when it has one and it is UTF-8.
    pub key: Option<String>,
    /// The record's headers, in order, byte for byte.
    pub headers: Vec<RawHeader>,
    /// The record's timestamp (milliseconds since the epoch), when it has one.
    pub timestamp_ms: Option<i64>,
    /// The id of the trace the event belongs to (32 hex digits; empty when tracing is off), for logs. The
    /// handler runs inside the event's span: HTTP calls and publishes continue the trace by themselves.
    pub trace_id: String,
    /// What the record decoded to: a CloudEvent (its envelope; `data` is decoded by the handler for the types
    /// it handles), a JSON value, or bytes.
    pub decoded: Decoded,
    /// What identifies the event, from which idempotency keys are made: a CloudEvent's
    /// [`crate::events::CloudEvent::identity`], else the record's ([`crate::formats::identity`]).
    pub identity: String,
    /// The record's value byte for byte: for a structured CloudEvent, the event as it was published (extension
    /// attributes included).
    pub value: Bytes,
    /// Fires when the event's partition stops (revoked, or the consumer shutting down): a call made for the
    /// event ([`crate::downstream::CallContext::for_event`]) that is still waiting for its turn is then not
    /// sent. Never fires for an event made with [`Incoming::new`].
    pub(crate) stop: CancellationToken,
}

impl Incoming {
    /// `event` (a [`crate::events::CloudEvent`], or the JSON of one) as a handler is given it when it was
    /// published to `topic`: read at partition 0, offset 0, keyed by its `subject` (as courier keys what it
    /// publishes), outside any trace; or why it is not a CloudEvent courier reads. The runtime makes its own of
    /// each record; this is for the tests and tools that hand an event to a handler themselves.
    pub fn new(topic: &str, event: &impl Serialize) -> Result<Self, DecodeError> {
        let value = Bytes::from(serde_json::to_vec(event).map_err(DecodeError::NotJson)?);
        let event = decode_envelope(Some(&value))?;
        Ok(Self {
            topic: topic.to_owned(),
            partition: 0,
            offset: 0,
            key: event.subject.clone(),
            headers: Vec::new(),
            timestamp_ms: None,
            trace_id: String::new(),
            identity: event.identity().into_owned(),
            decoded: Decoded::CloudEvent { event, structured: value.clone() },
            value,
            stop: CancellationToken::new(),
        })
    }

    /// The CloudEvent, when the record is one.
    pub fn event(&self) -> Option<&RawEvent> {
        match &self.decoded {
            Decoded::CloudEvent { event, .. } => Some(event),
            _ => None,
        }
    }

    /// The CloudEvent's `type`, when the record is a CloudEvent.
    pub fn event_type(&self) -> Option<&str> {
        self.event().map(|event| event.event_type.as_str())
    }

    /// The event's `id` for a CloudEvent, its [`Incoming::identity`] for any other record: what names the event
    /// in logs and what the events it causes are derived from.
    pub fn id(&self) -> &str {
        self.event().map_or(&self.identity, |event| &event.id)
    }

    /// The event's data as `T`, or the outcome that ends the delivery when it is not a valid `T` (a permanent
    /// failure naming what is wrong, which dead-letters it):
    /// `let order: OrderCreated = match incoming.data() { Ok(order) => order, Err(outcome) => return outcome };`
    ///
    /// For a CloudEvent, its `data`, once its `type` is checked to be `T`'s; for a JSON record (or a record a
    /// schema decoded to JSON), the value itself, which has no type to check; bytes are never a `T`.
    pub fn data<T: EventData>(&self) -> Result<T, Outcome> {
        let fail = |error: &DecodeError| Outcome::Permanent(Failure::from(error));
        match &self.decoded {
            Decoded::CloudEvent { event, .. } => event.data().map_err(|error| fail(&error)),
            Decoded::Json(value) => serde_json::from_str(value.get()).map_err(|source| {
                fail(&DecodeError::InvalidData {
                    id: self.identity.clone(),
                    event_type: T::EVENT_TYPE.to_owned(),
                    source,
                })
            }),
            Decoded::Bytes { content_type } => Err(Outcome::Permanent(Failure::new(
                "decode",
                format!("the record's value is bytes of {content_type}, not the JSON of a {}", T::EVENT_TYPE),
            ))),
        }
    }
}

/// What a consumer does with an event: its domain mapping, built by its [`super::Consumer`] declaration. The
/// runtime calls `handle` once per attempt; it must be safe to call again for the same event (the downstream
/// call carries an idempotency key derived from the event id).
///
/// An event may need several independent deliveries ("channels", e.g. an e-mail and an SMS): the runtime
/// runs each concurrently with its own retries, circuit breaker and dead letter, and the event is finished
/// when every channel is (delivered or dead-lettered). A replayed dead letter re-runs only its channel.
pub trait Handler: Send + Sync + 'static {
    /// The channels `incoming` needs; empty (the default) means one unnamed delivery.
    fn channels(&self, _incoming: &Incoming) -> Vec<&'static str> {
        Vec::new()
    }

    /// Handles one attempt at delivering `incoming` on `channel` (`None` for the unnamed delivery).
    fn handle(&self, incoming: &Incoming, channel: Option<&'static str>) -> impl Future<Output = Outcome> + Send;

    /// How the handler batches its attempts ([`Handler::handle_batch`]); `None` (the default): a call per
    /// attempt ([`Handler::handle`]).
    fn batching(&self) -> Option<Batching> {
        None
    }

    /// Handles one attempt at each event of `batch` (events of different keys, on `channel`) in one call, when
    /// [`Handler::batching`] says so: one outcome per event, in the batch's order. Each event is then retried,
    /// dead-lettered and committed on its own (see [`Batching`]). The default handles each event on its own,
    /// concurrently, with [`Handler::handle`].
    fn handle_batch(
        &self,
        batch: &[Incoming],
        channel: Option<&'static str>,
    ) -> impl Future<Output = Vec<Outcome>> + Send {
        futures::future::join_all(batch.iter().map(move |incoming| self.handle(incoming, channel)))
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Delivered: the offset may be committed.
    Done,
    /// A transient failure: try again later (5xx, 408, 429, timeout, connection error).
    Retry(Failure),
    /// A failure that no retry can fix (another 4xx, an event that cannot be decoded, an unknown type).
    Permanent(Failure),
}

impl Outcome {
    /// `done`, `retry` or `permanent`, for logs and tests.
    pub fn class(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Retry(_) => "retry",
            Outcome::Permanent(_) => "permanent",
        }
    }

    /// Runs `delivered` when the outcome is [`Outcome::Done`] (to log what was done), and passes the outcome on.
    #[must_use]
    pub fn on_done(self, delivered: impl FnOnce()) -> Self {
        if self == Outcome::Done {
            delivered();
        }
        self
    }
}

/// Why an attempt failed, with the HTTP context an operator needs to understand it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Class of failure: `http_status`, `timeout`, `connect`, `transport`, `decode`, `unknown_type`, ….
    pub kind: &'static str,
    /// What happened, in words.
    pub message: String,
    /// `METHOD url` of the call that failed, when there was one (never with credentials).
    pub endpoint: Option<String>,
    /// The response status, when there was a response.
    pub http_status: Option<u16>,
    /// The first KiB of the response body, when there was a response.
    pub http_body: Option<String>,
    /// How long the server asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// Whether the failure spends one of the event's attempts. A call made through the API's closed circuit
    /// breaker does; a call the open breaker refused, the half-open breaker's probe and a 429 (the API asks
    /// to slow down) do not, so waiting out an outage or a throttle never dead-letters an event.
    pub charged: bool,
    /// The retry budget of the API the failing call went to, over the consumer's (a consumer may call two
    /// APIs, each with its own).
    pub budget: RetryBudget,
}

/// An API's own retry budget (`apis.<name>.max_attempts`, `max_backoff_ms`): each limit it sets replaces the
/// consumer's (`consumer.retry_max_attempts`, `retry_max_backoff_ms`) for the events whose calls to that API
/// fail; one it leaves unset keeps the consumer's. Kept in 8 bytes, as every [`Failure`] carries one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryBudget {
    /// Attempts in all, the first included; `None`: the consumer's.
    max_attempts: Option<NonZeroU32>,
    /// Upper bound of any delay between attempts (Retry-After included), in milliseconds; `None`: the
    /// consumer's.
    max_backoff_ms: Option<NonZeroU32>,
}

impl RetryBudget {
    /// A budget of `max_attempts` attempts and delays of at most `max_backoff`; `None` or zero keeps the
    /// consumer's (as does a delay beyond `u32::MAX` milliseconds, which settings never allow).
    pub fn new(max_attempts: Option<u32>, max_backoff: Option<Duration>) -> Self {
        let millis = max_backoff.and_then(|delay| u32::try_from(delay.as_millis()).ok());
        Self { max_attempts: max_attempts.and_then(NonZeroU32::new), max_backoff_ms: millis.and_then(NonZeroU32::new) }
    }

    /// Attempts in all, the first included, when the API sets them.
    pub fn max_attempts(&self) -> Option<u32> {
        self.max_attempts.map(NonZeroU32::get)
    }

    /// The longest delay between attempts, when the API sets it.
    pub fn max_backoff(&self) -> Option<Duration> {
        self.max_backoff_ms.map(|ms| Duration::from_millis(ms.get().into()))
    }
}

impl Failure {
    /// A failure of `kind` described by `message`.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            endpoint: None,
            http_status: None,
            http_body: None,
            retry_after: None,
            charged: true,
            budget: RetryBudget::default(),
        }
    }

    /// A failure status returned by `endpoint`.
    pub fn http(endpoint: &str, status: u16, body: String) -> Self {
        Self {
            http_status: Some(status),
            http_body: Some(body),
            endpoint: Some(endpoint.to_owned()),
            ..Self::new("http_status", format!("{endpoint} answered {status}"))
        }
    }

    /// The same failure, for a call to `endpoint`.
    pub fn with_endpoint(mut self, endpoint: &str) -> Self {
        self.endpoint = Some(endpoint.to_owned());
        self
    }

    /// The same failure, not spending an attempt (see [`Failure::charged`]).
    pub fn uncharged(mut self) -> Self {
        self.charged = false;
        self
    }

    /// The same failure, retried within `budget` (its API's).
    pub fn with_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = budget;
        self
    }

    /// The same failure, with the server's requested delay.
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
}

impl From<&DecodeError> for Failure {
    fn from(error: &DecodeError) -> Self {
        let kind = match error {
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::UnsupportedSpecVersion(_) => "unknown_version",
            _ => "decode",
        };
        Failure::new(kind, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::OrderCreated;

    /// The JSON of an `order.created` event of `source` with `id`, subject `o-1` and `data`.
    fn order_json(source: &str, id: &str, data: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "specversion": "1.0", "id": id, "source": source, "type": "order.created", "subject": "o-1",
            "time": "2026-12-03T00:00:00Z", "datacontenttype": "application/json", "data": data,
        })
    }

    #[test]
    fn an_event_handed_to_a_handler_by_hand_is_keyed_by_its_subject_and_kept_as_published() {
        let json = order_json("/t", "e-1", serde_json::json!({"order_id": "o-1"}));
        let incoming = Incoming::new("orders", &json).expect("an event");
        assert_eq!((incoming.topic.as_str(), incoming.key.as_deref()), ("orders", Some("o-1")));
        assert_eq!((incoming.id(), incoming.event_type()), ("e-1", Some("order.created")));
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&incoming.value).expect("JSON"), json);
        let mut old = json;
        old["specversion"] = "0.3".into();
        assert!(matches!(Incoming::new("t", &old), Err(DecodeError::UnsupportedSpecVersion(_))));
        assert!(matches!(Incoming::new("t", &serde_json::json!({"id": 1})), Err(DecodeError::NotCloudEvent(_))));
    }

    #[test]
    fn data_that_is_not_the_type_ends_the_delivery_for_good() {
        let incoming = Incoming::new("t", &order_json("/t", "e-1", serde_json::json!({"order_id": 1})));
        match incoming.expect("an event").data::<OrderCreated>() {
            Err(Outcome::Permanent(failure)) => assert_eq!(failure.kind, "decode", "{failure:?}"),
            other => panic!("expected a permanent failure, got {other:?}"),
        }
    }

    #[test]
    fn data_reads_a_json_record_as_the_type_and_never_bytes() {
        let event = Incoming::new("t", &order_json("/t", "e-1", serde_json::json!({})));
        let mut incoming = event.expect("an event");
        let order = serde_json::json!({"order_id": "o-1", "reason": "declined", "causing_event_id": "c-1"});
        incoming.decoded = Decoded::Json(serde_json::value::to_raw_value(&order).expect("JSON"));
        let failed: crate::events::PaymentFailed = incoming.data().expect("a JSON record has no type to check");
        assert_eq!(failed.order_id, "o-1");
        assert!(matches!(incoming.data::<OrderCreated>(), Err(Outcome::Permanent(f)) if f.kind == "decode"));
        incoming.decoded = Decoded::Bytes { content_type: "text/csv".into() };
        assert!(
            matches!(incoming.data::<OrderCreated>(), Err(Outcome::Permanent(f)) if f.message.contains("text/csv"))
        );
        assert_eq!((incoming.event_type(), incoming.id()), (None, incoming.identity.as_str()));
    }

    /// What the test's typed consumer reads: the fields of a user every format's record carries.
    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    struct UserRegistered {
        /// The user.
        user_id: String,
        /// Their address.
        email: String,
        /// When they registered, when the record says.
        #[serde(default)]
        registered_at: Option<chrono::DateTime<chrono::Utc>>,
        /// Their plan, when the record says.
        #[serde(default)]
        plan: Option<Plan>,
    }

    impl EventData for UserRegistered {
        const EVENT_TYPE: &'static str = "user.registered";
    }

    /// A plan, as the Avro fixture's enum names it.
    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    enum Plan {
        /// Free.
        #[serde(rename = "FREE")]
        Free,
        /// Paid.
        #[serde(rename = "PRO")]
        Pro,
    }

    /// The record of `value` and `headers` decoded by `decoder` as the runtime hands it to a handler.
    async fn decoded(decoder: &crate::formats::Decoder, value: &[u8], headers: &[(&str, &str)]) -> Incoming {
        let value = Bytes::copy_from_slice(value);
        let headers: Vec<RawHeader> =
            headers.iter().map(|(k, v)| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))).collect();
        let record = crate::formats::RecordRef {
            topic: "users",
            partition: 0,
            offset: 1,
            key: Some(b"u-1"),
            value: Some(&value),
            headers: &headers,
        };
        let (decoded, identity) = decoder.decode(record).await.expect("decodes");
        Incoming {
            topic: "users".into(),
            partition: 0,
            offset: 1,
            key: Some("u-1".into()),
            headers,
            timestamp_ms: None,
            trace_id: String::new(),
            decoded,
            identity,
            value,
            stop: CancellationToken::new(),
        }
    }

    #[tokio::test]
    async fn data_reads_a_typed_struct_in_every_format_but_bytes() {
        use crate::formats::{Decoder, Format, Reading};
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/schema-registry");
        let registry = mock_schema_registry::MockSchemaRegistry::start(mock_schema_registry::Recorded::load(
            &fixtures.join("registry.json"),
        ))
        .await;
        let settings = crate::settings::SchemaRegistrySettings {
            url: registry.url().into(),
            connect_timeout_ms: Duration::from_millis(500),
            request_timeout_ms: Duration::from_millis(500),
            ..Default::default()
        };
        let registry = crate::schema_registry::SchemaRegistry::new(&settings).expect("a registry client");
        let decoder = |format| Decoder::new(Reading::of(format)).with_registry(Some(registry.clone()));
        let fixture = |name: &str| std::fs::read(fixtures.join(format!("records/{name}.bin"))).expect("a fixture");
        let user = serde_json::json!({"user_id": "u-1", "email": "ada@example.com"});
        let plain =
            UserRegistered { user_id: "u-1".into(), email: "ada@example.com".into(), registered_at: None, plan: None };

        let structured = serde_json::json!({
            "specversion": "1.0", "id": "e-1", "source": "/signup", "type": "user.registered",
            "time": "2026-12-07T04:30:15Z", "datacontenttype": "application/json", "data": user,
        });
        let binary = [
            ("ce_specversion", "1.0"),
            ("ce_id", "e-1"),
            ("ce_source", "/signup"),
            ("ce_type", "user.registered"),
            ("ce_time", "2026-12-07T04:30:15Z"),
            ("content-type", "application/json"),
        ];
        let (user_json, no_headers) = (user.to_string().into_bytes(), &[][..]);
        let cases = [
            (Format::Cloudevents, structured.to_string().into_bytes(), no_headers),
            (Format::CloudeventsBinary, user_json.clone(), &binary[..]),
            (Format::Json, user_json.clone(), no_headers),
            (Format::Auto, user_json, no_headers),
            (Format::JsonSchema, fixture("json-schema-user"), no_headers),
        ];
        for (format, value, headers) in cases {
            let incoming = decoded(&decoder(format), &value, headers).await;
            assert_eq!(incoming.data::<UserRegistered>().ok(), Some(plain.clone()), "{format}");
        }

        // Avro: the JSON its schema decodes it to, read as the typed struct (an instant, an enum).
        let avro = decoded(&decoder(Format::Avro), &fixture("avro-user"), &[]).await;
        let read: UserRegistered = avro.data().expect("an Avro record as a typed struct");
        let registered_at = "2026-12-07T04:30:15.123Z".parse().expect("an instant");
        assert_eq!(read, UserRegistered { registered_at: Some(registered_at), plan: Some(Plan::Pro), ..plain });
        // Protobuf: the message's JSON with its .proto field names.
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        struct Customer {
            id: String,
            email: String,
        }
        impl EventData for Customer {
            const EVENT_TYPE: &'static str = "customer";
        }
        let customer = decoded(&decoder(Format::Protobuf), &fixture("protobuf-customer"), &[]).await;
        let read: Customer = customer.data().expect("a Protobuf record as a typed struct");
        assert_eq!(read, Customer { id: "c-1".into(), email: "ada@example.com".into() });

        // Bytes are never a typed struct: a permanent failure naming the content type.
        let bytes = decoded(&decoder(Format::Bytes), user.to_string().as_bytes(), &[]).await;
        assert!(
            matches!(bytes.data::<UserRegistered>(), Err(Outcome::Permanent(f)) if f.message.contains("application/octet-stream"))
        );
    }

    #[test]
    fn on_done_runs_only_for_a_delivered_event() {
        let mut ran = 0;
        assert_eq!(Outcome::Done.on_done(|| ran += 1), Outcome::Done);
        let retry = Outcome::Retry(Failure::new("timeout", "slow"));
        assert_eq!(retry.clone().on_done(|| ran += 10), retry);
        assert_eq!(ran, 1);
    }

    #[test]
    fn a_call_for_an_event_is_keyed_by_prefix_and_event_id() {
        let event = event_of(crate::events::PRODUCER_SOURCE, "e-1");
        let call = crate::downstream::CallContext::for_event("inventory-release", &event);
        assert_eq!(call.idempotency_key, "inventory-release:e-1");
    }

    /// An event of `source` with `id`.
    fn event_of(source: &str, id: &str) -> Incoming {
        Incoming::new("t", &order_json(source, id, serde_json::json!({}))).expect("an event")
    }

    #[test]
    fn events_of_other_sources_are_keyed_by_source_and_id() {
        use crate::downstream::CallContext;
        let key = |source: &str, id: &str| CallContext::for_event("route", &event_of(source, id)).idempotency_key;
        assert_eq!(key(crate::events::PRODUCER_SOURCE, "e-1"), "route:e-1", "courier's own events keep their keys");
        assert_ne!(key("/signup", "e-1"), key("/billing", "e-1"), "one id, two sources: two keys");
        assert_eq!(key("/signup", "e-1"), key("/signup", "e-1"), "one event: one key");
        assert!(key("/signup", "e-1").starts_with("route:") && key("/signup", "e-1").ends_with(":e-1"));
    }

    #[test]
    fn a_batch_key_names_its_events_unambiguously() {
        use crate::downstream::CallContext;
        let key = |ids: &[&str]| {
            let events: Vec<Incoming> = ids.iter().map(|id| event_of("/s", id)).collect();
            CallContext::for_batch("route", &events.iter().collect::<Vec<_>>()).idempotency_key
        };
        assert_ne!(key(&["a\0b"]), key(&["a", "b"]), "an id holding a NUL is not two ids");
        assert_ne!(key(&["ab"]), key(&["a", "b"]));
        assert_ne!(key(&["a", "b"]), key(&["b", "a"]));
        assert_eq!(key(&["a", "b"]), key(&["a", "b"]), "the same events together: the same key");
        assert!(key(&["a"]).starts_with("route:batch:"));
        // Sources count too: one id from two sources is two events.
        let two = [event_of("/s", "a"), event_of("/t", "a")];
        let one = [event_of("/s", "a"), event_of("/s", "a")];
        let batch_key =
            |events: &[Incoming]| CallContext::for_batch("route", &events.iter().collect::<Vec<_>>()).idempotency_key;
        assert_ne!(batch_key(&two), batch_key(&one));
    }
}
