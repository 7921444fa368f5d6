//! The four mock APIs: their names, their endpoints, what each answers to an accepted request, and how
//! an accepted request reads in a log line.

use std::fmt;
use std::str::FromStr;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// One of the downstream APIs the server mocks. Serialized lower case (`"inventory"`, `"payment"`, …),
/// which is also its path prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// Stock reservations: `POST /inventory/reservations`.
    Inventory,
    /// Card charges: `POST /payment/charges`.
    Payment,
    /// E-mail messages: `POST /email/messages`.
    Email,
    /// Text messages: `POST /sms/messages`.
    Sms,
}

impl Api {
    /// Every API, in the order they appear in `/stats`.
    pub const ALL: [Api; 4] = [Api::Inventory, Api::Payment, Api::Email, Api::Sms];

    /// The API's lower-case name, also its path prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Inventory => "inventory",
            Api::Payment => "payment",
            Api::Email => "email",
            Api::Sms => "sms",
        }
    }

    /// The path of the API's one `POST` endpoint, e.g. `/inventory/reservations`.
    pub fn endpoint_path(self) -> &'static str {
        match self {
            Api::Inventory => "/inventory/reservations",
            Api::Payment => "/payment/charges",
            Api::Email => "/email/messages",
            Api::Sms => "/sms/messages",
        }
    }

    /// Position of the API in [`Api::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Api::Inventory => 0,
            Api::Payment => 1,
            Api::Email => 2,
            Api::Sms => 3,
        }
    }

    /// The status and body answered to a first (non-replayed) request with `body`, with a fresh id.
    pub(crate) fn respond(self, body: &Value) -> (StatusCode, Value) {
        let field = |name: &str| body.get(name).cloned().unwrap_or(Value::Null);
        let id = Uuid::new_v4().to_string();
        match self {
            Api::Inventory => (StatusCode::CREATED, json!({ "reservation_id": id, "order_id": field("order_id") })),
            Api::Payment => (
                StatusCode::CREATED,
                json!({
                    "charge_id": id,
                    "order_id": field("order_id"),
                    "amount": field("amount"),
                    "currency": field("currency"),
                }),
            ),
            Api::Email | Api::Sms => {
                (StatusCode::ACCEPTED, json!({ "message_id": id, "to": field("to"), "status": "queued" }))
            }
        }
    }

    /// What an accepted request with `body` did, in words, e.g.
    /// `reserved 2 × SKU-1, 1 × SKU-2 for order o-123`. Missing fields read as `?`; never fails.
    pub fn describe(self, body: &Value) -> String {
        let text = |value: Option<&Value>| match value {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "?".to_owned(),
            Some(other) => other.to_string(),
        };
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
            Api::Email => format!("sent e-mail {:?} to {}", text(body.get("subject")), text(body.get("to"))),
            Api::Sms => {
                let length = match body.get("text") {
                    Some(Value::String(s)) => s.chars().count().to_string(),
                    _ => "?".to_owned(),
                };
                format!("sent SMS of {length} characters to {}", text(body.get("to")))
            }
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
        write!(f, "unknown API {:?} (expected inventory, payment, email or sms)", self.0)
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

    #[test]
    fn names_round_trip() {
        for api in Api::ALL {
            assert_eq!(api.as_str().parse::<Api>(), Ok(api));
            assert_eq!(serde_json::to_value(api).ok(), Some(Value::from(api.as_str())));
            assert!(api.endpoint_path().starts_with(&format!("/{api}/")));
            assert_eq!(Api::ALL[api.index()], api);
        }
        assert!("shipping".parse::<Api>().is_err());
        assert!("Inventory".parse::<Api>().is_err());
    }

    #[test]
    fn responses_echo_the_request() {
        let (status, body) =
            Api::Payment.respond(&json!({"order_id": "o-1", "amount": 1234, "currency": "EUR", "extra": true}));
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["order_id"], "o-1");
        assert_eq!(body["amount"], 1234);
        assert_eq!(body["currency"], "EUR");
        assert!(body["charge_id"].as_str().is_some_and(|id| id.len() == 36));

        let (status, body) = Api::Sms.respond(&json!({}));
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(body["to"], Value::Null);
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
            Api::Email.describe(&json!({"to": "a@example.com", "subject": "Hi"})),
            "sent e-mail \"Hi\" to a@example.com"
        );
        assert_eq!(Api::Sms.describe(&json!({"to": "+100", "text": "héllo"})), "sent SMS of 5 characters to +100");
        // Odd bodies never fail.
        assert_eq!(Api::Inventory.describe(&json!({"items": [1]})), "reserved ? × ? for order ?");
        assert_eq!(Api::Sms.describe(&json!({})), "sent SMS of ? characters to ?");
    }
}
