//! The order a client sends, its validation, and the `OrderCreated` event it becomes.
//!
//! Every field is optional in [`OrderRequest`] so that validation can report all missing and invalid fields at
//! once; only a value of the wrong JSON type stops at the first error.

use chrono::{DateTime, Utc};
use courier::events::{Customer, OrderCreated, OrderItem};
use courier::settings::TopicSettings;
use email_address::EmailAddress;
use serde::Deserialize;

use crate::error::{ApiError, FieldError};

/// The topic orders are published to: `topics.orders_created` (`orders.created` by default), a key of
/// `[topics]` the order flow declares in `config/default.toml`.
pub fn orders_topic(topics: &TopicSettings) -> &str {
    topics.names.get("orders_created")
}

/// Most items one order may have.
pub const MAX_ITEMS: usize = 500;
/// Longest accepted id or sku.
pub const MAX_ID_LEN: usize = 128;
/// Largest quantity of one item.
pub const MAX_QUANTITY: u64 = 1_000_000;
/// Largest unit price, in minor units (100 million in a currency of cents).
pub const MAX_UNIT_PRICE: u64 = 10_000_000_000;
// Within these bounds the total of any order fits in the event's `total` (u64), so that an order whose every
// field is valid is never refused for its sum.
const _: () = assert!(
    (MAX_ITEMS as u128) * (MAX_QUANTITY as u128) * (MAX_UNIT_PRICE as u128) <= u64::MAX as u128,
    "the largest order's total must fit in a u64"
);

/// `POST /v1/orders` body, as sent.
#[derive(Debug, Deserialize)]
pub struct OrderRequest {
    /// Who orders.
    pub customer: Option<CustomerRequest>,
    /// What is ordered.
    pub items: Option<Vec<ItemRequest>>,
    /// ISO 4217 code of every price.
    pub currency: Option<String>,
}

/// The `customer` object.
#[derive(Debug, Deserialize)]
pub struct CustomerRequest {
    /// The customer's id.
    pub id: Option<String>,
    /// The customer's e-mail address.
    pub email: Option<String>,
    /// The customer's phone number in E.164 form (`+` and 7 to 15 digits), optional.
    pub phone: Option<String>,
}

/// One entry of `items`.
#[derive(Debug, Deserialize)]
pub struct ItemRequest {
    /// Stock keeping unit.
    pub sku: Option<String>,
    /// How many; a whole number from 1 to [`MAX_QUANTITY`].
    pub quantity: Option<serde_json::Number>,
    /// Unit price in minor units; a whole number from 0 to [`MAX_UNIT_PRICE`].
    pub unit_price: Option<serde_json::Number>,
}

/// An order that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidOrder {
    /// The customer.
    pub customer: Customer,
    /// The items.
    pub items: Vec<OrderItem>,
    /// The currency code, upper case.
    pub currency: String,
    /// Sum of quantity × unit price, in minor units.
    pub total: u64,
}

impl ValidOrder {
    /// The event payload for this order.
    pub fn into_event(self, order_id: String, created_at: DateTime<Utc>) -> OrderCreated {
        OrderCreated {
            order_id,
            customer: self.customer,
            items: self.items,
            currency: self.currency,
            total: self.total,
            created_at,
        }
    }
}

/// Turns a JSON body into a valid order, or lists every field that is wrong.
pub fn parse(body: serde_json::Value) -> Result<ValidOrder, ApiError> {
    let request: OrderRequest = serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "(body)".to_owned() } else { path };
        ApiError::Validation(vec![FieldError::new(field, e.into_inner().to_string())])
    })?;
    request.validate()
}

