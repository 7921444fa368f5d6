//! The mock APIs, one entry each in [`SPECS`]: name, endpoint, business rules (what each answers to a
//! first, well-formed request) and how an accepted request reads in a log line. Adding an API is one
//! [`Api`] variant and one [`ApiSpec`] entry; routes, counters, effects and faults follow from the table.
//!
//! # Business rules
//!
//! Besides injected faults (see [`crate::Faults`]), some requests get a business answer that a real API
//! would give too. The rules are decided once per idempotency key, under the API's lock:
//!
//! * **Declined charge** (`payment`): a charge whose `amount` is a JSON integer (minor units) ending in
//!   the two digits [`DECLINED_AMOUNT_SUFFIX`] (`amount % 100 == 13`, see [`is_declined_amount`]) is
//!   answered `402 {"error":"card_declined","decline_reason":"insufficient_funds","order_id":…}`. It is a
//!   final answer: remembered under the key like a success (a replay gets the same 402 and counts as a
//!   duplicate), recorded among the API's *declines* ([`crate::MockApis::declines`], `GET
//!   /payment/declines`, [`crate::ApiStats::declines`]) and **not** among its effects.
//! * **Unknown SKU** (`inventory`): a reservation with an item whose `sku` starts with
//!   [`UNKNOWN_SKU_PREFIX`] is answered `409 {"error":"unknown_sku","sku":…}` (the first such SKU). No
//!   effect, and not remembered: a retry with the key gets 409 again. Counted in
//!   [`crate::ApiStats::refused`].
//! * **Release** (`inventory_release`, `POST /inventory/reservations/{order_id}/release`): releases
//!   every reservation (inventory effect) recorded for the order, matched on the reservation body's
//!   `order_id`.
//!   * A reservation is held → `200 {"order_id","status":"released"}`, recorded as an effect.
//!   * No reservation of the order → `404 {"error":"reservation_not_found","order_id":…}`, no effect,
//!     not remembered (a retry after the reservation exists succeeds); counted in
//!     [`crate::ApiStats::refused`].
//!   * The order's reservations were all released already (a release with a *new* key) →
//!     `200 {"order_id","status":"already_released"}`: releasing is idempotent by nature, so the caller
//!     gets a success, but no second effect is recorded. The answer is remembered under the new key. A
//!     reservation recorded for the order after its release can be released again.
//!
//! `auth` and the e-mail log line also read structured CloudEvents (`{"specversion","type","data":{…}}`):
//! a field missing from the body is looked up in the event (see [`field_or_event`]).

use std::fmt;
use std::str::FromStr;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// A charge whose `amount` (a JSON integer, in minor units) ends in these two digits
/// (`amount % 100 == DECLINED_AMOUNT_SUFFIX`) is declined with 402, e.g. `1213` or `13`.
pub const DECLINED_AMOUNT_SUFFIX: u64 = 13;

/// A reservation with an item whose `sku` starts with this text is refused with 409 (`unknown_sku`),
/// e.g. `UNKNOWN-1`.
pub const UNKNOWN_SKU_PREFIX: &str = "UNKNOWN";

/// Whether the payment API declines a charge of `amount` minor units: `amount % 100 ==`
/// [`DECLINED_AMOUNT_SUFFIX`].
pub fn is_declined_amount(amount: u64) -> bool {
    amount % 100 == DECLINED_AMOUNT_SUFFIX
}

/// One of the downstream APIs the server mocks (what each does: its entry in the table of APIs).
/// Serialized in snake case (`"inventory"`, …, `"inventory_release"`, `"shipping"`, `"auth"`), the name
/// used in `/stats` and `/{api}/effects`.
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
    /// Releases of reservations: `POST /inventory/reservations/{order_id}/release`. Served under the
    /// inventory API's base URL, but with its own counters, effects, call journal and faults, so that
    /// releases can be counted (and broken) apart from reservations.
    InventoryRelease,
    /// Shipping labels: `POST /shipping/labels`.
    Shipping,
    /// User accounts: `POST /auth/users`.
    Auth,
}

