//! The one list of courier's coded consumers. The test kit and `tools/chaos` start them from it (and point
//! their APIs at the mock APIs), the Docker image holds every binary this crate builds, and tests check
//! `docker-compose.yml`, the Prometheus files, `scripts/run-local.sh`, the mock APIs and the demo against it
//! (`tests/tests/e2e/registry.rs`). In the code, adding a consumer is its file, its `src/bin/` line, and one
//! entry here; `docs/writing-a-consumer.md` lists the files outside the code that name it too.

use std::fmt;

use courier::delivery::{Consumer, ConsumerSpec, RunError};
use courier::settings::Settings;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::inventory::Inventory;
use crate::notification::Notification;
use crate::payment::Payment;
use crate::shipping::Shipping;

/// One registered consumer.
#[derive(Clone, Copy)]
pub struct Registration {
    /// Its name: its binary, its consumer group, its idempotency-key prefix.
    pub name: &'static str,
    /// The APIs it calls (`[apis.<name>]`).
    pub apis: &'static [&'static str],
    /// What it reads and publishes with given settings.
    pub spec: fn(&Settings) -> ConsumerSpec,
    /// Runs it as its binary does, until the token is cancelled.
    pub run: fn(Settings, CancellationToken) -> BoxFuture<'static, Result<(), RunError>>,
}

/// `inventory`: reserves stock, releases it after a declined payment.
pub const INVENTORY: Registration = register::<Inventory>(Inventory::NAME, &["inventory"]);
/// `payment`: charges orders; publishes `order.paid` and `order.payment_failed`.
pub const PAYMENT: Registration = register::<Payment>(Payment::NAME, &["payment"]);
/// `notification`: e-mail and SMS confirmations.
pub const NOTIFICATION: Registration = register::<Notification>(Notification::NAME, &["email", "sms"]);
/// `shipping`: shipping labels for paid orders.
pub const SHIPPING: Registration = register::<Shipping>(Shipping::NAME, &["shipping"]);

/// Every coded consumer, in the order they are started.
pub const CONSUMERS: [Registration; 4] = [INVENTORY, PAYMENT, NOTIFICATION, SHIPPING];

/// The registration of consumer `C`, called `name` (its declared name), which calls `apis`.
const fn register<C: Consumer + Default>(name: &'static str, apis: &'static [&'static str]) -> Registration {
    Registration { name, apis, spec: spec::<C>, run: run::<C> }
}

/// What `C` reads and publishes (a registration's `spec`).
fn spec<C: Consumer + Default>(settings: &Settings) -> ConsumerSpec {
    C::default().spec(settings)
}

/// Runs `C` with owned settings (a registration's `run`).
fn run<C: Consumer + Default>(
    settings: Settings,
    shutdown: CancellationToken,
) -> BoxFuture<'static, Result<(), RunError>> {
    Box::pin(async move { courier::delivery::run(&C::default(), &settings, shutdown).await })
}

/// The registered consumer called `name`.
pub fn find(name: &str) -> Option<Registration> {
    CONSUMERS.into_iter().find(|c| c.name == name)
}

impl PartialEq for Registration {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Registration {}

impl std::hash::Hash for Registration {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration").field("name", &self.name).field("apis", &self.apis).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The consumer services of `docker-compose.yml` are the registered ones, and each has a `src/bin/` file
    /// (`tests/tests/e2e/registry.rs` checks the other lists, the mock APIs' among them).
    #[test]
    fn every_list_outside_the_code_follows_the_registry() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let compose = std::fs::read_to_string(root.join("docker-compose.yml")).expect("compose file");
        for consumer in CONSUMERS {
            assert!(compose.contains(&format!("\n  {}:\n", consumer.name)), "compose has no {} service", consumer.name);
            assert!(
                root.join(format!("consumers/src/bin/{}.rs", consumer.name)).is_file(),
                "{} has no binary",
                consumer.name
            );
        }
    }

    /// A registration's name (its binary's) is the one its consumer declares, which its consumer group is
    /// named after.
    #[test]
    fn every_registration_is_named_as_its_consumer_declares() {
        let settings = Settings::load_with_env(None, Some(Default::default())).expect("the default settings");
        for consumer in CONSUMERS {
            assert_eq!((consumer.spec)(&settings).group, settings.kafka.group_id(consumer.name), "{consumer:?}");
        }
    }
}
