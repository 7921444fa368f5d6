//! The table of APIs ([`spec`]): for each, its path, its business rules (what it answers to a first,
//! well-formed request) and its effect in words for the log. Adding an API is one [`Api`] variant and one
//! entry; routes, counters, effects, journal and faults follow from the table.

use std::fmt;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// A charge whose `amount` (a JSON integer, in minor units) ends in these two digits is declined with 402
/// (`amount % 100 == 13`).
pub const DECLINED_AMOUNT_SUFFIX: u64 = 13;

/// A reservation with an item whose `sku` starts with this text is refused with 409 (`unknown_sku`).
pub const UNKNOWN_SKU_PREFIX: &str = "UNKNOWN";

/// One of the mocked APIs, named in snake case in `/stats`, `/{api}/effects` and `/{api}/declines`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// Stock reservations: `POST /inventory/reservations`.
    Inventory,
    /// Card charges: `POST /payment/charges`.
    Payment,
    /// E-mail messages: `POST /email/messages`.
    Email,
    /// Text messages: `POST /sms/messages`.
    Sms,
    /// Releases of reservations: `POST /inventory/reservations/{order_id}/release`, under the inventory
    /// API's base URL but with counters, effects, journal and faults of its own.
    InventoryRelease,
    /// Shipping labels: `POST /shipping/labels`.
    Shipping,
    /// User accounts: `POST /auth/users`.
    Auth,
}

/// One entry of the table of APIs ([`spec`]).
#[derive(Clone, Copy)]
pub(crate) struct Spec {
    /// Its snake-case name.
    name: &'static str,
    /// The path of the base URL a consumer configures (`apis.<name>.base_url`).
    base: &'static str,
    /// The path of its one `POST` endpoint; a `{order_id}` in it becomes the body's `order_id` if missing.
    endpoint: &'static str,
    /// The answer to a first request with this body, given where its order's reservation stands.
    pub decide: fn(&Value, Reservation) -> Answer,
    /// An accepted request with this body in words, e.g. `reserved 2 × SKU-1 for order o-1` (`?` if missing).
    pub describe: fn(&Value) -> String,
}

/// The entry of `api` in the table of APIs.
pub(crate) fn spec(api: Api) -> Spec {
    match api {
        Api::Inventory => Spec {
            name: "inventory",
            base: "/inventory",
            endpoint: "/inventory/reservations",
            decide: |body, _| match unknown_sku(body) {
                Some(sku) => (Outcome::Refused, StatusCode::CONFLICT, json!({"error": "unknown_sku", "sku": sku})),
                None => (
                    Outcome::Effect,
                    StatusCode::CREATED,
                    json!({"reservation_id": id(), "order_id": body["order_id"]}),
                ),
            },
            describe: |body| format!("reserved {} for order {}", items(body), text(&body["order_id"])),
        },
        Api::Payment => Spec {
            name: "payment",
            base: "/payment",
            endpoint: "/payment/charges",
            decide: |body, _| {
                if body["amount"].as_u64().is_some_and(|amount| amount % 100 == DECLINED_AMOUNT_SUFFIX) {
                    let answer = json!({"error": "card_declined", "decline_reason": "insufficient_funds",
                                "order_id": body["order_id"]});
                    return (Outcome::Decline, StatusCode::PAYMENT_REQUIRED, answer);
                }
                let charge = json!({"charge_id": id(), "order_id": body["order_id"], "amount": body["amount"],
                            "currency": body["currency"]});
                (Outcome::Effect, StatusCode::CREATED, charge)
            },
            describe: |body| {
                let [amount, currency, order] = ["amount", "currency", "order_id"].map(|field| text(&body[field]));
                format!("charged {amount} {currency} for order {order}")
            },
        },
        Api::Email => Spec {
            name: "email",
            base: "/email",
            endpoint: "/email/messages",
            decide: |body, _| queued(body),
            describe: |body| {
                let (to, subject) =
                    (field_or_event(body, "to", "/data/email"), field_or_event(body, "subject", "/type"));
                format!("e-mail to {}: {}", text(to), text(subject))
            },
        },
        Api::Sms => Spec {
            name: "sms",
            base: "/sms",
            endpoint: "/sms/messages",
            decide: |body, _| queued(body),
            describe: |body| format!("SMS to {}: {}", text(&body["to"]), text(&body["text"])),
        },
        Api::InventoryRelease => Spec {
            name: "inventory_release",
            base: "/inventory",
            endpoint: "/inventory/reservations/{order_id}/release",
            decide: |body, reservation| {
                let order_id = &body["order_id"];
                match reservation {
                    Reservation::Missing => (
                        Outcome::Refused,
                        StatusCode::NOT_FOUND,
                        json!({"error": "reservation_not_found", "order_id": order_id}),
                    ),
                    Reservation::Held => {
                        (Outcome::Effect, StatusCode::OK, json!({"order_id": order_id, "status": "released"}))
                    }
                    Reservation::Released => (
                        Outcome::Unchanged,
                        StatusCode::OK,
                        json!({"order_id": order_id, "status": "already_released"}),
                    ),
                }
            },
            describe: |body| format!("released the reservation of order {}", text(&body["order_id"])),
        },
        Api::Shipping => Spec {
            name: "shipping",
            base: "/shipping",
            endpoint: "/shipping/labels",
            decide: |body, _| {
                let tracking_number = format!("TRK-{:08X}", rand::random::<u32>());
                let label = json!({"label_id": id(), "order_id": body["order_id"], "tracking_number": tracking_number});
                (Outcome::Effect, StatusCode::CREATED, label)
            },
            describe: |body| {
                let (order, customer) = (text(&body["order_id"]), text(&body["customer_id"]));
                format!("label for order {order} to customer {customer}: {}", items(body))
            },
        },
        Api::Auth => Spec {
            name: "auth",
            base: "/auth",
            endpoint: "/auth/users",
            decide: |body, _| {
                let user_id = field_or_event(body, "user_id", "/data/user_id");
                (Outcome::Effect, StatusCode::CREATED, json!({"account_id": id(), "user_id": user_id}))
            },
            describe: |body| format!("account for {}", text(field_or_event(body, "email", "/data/email"))),
        },
    }
}