/// Everything about one API, as one entry of [`SPECS`].
#[derive(Debug)]
pub(crate) struct ApiSpec {
    /// The API this entry describes; [`SPECS`] lists them in declaration order.
    pub api: Api,
    /// Snake-case name: the path prefix of `/{api}/effects` and `/{api}/declines`, the key in `/stats`.
    pub name: &'static str,
    /// Path of the base URL a consumer configures, e.g. `/inventory`.
    pub base_path: &'static str,
    /// Path of the API's one `POST` endpoint, under `base_path`; `{order_id}` in it is taken from the path.
    pub endpoint_path: &'static str,
    /// What the API does, in a few words (logged as the server starts).
    pub doc: &'static str,
    /// The business answer to a first request with this body, given where the order's reservation stands
    /// (only the release looks at it).
    pub decide: fn(&Value, Reservation) -> Decision,
    /// An accepted request with this body, in words, for the log; never fails.
    pub describe: fn(&Value) -> String,
}

/// The APIs, in the order of [`Api::ALL`] and `/stats`.
pub(crate) const SPECS: [ApiSpec; 7] = [
    ApiSpec {
        api: Api::Inventory,
        name: "inventory",
        base_path: "/inventory",
        endpoint_path: "/inventory/reservations",
        doc: "stock reservations; 409 for an unknown SKU",
        decide: |body, _| match unknown_sku(body) {
            Some(sku) => Decision::Refuse(StatusCode::CONFLICT, json!({ "error": "unknown_sku", "sku": sku })),
            None => Decision::Effect(
                StatusCode::CREATED,
                json!({ "reservation_id": id(), "order_id": field(body, "order_id") }),
            ),
        },
        describe: |body| {
            let items = match body.get("items") {
                Some(Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(|item| format!("{} × {}", text(item.get("quantity")), text(item.get("sku"))))
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => "no items".to_owned(),
            };
            format!("reserved {items} for order {}", text(body.get("order_id")))
        },
    },
    ApiSpec {
        api: Api::Payment,
        name: "payment",
        base_path: "/payment",
        endpoint_path: "/payment/charges",
        doc: "card charges; 402 for an amount ending in 13",
        decide: |body, _| {
            if body.get("amount").and_then(Value::as_u64).is_some_and(is_declined_amount) {
                let answer = json!({
                    "error": "card_declined",
                    "decline_reason": "insufficient_funds",
                    "order_id": field(body, "order_id"),
                });
                return Decision::Decline(StatusCode::PAYMENT_REQUIRED, answer);
            }
            let [order_id, amount, currency] = ["order_id", "amount", "currency"].map(|name| field(body, name));
            Decision::Effect(
                StatusCode::CREATED,
                json!({ "charge_id": id(), "order_id": order_id, "amount": amount, "currency": currency }),
            )
        },
        describe: |body| {
            let [amount, currency, order_id] = ["amount", "currency", "order_id"].map(|name| text(body.get(name)));
            format!("charged {amount} {currency} for order {order_id}")
        },
    },
    ApiSpec {
        api: Api::Email,
        name: "email",
        base_path: "/email",
        endpoint_path: "/email/messages",
        doc: "e-mail messages",
        decide: |body, _| message(body),
        describe: |body| {
            let to = text(field_or_event(body, "to", "/data/email"));
            format!("e-mail to {to}: {}", text(field_or_event(body, "subject", "/type")))
        },
    },
    ApiSpec {
        api: Api::Sms,
        name: "sms",
        base_path: "/sms",
        endpoint_path: "/sms/messages",
        doc: "text messages",
        decide: |body, _| message(body),
        describe: |body| format!("SMS to {}: {}", text(body.get("to")), text(body.get("text"))),
    },
    ApiSpec {
        api: Api::InventoryRelease,
        name: "inventory_release",
        base_path: "/inventory",
        endpoint_path: "/inventory/reservations/{order_id}/release",
        doc: "releases of reservations; 404 without one",
        decide: |body, reservation| {
            let order_id = field(body, "order_id");
            match reservation {
                Reservation::Missing => Decision::Refuse(
                    StatusCode::NOT_FOUND,
                    json!({ "error": "reservation_not_found", "order_id": order_id }),
                ),
                Reservation::Held => {
                    Decision::Effect(StatusCode::OK, json!({ "order_id": order_id, "status": "released" }))
                }
                Reservation::Released => {
                    Decision::Unchanged(StatusCode::OK, json!({ "order_id": order_id, "status": "already_released" }))
                }
            }
        },
        describe: |body| format!("released the reservation of order {}", text(body.get("order_id"))),
    },
    ApiSpec {
        api: Api::Shipping,
        name: "shipping",
        base_path: "/shipping",
        endpoint_path: "/shipping/labels",
        doc: "shipping labels",
        decide: |body, _| {
            let tracking_number = format!("TRK-{:08X}", rand::random::<u32>());
            Decision::Effect(
                StatusCode::CREATED,
                json!({ "label_id": id(), "order_id": field(body, "order_id"), "tracking_number": tracking_number }),
            )
        },
        describe: |body| {
            let city = text(body.pointer("/address/city"));
            format!("label for order {} to {city}", text(body.get("order_id")))
        },
    },
    ApiSpec {
        api: Api::Auth,
        name: "auth",
        base_path: "/auth",
        endpoint_path: "/auth/users",
        doc: "user accounts, from a plain body or a CloudEvent",
        decide: |body, _| {
            let user_id = field_or_event(body, "user_id", "/data/user_id").cloned().unwrap_or(Value::Null);
            Decision::Effect(StatusCode::CREATED, json!({ "account_id": id(), "user_id": user_id }))
        },
        describe: |body| format!("account for {}", text(field_or_event(body, "email", "/data/email"))),
    },
];

// `Api::spec` indexes SPECS by variant: every entry must sit at its variant's position.
const _: () = {
    let mut i = 0;
    while i < SPECS.len() {
        assert!(SPECS[i].api as usize == i, "SPECS must list the APIs in declaration order");
        i += 1;
    }
};

impl Api {
    /// Every API, in the order they appear in `/stats`.
    pub const ALL: [Api; SPECS.len()] = {
        let mut all = [Api::Inventory; SPECS.len()];
        let mut i = 0;
        while i < SPECS.len() {
            all[i] = SPECS[i].api;
            i += 1;
        }
        all
    };

    /// The API's entry in [`SPECS`].
    pub(crate) fn spec(self) -> &'static ApiSpec {
        &SPECS[self.index()]
    }

    /// Position of the API in [`Api::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The API's snake-case name: `inventory`, `payment`, `email`, `sms`, `inventory_release`, `shipping`
    /// or `auth`. It is the path prefix of `/{api}/effects` and `/{api}/declines`, and for all but
    /// `inventory_release` of the API's endpoint too.
    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// The path of the API's base URL as a consumer configures it, e.g. `/inventory`; `/inventory` for
    /// [`Api::InventoryRelease`] too, whose endpoint lies under the inventory API.
    pub fn base_path(self) -> &'static str {
        self.spec().base_path
    }

    /// The path of the API's one `POST` endpoint, e.g. `/inventory/reservations`. For
    /// [`Api::InventoryRelease`] it is the template `/inventory/reservations/{order_id}/release` (see
    /// [`Api::release_path`] for a real path).
    pub fn endpoint_path(self) -> &'static str {
        self.spec().endpoint_path
    }

    /// The path releasing the reservation of `order_id`, e.g. `/inventory/reservations/o-1/release`
    /// (characters other than ASCII letters, digits and `-._~` percent-encoded).
    pub fn release_path(order_id: &str) -> String {
        let mut encoded = String::with_capacity(order_id.len());
        for byte in order_id.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                encoded.push(char::from(byte));
            } else {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        }
        format!("/inventory/reservations/{encoded}/release")
    }

    /// What the API answers to a first (non-replayed) request with `body`, by its business rules, with a
    /// fresh id. `reservation` is where the order's reservation stands; only
    /// [`Api::InventoryRelease`] looks at it.
    pub(crate) fn decide(self, body: &Value, reservation: Reservation) -> Decision {
        (self.spec().decide)(body, reservation)
    }

    /// What an accepted request with `body` did, in words, e.g.
    /// `reserved 2 × SKU-1, 1 × SKU-2 for order o-123`, `e-mail to ada@example.com: Your order` or
    /// `SMS to +15550100: Shipped`. Missing fields read as `?`; never fails.
    pub fn describe(self, body: &Value) -> String {
        (self.spec().describe)(body)
    }
}

