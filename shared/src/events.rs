//! Events on the wire: the CloudEvents 1.0 JSON envelope (structured mode) and the payloads courier knows.
//!
//! A record's key is the order id and its value a CloudEvent such as
//! `{"specversion":"1.0","id":"…","source":"/courier/producer","type":"order.created","time":"…",
//! "datacontenttype":"application/json","data":{…}}`. Unknown fields are ignored; a missing required field,
//! an unknown `type` or an unsupported `specversion` is a [`DecodeError`], never a panic.
//!
//! * [`http_binding`]: the CloudEvents HTTP binding (binary mode to and from structured).
//! * [`kafka_binding`]: the CloudEvents Kafka binding's binary mode (`ce_*` headers) read as structured.
//! * [`validation`]: what attribute values and `data_base64` must be for an event to be deliverable.

pub mod http_binding;
pub mod kafka_binding;
pub mod validation;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// The CloudEvents version courier writes and accepts.
pub const SPEC_VERSION: &str = "1.0";
/// Content type of a structured-mode CloudEvent, sent as the record's `content-type` header.
pub const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";

/// The content type of a JSON array of structured CloudEvents (the CloudEvents HTTP binding's batched mode).
pub const CLOUDEVENTS_BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";
/// Content type of the `data` member.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// The `source` of events the producer publishes.
pub const PRODUCER_SOURCE: &str = "/courier/producer";
/// The `source` of the events the payment consumer publishes (`order.paid`, `order.payment_failed`).
pub const PAYMENT_SOURCE: &str = "/courier/payment";
/// The sources of the events courier publishes itself, whose ids are UUIDs courier made: an event of one of
/// these is identified by its `id` alone (see [`CloudEvent::identity`]).
pub const COURIER_SOURCES: &[&str] = &[PRODUCER_SOURCE, PAYMENT_SOURCE];

/// A CloudEvents 1.0 event in JSON structured mode, with typed `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent<T> {
    /// CloudEvents specification version; always `"1.0"`.
    pub specversion: String,
    /// Event id, unique per source; consumers derive their idempotency keys from it.
    pub id: String,
    /// Where the event came from (a URI reference).
    pub source: String,
    /// The event type, e.g. `order.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened.
    pub time: DateTime<Utc>,
    /// Content type of `data`; `application/json`.
    pub datacontenttype: String,
    /// The subject of the event within its source: the order id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The payload.
    pub data: T,
}

impl<T: EventData> CloudEvent<T> {
    /// Wraps `data` in a new envelope with the given id, source and time.
    pub fn new(id: Uuid, source: &str, time: DateTime<Utc>, subject: Option<String>, data: T) -> Self {
        Self {
            specversion: SPEC_VERSION.to_owned(),
            id: id.to_string(),
            source: source.to_owned(),
            event_type: T::EVENT_TYPE.to_owned(),
            time,
            datacontenttype: DATA_CONTENT_TYPE.to_owned(),
            subject,
            data,
        }
    }
}

impl<T> CloudEvent<T> {
    /// What identifies the event across every source, as CloudEvents defines it (`source` + `id`), in text that
    /// idempotency keys are made of: the `id` alone for the events courier publishes itself
    /// ([`COURIER_SOURCES`]: their ids are UUIDs it made, and their keys stay as they always were), else
    /// `<16 hex digits of the SHA-256 of the source>:<id>`, so that two applications that happen to use one id
    /// are two events, and one event redelivered is one.
    pub fn identity(&self) -> std::borrow::Cow<'_, str> {
        if COURIER_SOURCES.contains(&self.source.as_str()) {
            return std::borrow::Cow::Borrowed(&self.id);
        }
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.source.as_bytes());
        let mut identity = String::with_capacity(17 + self.id.len());
        for byte in &digest[..8] {
            identity.push_str(&format!("{byte:02x}"));
        }
        identity.push(':');
        identity.push_str(&self.id);
        std::borrow::Cow::Owned(identity)
    }
}

/// A payload type with its CloudEvents `type`.
pub trait EventData: Serialize + DeserializeOwned {
    /// The CloudEvents `type` attribute of events carrying this payload.
    const EVENT_TYPE: &'static str;
}

/// An order was placed: the payload of `order.created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The order id; also the record key.
    pub order_id: String,
    /// Who placed the order.
    pub customer: Customer,
    /// What was ordered; never empty.
    pub items: Vec<OrderItem>,
    /// ISO 4217 currency code of every price.
    pub currency: String,
    /// Sum of quantity × unit price over the items, in minor units.
    pub total: u64,
    /// When the order was accepted by the producer.
    pub created_at: DateTime<Utc>,
}

