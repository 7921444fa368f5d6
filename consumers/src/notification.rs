//! The notification consumer (group `notification`, topic `orders.created`): confirms each order by e-mail
//! and, when the customer gave a phone number, by SMS.
//!
//! The two are independent channels of the runtime: they go out concurrently, each with its own retries,
//! circuit breaker (`apis.email`, `apis.sms`), idempotency key (`notification-email:<event id>`,
//! `notification-sms:<event id>`) and dead letter (header `courier.dlq.channel`). An SMS outage therefore
//! neither delays the e-mails nor sends one twice, and a replayed dead letter re-sends only its channel.

use courier::delivery::{BuildError, Consumer, ConsumerSpec, Handler, Incoming, Outcome};
use courier::downstream::{self, ApiClient, CallContext};
use courier::events::OrderCreated;
use courier::health::Health;
use courier::settings::Settings;
use reqwest::Method;
use serde::Serialize;

use crate::order_topics::OrderTopics;

/// The e-mail channel.
pub const EMAIL: &str = "email";
/// The SMS channel.
pub const SMS: &str = "sms";

/// The body of an e-mail request.
#[derive(Debug, Serialize)]
pub struct EmailRequest<'a> {
    /// Recipient address.
    pub to: &'a str,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// The body of an SMS request.
#[derive(Debug, Serialize)]
pub struct SmsRequest<'a> {
    /// Recipient phone number (E.164).
    pub to: &'a str,
    /// Message text.
    pub text: String,
}

/// The notification consumer's declaration: it reads new orders and calls the e-mail and SMS APIs
/// ([`NotificationHandler`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Notification;

impl Notification {
    /// Its name: its consumer group, and the prefix of its channels' idempotency keys.
    pub const NAME: &'static str = "notification";
}

impl Consumer for Notification {
    type Handler = NotificationHandler;

    fn name(&self) -> &str {
        Self::NAME
    }

    fn spec(&self, settings: &Settings) -> ConsumerSpec {
        ConsumerSpec::reads(settings, Self::NAME, [settings.topics.orders_created()])
    }

    fn build(&self, settings: &Settings, health: &Health) -> Result<NotificationHandler, BuildError> {
        Ok(NotificationHandler {
            email: ApiClient::new(EMAIL, settings.apis.get(EMAIL)?, health)?,
            sms: ApiClient::new(SMS, settings.apis.get(SMS)?, health)?,
        })
    }
}

/// Maps order events to e-mails and SMS.
#[derive(Debug, Clone)]
pub struct NotificationHandler {
    /// Client of the e-mail API.
    email: ApiClient,
    /// Client of the SMS API.
    sms: ApiClient,
}

impl Handler for NotificationHandler {
    fn channels(&self, incoming: &Incoming) -> Vec<&'static str> {
        match incoming.data::<OrderCreated>() {
            Ok(order) if order.customer.phone.is_some() => vec![EMAIL, SMS],
            Ok(_) => vec![EMAIL],
            // Not an order: one unnamed delivery, which `handle` fails permanently.
            Err(_) => Vec::new(),
        }
    }

    async fn handle(&self, incoming: &Incoming, channel: Option<&'static str>) -> Outcome {
        let order: OrderCreated = match incoming.data() {
            Ok(order) => order,
            Err(outcome) => return outcome,
        };
        let key = |channel: &str| CallContext::for_event(&format!("{}-{channel}", Notification::NAME), incoming);
        let result = match channel {
            Some(SMS) => {
                let Some(phone) = order.customer.phone.as_deref() else { return Outcome::Done };
                let body =
                    SmsRequest { to: phone, text: format!("Order {} confirmed: {}.", order.order_id, summary(&order)) };
                self.sms.send_json(Method::POST, "messages", &body, &key(SMS)).await
            }
            _ => {
                let body = EmailRequest {
                    to: &order.customer.email,
                    subject: format!("Your order {} is confirmed", order.order_id),
                    body: format!("Thank you for your order: {}.", summary(&order)),
                };
                self.email.send_json(Method::POST, "messages", &body, &key(EMAIL)).await
            }
        };
        // Ids only: a recipient's address or number is personal data and never logged.
        downstream::classify(&result).on_done(|| {
            let channel = channel.unwrap_or(EMAIL);
            tracing::debug!(order_id = %order.order_id, customer_id = %order.customer.id, channel, "order confirmation sent")
        })
    }
}