/// A declined request with `body` and answer `answer` in words, e.g.
/// `declined 1213 EUR for order o-1: card_declined (insufficient_funds)`.
pub(crate) fn describe_decline(body: &Value, answer: &Value) -> String {
    format!(
        "declined {} {} for order {}: {} ({})",
        text(body.get("amount")),
        text(body.get("currency")),
        text(body.get("order_id")),
        text(answer.get("error")),
        text(answer.get("decline_reason"))
    )
}

/// A fresh id for an answer.
fn id() -> String {
    Uuid::new_v4().to_string()
}

/// The field `name` of `body`, `null` when missing.
fn field(body: &Value, name: &str) -> Value {
    body.get(name).cloned().unwrap_or(Value::Null)
}

/// The answer of the message APIs (e-mail, SMS): queued.
fn message(body: &Value) -> Decision {
    Decision::Effect(StatusCode::ACCEPTED, json!({ "message_id": id(), "to": field(body, "to"), "status": "queued" }))
}

/// The field `name` of `body`, or, when `body` lacks it (or has `null`) and is a structured CloudEvent
/// (it has `specversion` and `data`), the value at the JSON pointer `in_event`, e.g. `/data/email`.
fn field_or_event<'a>(body: &'a Value, name: &str, in_event: &str) -> Option<&'a Value> {
    let present = |value: Option<&'a Value>| value.filter(|value| !value.is_null());
    let is_event = body.get("specversion").is_some() && body.get("data").is_some();
    present(body.get(name)).or_else(|| if is_event { present(body.pointer(in_event)) } else { None })
}