impl OrderRequest {
    /// Checks every rule and collects every failure.
    pub fn validate(self) -> Result<ValidOrder, ApiError> {
        let mut errors = Vec::new();
        let customer = match self.customer {
            None => {
                errors.push(FieldError::new("customer", "is required"));
                None
            }
            Some(c) => validate_customer(c, &mut errors),
        };
        let currency = match self.currency {
            None => {
                errors.push(FieldError::new("currency", "is required"));
                None
            }
            Some(code) => match iso_currency::Currency::from_code(&code) {
                Some(currency) => Some(currency.code().to_owned()),
                None => {
                    errors.push(FieldError::new("currency", format!("{code:?} is not an ISO 4217 currency code")));
                    None
                }
            },
        };
        let items = validate_items(self.items, &mut errors);
        let total = items.as_ref().and_then(|items| {
            let total = items.iter().try_fold(0u64, |sum, item| {
                u64::from(item.quantity).checked_mul(item.unit_price).and_then(|line| sum.checked_add(line))
            });
            if total.is_none() {
                errors.push(FieldError::new("items", "the order total is too large"));
            }
            total
        });
        match (customer, items, currency, total) {
            (Some(customer), Some(items), Some(currency), Some(total)) if errors.is_empty() => {
                Ok(ValidOrder { customer, items, currency, total })
            }
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

fn validate_customer(c: CustomerRequest, errors: &mut Vec<FieldError>) -> Option<Customer> {
    let id = required_text(c.id, "customer.id", errors);
    let email = match c.email {
        None => {
            errors.push(FieldError::new("customer.email", "is required"));
            None
        }
        Some(email) if EmailAddress::is_valid(&email) && email.contains('.') => Some(email),
        Some(email) => {
            errors.push(FieldError::new("customer.email", format!("{email:?} is not an e-mail address")));
            None
        }
    };
    let phone = match c.phone {
        Some(phone) if !is_e164(&phone) => {
            errors.push(FieldError::new(
                "customer.phone",
                format!("{phone:?} is not a phone number in E.164 form (+ and 7 to 15 digits)"),
            ));
            None
        }
        phone => phone,
    };
    Some(Customer { id: id?, email: email?, phone })
}

fn validate_items(items: Option<Vec<ItemRequest>>, errors: &mut Vec<FieldError>) -> Option<Vec<OrderItem>> {
    let Some(items) = items else {
        errors.push(FieldError::new("items", "is required"));
        return None;
    };
    if items.is_empty() {
        errors.push(FieldError::new("items", "must contain at least one item"));
        return None;
    }
    if items.len() > MAX_ITEMS {
        errors.push(FieldError::new("items", format!("must contain at most {MAX_ITEMS} items")));
        return None;
    }
    let before = errors.len();
    let valid: Vec<OrderItem> = items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let sku = required_text(item.sku, &format!("items[{i}].sku"), errors);
            let quantity = whole_in(item.quantity, format!("items[{i}].quantity"), 1, MAX_QUANTITY, errors)
                .and_then(|q| u32::try_from(q).ok());
            let unit_price = whole_in(item.unit_price, format!("items[{i}].unit_price"), 0, MAX_UNIT_PRICE, errors);
            Some(OrderItem { sku: sku?, quantity: quantity?, unit_price: unit_price? })
        })
        .collect();
    (errors.len() == before).then_some(valid)
}

fn required_text(value: Option<String>, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match value {
        None => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(v) if v.trim().is_empty() => {
            errors.push(FieldError::new(field, "must not be empty"));
            None
        }
        Some(v) if v.len() > MAX_ID_LEN => {
            errors.push(FieldError::new(field, format!("must be at most {MAX_ID_LEN} bytes")));
            None
        }
        Some(v) => Some(v),
    }
}

/// `value` of `field` as a whole number from `min` to `max`; `None` and the reason in `errors` otherwise.
fn whole_in(
    value: Option<serde_json::Number>,
    field: String,
    min: u64,
    max: u64,
    errors: &mut Vec<FieldError>,
) -> Option<u64> {
    let problem = match value.as_ref().map(whole) {
        None => "is required".to_owned(),
        Some(None) => "must be a whole number".to_owned(),
        Some(Some(n)) if n < i128::from(min) => format!("must be at least {min}"),
        Some(Some(n)) if n > i128::from(max) => format!("must be at most {max}"),
        Some(Some(n)) => return u64::try_from(n).ok(),
    };
    errors.push(FieldError::new(field, problem));
    None
}

/// The whole number `n` is, written as an integer or as a number with no fraction (`2.0`: JSON Schema's
/// integers, and what some encoders write for one); `None` when it has a fraction.
fn whole(n: &serde_json::Number) -> Option<i128> {
    if let Some(n) = n.as_i64() {
        return Some(i128::from(n));
    }
    if let Some(n) = n.as_u64() {
        return Some(i128::from(n));
    }
    // Beyond i128, a float saturates: it is "too large" all the same.
    n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i128)
}