impl EventData for OrderCreated {
    const EVENT_TYPE: &'static str = "order.created";
}

/// A payment was declined: the payload of `order.payment_failed`, keyed by order id. The inventory consumer
/// releases the order's reservation when it reads one (the saga's compensation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    /// The order whose payment failed.
    pub order_id: String,
    /// Why, as the payment API said (e.g. `insufficient_funds`).
    pub reason: String,
    /// The id of the `order.created` event whose charge was declined.
    pub causing_event_id: String,
}

impl EventData for PaymentFailed {
    const EVENT_TYPE: &'static str = "order.payment_failed";
}

/// A payment succeeded: the payload of `order.paid`, keyed by order id, published by the payment consumer
/// once the charge was accepted. It carries what fulfilment needs (the customer and the items), so that the
/// shipping consumer creates the order's label from it alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    /// The order that was paid.
    pub order_id: String,
    /// Who paid.
    pub customer: Customer,
    /// What was ordered.
    pub items: Vec<OrderItem>,
    /// The amount charged, in minor units.
    pub amount: u64,
    /// ISO 4217 currency code of the amount.
    pub currency: String,
    /// The payment API's id of the charge, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_id: Option<String>,
    /// The id of the `order.created` event whose charge succeeded.
    pub causing_event_id: String,
}

impl OrderPaid {
    /// The payment of `order`, charged as `charge_id`; `causing_event_id` is the id of its `order.created`.
    pub fn of(order: OrderCreated, charge_id: Option<String>, causing_event_id: String) -> Self {
        let OrderCreated { order_id, customer, items, currency, total, .. } = order;
        Self { order_id, customer, items, amount: total, currency, charge_id, causing_event_id }
    }
}

impl EventData for OrderPaid {
    const EVENT_TYPE: &'static str = "order.paid";
}

/// The id of the `T` event caused by the event `causing_id`: the same on every redelivery of the cause (so a
/// republished event is a duplicate its consumers' idempotency keys absorb), different for each type.
pub fn caused_id<T: EventData>(causing_id: &str) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x2c1b_7e4a_9d3f_4e2a_8b6c_5d4e_3f2a_1b0c);
    Uuid::new_v5(&NAMESPACE, format!("{}:{causing_id}", T::EVENT_TYPE).as_bytes())
}

/// The customer of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// The customer's id in the caller's system.
    pub id: String,
    /// Where the order confirmation goes.
    pub email: String,
    /// Phone number for SMS notifications, when the customer gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// Stock keeping unit.
    pub sku: String,
    /// How many; at least 1.
    pub quantity: u32,
    /// Price of one unit in minor units of the order's currency (cents for EUR).
    pub unit_price: u64,
}

/// Why a record value is not an event this consumer can handle. Every variant is permanent: retrying the
/// same bytes cannot help, so such records are routed to the failure path, never retried.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The value is not JSON at all.
    #[error("record value is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not a CloudEvent (a required attribute is missing or has the wrong type).
    #[error("record value is not a CloudEvent: {0}")]
    NotCloudEvent(#[source] serde_json::Error),
    /// A CloudEvent of a `specversion` courier does not speak.
    #[error("unsupported CloudEvents specversion {0:?}")]
    UnsupportedSpecVersion(String),
    /// A CloudEvent of a `type` this consumer does not handle.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// The right type, but `data` does not match its schema.
    #[error("event {id} of type {event_type} has invalid data: {source}")]
    InvalidData {
        /// The event's id, so the failure can be traced.
        id: String,
        /// The event's type.
        event_type: String,
        /// What serde found wrong, with the path of the field.
        source: serde_json::Error,
    },
    /// The record has no value (a tombstone).
    #[error("record has no value")]
    Empty,
}

/// A CloudEvent whose `data` has not been decoded yet: lets a consumer that reads several event types
/// look at `type` first and decode `data` once. `data` may be absent (an event without data, or one whose
/// data is `data_base64`): decoding it then reads `null`.
pub type RawEvent = CloudEvent<Option<Box<serde_json::value::RawValue>>>;

/// Decodes the envelope only, checking `specversion`; `data` stays raw JSON.
pub fn decode_envelope(value: Option<&[u8]>) -> Result<RawEvent, DecodeError> {
    let bytes = value.ok_or(DecodeError::Empty)?;
    // Parse once as JSON to tell "not JSON" from "JSON but not a CloudEvent".
    let raw: RawEvent = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() { DecodeError::NotJson(e) } else { DecodeError::NotCloudEvent(e) }
    })?;
    if raw.specversion != SPEC_VERSION {
        return Err(DecodeError::UnsupportedSpecVersion(raw.specversion));
    }
    Ok(raw)
}