/// A JSON value in words: a string as is, a missing value or `null` as `?`, anything else as JSON.
fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "?".to_owned(),
        Some(other) => other.to_string(),
    }
}

/// The first `sku` of the reservation `body` that starts with [`UNKNOWN_SKU_PREFIX`], if any.
fn unknown_sku(body: &Value) -> Option<String> {
    body.get("items")?
        .as_array()?
        .iter()
        .filter_map(|item| item.get("sku")?.as_str())
        .find(|sku| sku.starts_with(UNKNOWN_SKU_PREFIX))
        .map(str::to_owned)
}

/// An order id as text: a string as is, a number in JSON; `None` for anything else (or nothing).
pub(crate) fn order_id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Where the reservation of an order stands when a release arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reservation {
    /// No reservation was recorded for the order.
    Missing,
    /// At least one reservation of the order was not released yet.
    Held,
    /// Every reservation of the order was released already.
    Released,
}

/// The business answer to a first (non-replayed) request: its status and body, and what becomes of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Takes effect: remembered under the key and recorded as an effect.
    Effect(StatusCode, Value),
    /// A final refusal (a declined charge): remembered under the key like a success and recorded among
    /// the declines, not the effects.
    Decline(StatusCode, Value),
    /// Nothing left to do (a release of an already released reservation): remembered under the key,
    /// recorded nowhere.
    Unchanged(StatusCode, Value),
    /// Refused and not remembered (unknown SKU, reservation not found): a retry is decided afresh.
    Refuse(StatusCode, Value),
}