/// `+` followed by 7 to 15 digits, the first not 0.
fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(result: Result<ValidOrder, ApiError>) -> Vec<String> {
        match result {
            Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn valid() -> serde_json::Value {
        json!({"customer":{"id":"c-1","email":"ada@example.com","phone":"+15550100"},
               "items":[{"sku":"SKU-1","quantity":2,"unit_price":1299},{"sku":"SKU-2","quantity":1,"unit_price":0}],
               "currency":"EUR"})
    }

    #[test]
    fn a_valid_order_gets_its_total() {
        let order = parse(valid()).expect("valid");
        assert_eq!(order.total, 2598);
        assert_eq!(order.currency, "EUR");
        assert_eq!(order.customer.phone.as_deref(), Some("+15550100"));
    }

    #[test]
    fn each_rule_names_its_field() {
        type Mutation = fn(&mut serde_json::Value);
        let cases: Vec<(Mutation, Vec<&str>)> = vec![
            (|v| v["items"] = json!([]), vec!["items"]),
            (|v| v["items"][0]["quantity"] = json!(0), vec!["items[0].quantity"]),
            (|v| v["items"][1]["unit_price"] = json!(-1), vec!["items[1].unit_price"]),
            (|v| v["currency"] = json!("EURO"), vec!["currency"]),
            (|v| v["currency"] = json!("XYZ"), vec!["currency"]),
            (|v| v["customer"]["email"] = json!("not-an-email"), vec!["customer.email"]),
            (|v| v["customer"]["phone"] = json!("555"), vec!["customer.phone"]),
            (|v| v["customer"]["id"] = json!(""), vec!["customer.id"]),
            (|v| drop(v.as_object_mut().map(|o| o.remove("currency"))), vec!["currency"]),
            (|v| v["items"][0]["quantity"] = json!("two"), vec!["items[0].quantity"]),
            (|v| v["items"][0]["quantity"] = json!(1.5), vec!["items[0].quantity"]),
            (|v| v["items"][0]["quantity"] = json!(u64::from(u32::MAX) + 1), vec!["items[0].quantity"]),
            (|v| v["items"][0]["unit_price"] = json!(u64::MAX), vec!["items[0].unit_price"]),
            (|v| v["items"][0]["unit_price"] = json!(1e300), vec!["items[0].unit_price"]),
            (
                |v| {
                    v["items"][0]["unit_price"] = json!(MAX_UNIT_PRICE + 1);
                    v["items"][0]["quantity"] = json!(MAX_QUANTITY + 1);
                },
                vec!["items[0].quantity", "items[0].unit_price"],
            ),
            (
                |v| {
                    v["items"][0]["quantity"] = json!(-3);
                    v["currency"] = json!("???");
                },
                vec!["currency", "items[0].quantity"],
            ),
        ];
        for (mutate, expected) in cases {
            let mut body = valid();
            mutate(&mut body);
            let mut got = fields(parse(body.clone()));
            got.sort();
            assert_eq!(got, expected, "{body}");
        }
    }

    #[test]
    fn whole_numbers_written_with_a_zero_fraction_are_whole_numbers() {
        let mut body = valid();
        body["items"][0]["quantity"] = json!(2.0);
        body["items"][0]["unit_price"] = json!(1299.0);
        assert_eq!(parse(body).expect("valid").total, 2598);
    }

    #[test]
    fn e164() {
        assert!(is_e164("+15550100"));
        assert!(!is_e164("15550100"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+1555010012345678"));
    }
}