/// A short human summary of an order, for messages.
fn summary(order: &OrderCreated) -> String {
    let units: u64 = order.items.iter().map(|i| u64::from(i.quantity)).sum();
    let major = order.total / 100;
    let minor = order.total % 100;
    format!("{units} item(s), total {major}.{minor:02} {}", order.currency)
}

#[cfg(test)]
mod tests {
    use courier::events::PRODUCER_SOURCE;
    use serde_json::json;

    use super::*;
    use crate::testing::{MockApi, Received, event, order, permanent};

    /// The notification consumer's handler, calling `api` for both channels.
    fn handler(api: &MockApi) -> NotificationHandler {
        Notification.build(&api.settings(&[EMAIL, SMS], &[]), &Health::default()).expect("built")
    }

    #[tokio::test]
    async fn an_order_is_confirmed_by_email_and_by_sms_each_under_its_own_key() {
        let api = MockApi::answering(202, json!({"message_id": "m-1"})).await;
        let handler = handler(&api);
        let (incoming, id) = event("orders.created", PRODUCER_SOURCE, order());
        assert_eq!(handler.channels(&incoming), [EMAIL, SMS]);
        assert_eq!(handler.handle(&incoming, Some(EMAIL)).await, Outcome::Done);
        assert_eq!(handler.handle(&incoming, Some(SMS)).await, Outcome::Done);
        let [email, sms]: [_; 2] = api.sent().await.try_into().expect("two requests");
        assert_eq!((&email.method, email.path()), (&Method::POST, "/email/messages"));
        assert_eq!(email.header("idempotency-key"), Some(format!("notification-email:{id}").as_str()));
        assert_eq!(email.header("content-type"), Some("application/json"));
        let summary = "3 item(s), total 25.99 EUR";
        let body = json!({
            "to": "ada@example.com",
            "subject": "Your order o/1 is confirmed",
            "body": format!("Thank you for your order: {summary}."),
        });
        assert_eq!(email.json(), body);
        assert_eq!((&sms.method, sms.path()), (&Method::POST, "/sms/messages"));
        assert_eq!(sms.header("idempotency-key"), Some(format!("notification-sms:{id}").as_str()));
        assert_eq!(sms.json(), json!({"to": "+15550100", "text": format!("Order o/1 confirmed: {summary}.")}));
    }

    #[tokio::test]
    async fn an_order_without_a_phone_number_is_confirmed_by_email_only() {
        let api = MockApi::answering(202, json!({})).await;
        let handler = handler(&api);
        let mut order = order();
        order.customer.phone = None;
        let (incoming, _) = event("orders.created", PRODUCER_SOURCE, order);
        assert_eq!(handler.channels(&incoming), [EMAIL]);
        // A replayed SMS dead letter of such an order has nothing to send.
        assert_eq!(handler.handle(&incoming, Some(SMS)).await, Outcome::Done);
        assert!(api.sent().await.is_empty());
    }

    #[tokio::test]
    async fn a_message_the_api_refuses_is_dead_lettered() {
        let api = MockApi::answering(400, json!({"error": "invalid recipient"})).await;
        let (incoming, _) = event("orders.created", PRODUCER_SOURCE, order());
        assert_eq!(permanent(handler(&api).handle(&incoming, Some(EMAIL)).await).http_status, Some(400));
        assert_eq!(api.only().await.path(), "/email/messages");
    }
}