impl Decision {
    /// The status and body answered.
    pub(crate) fn answer(&self) -> (StatusCode, &Value) {
        match self {
            Decision::Effect(status, body)
            | Decision::Decline(status, body)
            | Decision::Unchanged(status, body)
            | Decision::Refuse(status, body) => (*status, body),
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a name that is not one of the APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownApi(pub String);

impl fmt::Display for UnknownApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Api::ALL.iter().map(|api| api.as_str()).collect();
        write!(f, "unknown API {:?} (expected one of: {})", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownApi {}

impl FromStr for Api {
    type Err = UnknownApi;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Api::ALL.into_iter().find(|api| api.as_str() == s).ok_or_else(|| UnknownApi(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CloudEvent of a user's registration, as the forward consumer delivers it (structured mode).
    fn registration() -> Value {
        json!({"specversion": "1.0", "type": "user.registered", "id": "e-1", "source": "/signup",
               "data": {"user_id": "u-1", "email": "ada@example.com"}})
    }

    #[test]
    fn the_table_matches_the_enum() {
        for (i, api) in Api::ALL.into_iter().enumerate() {
            assert_eq!(api.index(), i);
            assert_eq!(api.as_str().parse::<Api>(), Ok(api));
            assert_eq!(serde_json::to_value(api).ok(), Some(Value::from(api.as_str())), "serde name of {api:?}");
            assert!(api.endpoint_path().starts_with(&format!("{}/", api.base_path())));
            if api != Api::InventoryRelease {
                assert_eq!(api.base_path(), format!("/{api}"));
            }
        }
        assert_eq!(Api::ALL[..5], [Api::Inventory, Api::Payment, Api::Email, Api::Sms, Api::InventoryRelease]);
        assert_eq!(Api::InventoryRelease.base_path(), "/inventory");
        for name in ["Inventory", "inventoryrelease", "billing"] {
            let error = name.parse::<Api>().expect_err(name);
            assert!(error.to_string().ends_with("sms, inventory_release, shipping, auth)"), "{error}");
        }
    }

    #[test]
    fn release_paths_are_encoded() {
        assert_eq!(Api::release_path("o-1"), "/inventory/reservations/o-1/release");
        assert_eq!(Api::release_path("a b/c"), "/inventory/reservations/a%20b%2Fc/release");
    }

    #[test]
    fn first_answers_echo_the_request() {
        let cases = [
            (
                Api::Inventory,
                json!({"order_id": "o-1", "items": []}),
                201,
                "reservation_id",
                json!({"order_id": "o-1"}),
            ),
            (
                Api::Payment,
                json!({"order_id": "o-1", "amount": 1234, "currency": "EUR", "extra": true}),
                201,
                "charge_id",
                json!({"order_id": "o-1", "amount": 1234, "currency": "EUR"}),
            ),
            (
                Api::Email,
                json!({"to": "a@example.com"}),
                202,
                "message_id",
                json!({"to": "a@example.com", "status": "queued"}),
            ),
            (Api::Sms, json!({}), 202, "message_id", json!({"to": null, "status": "queued"})),
            (Api::Shipping, json!({"order_id": "o-1", "address": {}}), 201, "label_id", json!({"order_id": "o-1"})),
            (Api::Auth, json!({"user_id": "u-1"}), 201, "account_id", json!({"user_id": "u-1"})),
            (Api::Auth, registration(), 201, "account_id", json!({"user_id": "u-1"})),
            (Api::Auth, json!({"data": {"user_id": "u-1"}}), 201, "account_id", json!({"user_id": null})),
        ];
        for (api, body, status, id_field, echoed) in cases {
            let Decision::Effect(got, answer) = api.decide(&body, Reservation::Missing) else {
                panic!("{api}: not an effect");
            };
            assert_eq!(got.as_u16(), status, "{api}");
            assert!(answer[id_field].as_str().is_some_and(|id| id.len() == 36), "{api}: {answer}");
            for (name, value) in echoed.as_object().expect("object") {
                assert_eq!(&answer[name], value, "{api}: {name} in {answer}");
            }
        }
        let Decision::Effect(_, label) = Api::Shipping.decide(&json!({}), Reservation::Missing) else {
            panic!("not an effect");
        };
        let tracking = label["tracking_number"].as_str().expect("tracking number");
        assert!(
            tracking.strip_prefix("TRK-").is_some_and(|hex| hex.len() == 8 && u32::from_str_radix(hex, 16).is_ok())
        );
    }

    #[test]
    fn amounts_ending_in_13_are_declined() {
        for amount in [13, 113, 1213, 999_913] {
            assert!(is_declined_amount(amount), "{amount}");
            let decision = Api::Payment
                .decide(&json!({"order_id": "o-1", "amount": amount, "currency": "EUR"}), Reservation::Held);
            assert_eq!(
                decision,
                Decision::Decline(
                    StatusCode::PAYMENT_REQUIRED,
                    json!({"error": "card_declined", "decline_reason": "insufficient_funds", "order_id": "o-1"})
                )
            );
        }
        // Only JSON integers: other amounts are charged.
        for amount in [json!(1214), json!(3), json!(130), json!("1213"), json!(12.13), json!(-13), Value::Null] {
            let decision = Api::Payment.decide(&json!({"order_id": "o-1", "amount": amount}), Reservation::Missing);
            assert!(matches!(decision, Decision::Effect(StatusCode::CREATED, _)), "{amount}: {decision:?}");
        }
    }

    #[test]
    fn unknown_skus_are_refused() {
        let body = json!({"order_id": "o-1", "items": [{"sku": "SKU-1", "quantity": 1}, {"sku": "UNKNOWN-7"}]});
        assert_eq!(
            Api::Inventory.decide(&body, Reservation::Missing),
            Decision::Refuse(StatusCode::CONFLICT, json!({"error": "unknown_sku", "sku": "UNKNOWN-7"}))
        );
        for body in [
            json!({"items": [{"sku": "SKU-UNKNOWN"}]}),
            json!({"items": [{"sku": "unknown-1"}]}),
            json!({"items": "UNKNOWN"}),
            json!({}),
        ] {
            assert!(matches!(Api::Inventory.decide(&body, Reservation::Missing), Decision::Effect(..)), "{body}");
        }
    }

    #[test]
    fn releases_depend_on_the_reservation() {
        let body = json!({"order_id": "o-1"});
        assert_eq!(
            Api::InventoryRelease.decide(&body, Reservation::Missing),
            Decision::Refuse(StatusCode::NOT_FOUND, json!({"error": "reservation_not_found", "order_id": "o-1"}))
        );
        assert_eq!(
            Api::InventoryRelease.decide(&body, Reservation::Held),
            Decision::Effect(StatusCode::OK, json!({"order_id": "o-1", "status": "released"}))
        );
        assert_eq!(
            Api::InventoryRelease.decide(&body, Reservation::Released),
            Decision::Unchanged(StatusCode::OK, json!({"order_id": "o-1", "status": "already_released"}))
        );
        assert_eq!(order_id_text(body.get("order_id")), Some("o-1".to_owned()));
        assert_eq!(order_id_text(Some(&json!(42))), Some("42".to_owned()));
        assert_eq!(order_id_text(Some(&json!([1]))), None);
        assert_eq!(order_id_text(None), None);
    }

    #[test]
    fn effects_read_as_words() {
        let cases = [
            (
                Api::Inventory,
                json!({"order_id": "o-123", "items": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}]}),
                "reserved 2 × SKU-1, 1 × SKU-2 for order o-123",
            ),
            (
                Api::Payment,
                json!({"order_id": "o-1", "amount": "12.50", "currency": "EUR"}),
                "charged 12.50 EUR for order o-1",
            ),
            (
                Api::Email,
                json!({"to": "ada@example.com", "subject": "Your order"}),
                "e-mail to ada@example.com: Your order",
            ),
            (Api::Email, registration(), "e-mail to ada@example.com: user.registered"),
            (Api::Sms, json!({"to": "+15550100", "text": "Shipped"}), "SMS to +15550100: Shipped"),
            (Api::InventoryRelease, json!({"order_id": "o-9", "reason": "x"}), "released the reservation of order o-9"),
            (Api::Shipping, json!({"order_id": "o-1", "address": {"city": "Lyon"}}), "label for order o-1 to Lyon"),
            (Api::Auth, json!({"user_id": "u-1", "email": "ada@example.com"}), "account for ada@example.com"),
            (Api::Auth, registration(), "account for ada@example.com"),
            // Odd bodies never fail.
            (Api::Inventory, json!({"items": [1]}), "reserved ? × ? for order ?"),
            (Api::Email, json!({"to": 7, "type": "not an event"}), "e-mail to 7: ?"),
            (Api::Shipping, json!({"address": "Lyon"}), "label for order ? to ?"),
            (Api::Auth, json!({"data": {"email": "ada@example.com"}}), "account for ?"),
        ];
        for (api, body, words) in cases {
            assert_eq!(api.describe(&body), words, "{api}: {body}");
        }
        for api in Api::ALL {
            assert!(!api.describe(&json!({})).is_empty());
        }
        assert_eq!(
            describe_decline(
                &json!({"order_id": "o-1", "amount": 1213, "currency": "EUR"}),
                &json!({"error": "card_declined", "decline_reason": "insufficient_funds"})
            ),
            "declined 1213 EUR for order o-1: card_declined (insufficient_funds)"
        );
    }
}