impl RawEvent {
    /// Decodes `data` as `T`, checking that the event is of `T`'s type; the envelope stays as it is.
    pub fn data<T: EventData>(&self) -> Result<T, DecodeError> {
        if self.event_type != T::EVENT_TYPE {
            return Err(DecodeError::UnknownType(self.event_type.clone()));
        }
        serde_json::from_str(self.data.as_deref().map_or("null", |data| data.get())).map_err(|source| {
            DecodeError::InvalidData { id: self.id.clone(), event_type: self.event_type.clone(), source }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CloudEvent<OrderCreated> {
        CloudEvent::new(
            Uuid::nil(),
            PRODUCER_SOURCE,
            Utc::now(),
            Some("o-1".into()),
            OrderCreated {
                order_id: "o-1".into(),
                customer: Customer { id: "c-1".into(), email: "ada@example.com".into(), phone: None },
                items: vec![OrderItem { sku: "SKU-1".into(), quantity: 2, unit_price: 1299 }],
                currency: "EUR".into(),
                total: 2598,
                created_at: Utc::now(),
            },
        )
    }

    #[test]
    fn an_event_is_identified_by_its_source_and_id() {
        let mut event = sample();
        event.id = "e-1".into();
        assert_eq!(event.identity(), "e-1", "courier's own events keep their id as their identity");
        event.source = PAYMENT_SOURCE.into();
        assert_eq!(event.identity(), "e-1");
        event.source = "/signup".into();
        let signup = event.identity().into_owned();
        event.source = "/billing".into();
        let billing = event.identity().into_owned();
        assert_ne!(signup, billing, "one id from two sources: two events");
        for identity in [&signup, &billing] {
            let (digest, id) = identity.split_once(':').expect("digest:id");
            assert_eq!((digest.len(), id), (16, "e-1"), "{identity}");
            assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()), "{identity}");
        }
        event.source = "/signup".into();
        assert_eq!(event.identity(), signup, "the same event, the same identity");
    }

    #[test]
    fn round_trips_and_ignores_unknown_fields() {
        let event = sample();
        let mut json: serde_json::Value = serde_json::to_value(&event).expect("serialize");
        json["extension"] = "x".into();
        json["data"]["unknown"] = 1.into();
        let bytes = serde_json::to_vec(&json).expect("serialize");
        let back = decode_envelope(Some(&bytes)).expect("decode");
        assert_eq!(back.data::<OrderCreated>().expect("data"), event.data);
        assert_eq!((&back.id, &back.source, &back.subject), (&event.id, &event.source, &event.subject));
        assert_eq!(json["type"], "order.created");
        assert_eq!(json["specversion"], "1.0");
    }

    #[test]
    fn classifies_each_kind_of_bad_value() {
        let good = serde_json::to_value(sample()).expect("serialize");
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            f(&mut v);
            serde_json::to_vec(&v).expect("serialize")
        };
        use DecodeError as E;
        type Case = (Option<Vec<u8>>, &'static str, fn(&DecodeError) -> bool);
        let cases: Vec<Case> = vec![
            (None, "empty", |e| matches!(e, E::Empty)),
            (Some(b"not json".to_vec()), "not json", |e| matches!(e, E::NotJson(_))),
            (Some(b"{\"truncated\":".to_vec()), "truncated", |e| matches!(e, E::NotJson(_))),
            (Some(b"[1,2]".to_vec()), "an array", |e| matches!(e, E::NotCloudEvent(_))),
            (Some(with(&|v| drop(v.as_object_mut().map(|o| o.remove("id"))))), "no id", |e| {
                matches!(e, E::NotCloudEvent(_))
            }),
            (Some(with(&|v| v["specversion"] = "0.3".into())), "specversion 0.3", |e| {
                matches!(e, E::UnsupportedSpecVersion(_))
            }),
            (Some(with(&|v| v["type"] = "order.shipped".into())), "another type", |e| matches!(e, E::UnknownType(_))),
            (Some(with(&|v| v["data"]["items"] = "none".into())), "bad items", |e| matches!(e, E::InvalidData { .. })),
            (Some(with(&|v| drop(v["data"].as_object_mut().map(|o| o.remove("order_id"))))), "no order id", |e| {
                matches!(e, E::InvalidData { .. })
            }),
        ];
        for (value, case, expected) in cases {
            let err = decode_envelope(value.as_deref()).and_then(|raw| raw.data::<OrderCreated>()).expect_err(case);
            assert!(expected(&err), "{case}: {err}");
        }
    }
}