impl Api {
    /// Every API, in the order of `/stats`.
    pub const ALL: [Api; 7] =
        [Api::Inventory, Api::Payment, Api::Email, Api::Sms, Api::InventoryRelease, Api::Shipping, Api::Auth];

    /// Its snake-case name, e.g. `inventory_release`.
    pub fn as_str(self) -> &'static str {
        spec(self).name
    }

    /// The path of the base URL a consumer configures, e.g. `/inventory` (for [`Api::InventoryRelease`]
    /// too, whose endpoint lies under the inventory API).
    pub fn base_path(self) -> &'static str {
        spec(self).base
    }

    /// The path of its one `POST` endpoint, e.g. `/inventory/reservations`; a template with `{order_id}`
    /// (percent-decoded) for [`Api::InventoryRelease`].
    pub fn endpoint_path(self) -> &'static str {
        spec(self).endpoint
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the reservation of the order a release names stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reservation {
    /// The inventory API recorded no reservation of the order.
    Missing,
    /// A reservation of the order is not released yet.
    Held,
    /// Every reservation of the order is released.
    Released,
}

/// What becomes of a request the business rules see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It takes effect: remembered under its key, recorded as an effect.
    Effect,
    /// A final refusal (a declined charge): remembered under its key, recorded among the declines.
    Decline,
    /// Nothing is left to do (a release of a released reservation): remembered under its key only.
    Unchanged,
    /// Refused and not remembered (unknown SKU, no reservation): a retry is decided afresh.
    Refused,
    /// Its key was used before: the first answer again.
    Replayed,
}

/// An answer: what becomes of the request, its status and its body.
pub(crate) type Answer = (Outcome, StatusCode, Value);

/// A fresh id for an answer.
fn id() -> String {
    Uuid::new_v4().to_string()
}

/// The answer of the message APIs: queued.
fn queued(body: &Value) -> Answer {
    (Outcome::Effect, StatusCode::ACCEPTED, json!({"message_id": id(), "to": body["to"], "status": "queued"}))
}

/// The field `name` of `body`; when it lacks it and is a structured CloudEvent (it has `specversion`), the
/// value at `in_event`, e.g. `/data/email`; `null` when neither is there.
fn field_or_event<'a>(body: &'a Value, name: &str, in_event: &str) -> &'a Value {
    match &body[name] {
        Value::Null if body.get("specversion").is_some() => body.pointer(in_event).unwrap_or(&Value::Null),
        value => value,
    }
}

/// A JSON value in words: a string as is, `null` as `?`, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "?".to_owned(),
        other => other.to_string(),
    }
}

/// The `items` of `body` in words, e.g. `2 × SKU-1, 1 × SKU-2`.
fn items(body: &Value) -> String {
    match body["items"].as_array() {
        Some(items) if !items.is_empty() => {
            let lines: Vec<String> =
                items.iter().map(|item| format!("{} × {}", text(&item["quantity"]), text(&item["sku"]))).collect();
            lines.join(", ")
        }
        _ => "no items".to_owned(),
    }
}

/// The first `sku` of a reservation that starts with [`UNKNOWN_SKU_PREFIX`].
fn unknown_sku(body: &Value) -> Option<&str> {
    let items = body["items"].as_array()?;
    items.iter().filter_map(|item| item["sku"].as_str()).find(|sku| sku.starts_with(UNKNOWN_SKU_PREFIX))
}

/// An order id as text: a string as is, a number in JSON; `None` for anything else.
pub(crate) fn order_id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_read_as_words_and_odd_bodies_never_fail() {
        let event = json!({"specversion": "1.0", "type": "user.registered", "data": {"email": "ada@example.com"}});
        let label = json!({"order_id": "o-1", "customer_id": "c-1", "items": [{"sku": "SKU-1", "quantity": 2}]});
        let cases = [
            (Api::Shipping, label, "label for order o-1 to customer c-1: 2 × SKU-1"),
            (Api::Email, event.clone(), "e-mail to ada@example.com: user.registered"),
            (Api::Auth, event, "account for ada@example.com"),
            (Api::Inventory, json!({"items": [1]}), "reserved ? × ? for order ?"),
            (Api::Shipping, json!([]), "label for order ? to customer ?: no items"),
            (Api::Auth, json!({"data": {"email": "ada@example.com"}}), "account for ?"),
        ];
        for (api, body, words) in cases {
            assert_eq!((spec(api).describe)(&body), words, "{api}: {body}");
        }
    }
}
