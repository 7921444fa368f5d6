//! The mock APIs: their names, their endpoints, their business rules (what each answers to a first,
//! well-formed request), and how an accepted request reads in a log line.
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

/// One of the downstream APIs the server mocks. Serialized in snake case (`"inventory"`, `"payment"`,
/// …, `"inventory_release"`), the name used in `/stats`, `/{api}/effects` and `/admin/faults/{api}`.
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
}

impl Api {
    /// Every API, in the order they appear in `/stats`.
    pub const ALL: [Api; 5] = [Api::Inventory, Api::Payment, Api::Email, Api::Sms, Api::InventoryRelease];

    /// The API's snake-case name: `inventory`, `payment`, `email`, `sms` or `inventory_release`. It is the
    /// path prefix of `/{api}/effects`, `/{api}/calls` and `/{api}/declines`, and for all but
    /// `inventory_release` of the API's endpoint too.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Inventory => "inventory",
            Api::Payment => "payment",
            Api::Email => "email",
            Api::Sms => "sms",
            Api::InventoryRelease => "inventory_release",
        }
    }

    /// The path of the API's base URL as a consumer configures it, e.g. `/inventory`; `/inventory` for
    /// [`Api::InventoryRelease`] too, whose endpoint lies under the inventory API.
    pub fn base_path(self) -> &'static str {
        match self {
            Api::Inventory | Api::InventoryRelease => "/inventory",
            Api::Payment => "/payment",
            Api::Email => "/email",
            Api::Sms => "/sms",
        }
    }

    /// The path of the API's one `POST` endpoint, e.g. `/inventory/reservations`. For
    /// [`Api::InventoryRelease`] it is the template `/inventory/reservations/{order_id}/release` (see
    /// [`Api::release_path`] for a real path).
    pub fn endpoint_path(self) -> &'static str {
        match self {
            Api::Inventory => "/inventory/reservations",
            Api::Payment => "/payment/charges",
            Api::Email => "/email/messages",
            Api::Sms => "/sms/messages",
            Api::InventoryRelease => "/inventory/reservations/{order_id}/release",
        }
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

    /// Position of the API in [`Api::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Api::Inventory => 0,
            Api::Payment => 1,
            Api::Email => 2,
            Api::Sms => 3,
            Api::InventoryRelease => 4,
        }
    }

    /// What the API answers to a first (non-replayed) request with `body`, by its business rules, with a
    /// fresh id. `reservation` is where the order's reservation stands; only
    /// [`Api::InventoryRelease`] looks at it.
    pub(crate) fn decide(self, body: &Value, reservation: Reservation) -> Decision {
        let field = |name: &str| body.get(name).cloned().unwrap_or(Value::Null);
        let id = Uuid::new_v4().to_string();
        match self {
            Api::Inventory => match unknown_sku(body) {
                Some(sku) => Decision::Refuse(StatusCode::CONFLICT, json!({ "error": "unknown_sku", "sku": sku })),
                None => Decision::Effect(
                    StatusCode::CREATED,
                    json!({ "reservation_id": id, "order_id": field("order_id") }),
                ),
            },
            Api::Payment => {
                if body.get("amount").and_then(Value::as_u64).is_some_and(is_declined_amount) {
                    return Decision::Decline(
                        StatusCode::PAYMENT_REQUIRED,
                        json!({
                            "error": "card_declined",
                            "decline_reason": "insufficient_funds",
                            "order_id": field("order_id"),
                        }),
                    );
                }
                Decision::Effect(
                    StatusCode::CREATED,
                    json!({
                        "charge_id": id,
                        "order_id": field("order_id"),
                        "amount": field("amount"),
                        "currency": field("currency"),
                    }),
                )
            }
            Api::Email | Api::Sms => Decision::Effect(
                StatusCode::ACCEPTED,
                json!({ "message_id": id, "to": field("to"), "status": "queued" }),
            ),
            Api::InventoryRelease => {
                let order_id = field("order_id");
                match reservation {
                    Reservation::Missing => Decision::Refuse(
                        StatusCode::NOT_FOUND,
                        json!({ "error": "reservation_not_found", "order_id": order_id }),
                    ),
                    Reservation::Held => {
                        Decision::Effect(StatusCode::OK, json!({ "order_id": order_id, "status": "released" }))
                    }
                    Reservation::Released => Decision::Unchanged(
                        StatusCode::OK,
                        json!({ "order_id": order_id, "status": "already_released" }),
                    ),
                }
            }
        }
    }

    /// What an accepted request with `body` did, in words, e.g.
    /// `reserved 2 × SKU-1, 1 × SKU-2 for order o-123`, `e-mail to ada@example.com: Your order` or
    /// `SMS to +15550100: Shipped`. Missing fields read as `?`; never fails.
    pub fn describe(self, body: &Value) -> String {
        match self {
            Api::Inventory => {
                let items = match body.get("items") {
                    Some(Value::Array(items)) if !items.is_empty() => items
                        .iter()
                        .map(|item| format!("{} × {}", text(item.get("quantity")), text(item.get("sku"))))
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => "no items".to_owned(),
                };
                format!("reserved {items} for order {}", text(body.get("order_id")))
            }
            Api::Payment => format!(
                "charged {} {} for order {}",
                text(body.get("amount")),
                text(body.get("currency")),
                text(body.get("order_id"))
            ),
            Api::Email => format!("e-mail to {}: {}", text(body.get("to")), text(body.get("subject"))),
            Api::Sms => format!("SMS to {}: {}", text(body.get("to")), text(body.get("text"))),
            Api::InventoryRelease => format!("released the reservation of order {}", text(body.get("order_id"))),
        }
    }

    /// A declined request with `body` in words, e.g.
    /// `declined 1213 EUR for order o-1: card_declined (insufficient_funds)`.
    pub(crate) fn describe_decline(self, body: &Value, answer: &Value) -> String {
        format!(
            "declined {} {} for order {}: {} ({})",
            text(body.get("amount")),
            text(body.get("currency")),
            text(body.get("order_id")),
            text(answer.get("error")),
            text(answer.get("decline_reason"))
        )
    }
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
        write!(f, "unknown API {:?} (expected inventory, payment, email, sms or inventory_release)", self.0)
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

    fn effect(decision: Decision) -> (StatusCode, Value) {
        match decision {
            Decision::Effect(status, body) => (status, body),
            other => panic!("not an effect: {other:?}"),
        }
    }

    #[test]
    fn names_round_trip() {
        for api in Api::ALL {
            assert_eq!(api.as_str().parse::<Api>(), Ok(api));
            assert_eq!(serde_json::to_value(api).ok(), Some(Value::from(api.as_str())));
            assert!(api.endpoint_path().starts_with(&format!("{}/", api.base_path())));
            assert_eq!(Api::ALL[api.index()], api);
        }
        for api in [Api::Inventory, Api::Payment, Api::Email, Api::Sms] {
            assert!(api.endpoint_path().starts_with(&format!("/{api}/")));
            assert_eq!(api.base_path(), format!("/{api}"));
        }
        assert_eq!(Api::InventoryRelease.as_str(), "inventory_release");
        assert_eq!(Api::InventoryRelease.base_path(), "/inventory");
        assert!("shipping".parse::<Api>().is_err());
        assert!("Inventory".parse::<Api>().is_err());
        assert!("inventoryrelease".parse::<Api>().is_err());
    }

    #[test]
    fn release_paths_are_encoded() {
        assert_eq!(Api::release_path("o-1"), "/inventory/reservations/o-1/release");
        assert_eq!(Api::release_path("a b/c"), "/inventory/reservations/a%20b%2Fc/release");
    }

    #[test]
    fn responses_echo_the_request() {
        let (status, body) = effect(Api::Payment.decide(
            &json!({"order_id": "o-1", "amount": 1234, "currency": "EUR", "extra": true}),
            Reservation::Missing,
        ));
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["order_id"], "o-1");
        assert_eq!(body["amount"], 1234);
        assert_eq!(body["currency"], "EUR");
        assert!(body["charge_id"].as_str().is_some_and(|id| id.len() == 36));

        let (status, body) = effect(Api::Sms.decide(&json!({}), Reservation::Missing));
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(body["to"], Value::Null);
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
        let body =
            json!({"order_id": "o-123", "items": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}]});
        assert_eq!(Api::Inventory.describe(&body), "reserved 2 × SKU-1, 1 × SKU-2 for order o-123");
        assert_eq!(
            Api::Payment.describe(&json!({"order_id": "o-1", "amount": "12.50", "currency": "EUR"})),
            "charged 12.50 EUR for order o-1"
        );
        assert_eq!(
            Api::Email.describe(&json!({"to": "ada@example.com", "subject": "Your order", "body": "…"})),
            "e-mail to ada@example.com: Your order"
        );
        assert_eq!(Api::Sms.describe(&json!({"to": "+15550100", "text": "Shipped"})), "SMS to +15550100: Shipped");
        assert_eq!(
            Api::InventoryRelease.describe(&json!({"order_id": "o-9", "reason": "cancelled"})),
            "released the reservation of order o-9"
        );
        assert_eq!(
            Api::Payment.describe_decline(
                &json!({"order_id": "o-1", "amount": 1213, "currency": "EUR"}),
                &json!({"error": "card_declined", "decline_reason": "insufficient_funds"})
            ),
            "declined 1213 EUR for order o-1: card_declined (insufficient_funds)"
        );
        // Odd bodies never fail.
        assert_eq!(Api::Inventory.describe(&json!({"items": [1]})), "reserved ? × ? for order ?");
        assert_eq!(Api::Sms.describe(&json!({})), "SMS to ?: ?");
        assert_eq!(Api::Email.describe(&json!({"to": 7})), "e-mail to 7: ?");
        assert_eq!(Api::InventoryRelease.describe(&json!({})), "released the reservation of order ?");
    }
}
