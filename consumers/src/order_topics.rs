//! The order flow's topics, which the order domain names and the shared library does not. They are settings
//! of `[topics]`, declared with their defaults in `config/default.toml`: `topics.orders_created`
//! (`orders.created`), `topics.payment_failed` (`orders.payment-failed`) and `topics.orders_paid`
//! (`orders.paid`).

use courier::settings::TopicSettings;

/// The order flow's topics, read from `[topics]`: `settings.topics.orders_created()`.
pub trait OrderTopics {
    /// `topics.orders_created`: where the order API publishes `order.created`; inventory, payment and
    /// notification read it.
    fn orders_created(&self) -> &str;
    /// `topics.payment_failed`: where payment publishes `order.payment_failed`; inventory reads it to release
    /// the order's reservation.
    fn payment_failed(&self) -> &str;
    /// `topics.orders_paid`: where payment publishes `order.paid`; shipping reads it.
    fn orders_paid(&self) -> &str;
}

impl OrderTopics for TopicSettings {
    fn orders_created(&self) -> &str {
        self.names.get("orders_created")
    }

    fn payment_failed(&self) -> &str {
        self.names.get("payment_failed")
    }

    fn orders_paid(&self) -> &str {
        self.names.get("orders_paid")
    }
}

#[cfg(test)]
mod tests {
    use courier::settings::Settings;

    use super::OrderTopics;

    #[test]
    fn the_order_topics_are_settings_with_the_contracts_names() {
        let defaults = Settings::load_with_env(None, Some(Default::default())).expect("defaults");
        let t = &defaults.topics;
        assert_eq!(
            [t.orders_created(), t.payment_failed(), t.orders_paid()],
            ["orders.created", "orders.payment-failed", "orders.paid"]
        );
        let env = [("COURIER__TOPICS__ORDERS_PAID".to_owned(), "staging.orders.paid".to_owned())];
        let renamed = Settings::load_with_env(None, Some(env.into())).expect("valid");
        assert_eq!(renamed.topics.orders_paid(), "staging.orders.paid");
    }
}
