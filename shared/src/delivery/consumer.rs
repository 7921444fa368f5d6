//! What a consumer declares: the [`Consumer`] trait (its name, what it reads and publishes, how its handler is
//! built from settings) and its [`ConsumerSpec`].
//!
//! A consumer is two parts, as arroyo separates a strategy from its factory: the declaration here, and the
//! [`Handler`] it builds, which handles one event. Neither repeats the other: a hook of the handler (channels,
//! batching) is written once, on the handler. [`super::run`] runs a consumer as its binary does.

use super::handler::Handler;
use crate::formats::Reading;
use crate::health::Health;
use crate::settings::Settings;

/// A consumer's declaration: its name, what it reads and publishes, and how its handler is built. A coded
/// consumer declares itself with a unit struct; a consumer whose name comes from settings (a `forward`
/// route) with a value holding it. The runtime does the rest (retries, breaker, dead letters, commits,
/// health, metrics, shutdown).
pub trait Consumer: Send + Sync + 'static {
    /// What handles its events.
    type Handler: Handler;

    /// Its name: its consumer group (after `kafka.group_id_prefix`), its metrics' `consumer` label, and the
    /// consumer its dead letters name. Its handler's idempotency keys start with it.
    fn name(&self) -> &str;

    /// What it reads (and publishes, when it does) with `settings`.
    fn spec(&self, settings: &Settings) -> ConsumerSpec;

    /// Builds its handler from `settings`; the handler's API clients report to `health`.
    fn build(&self, settings: &Settings, health: &Health) -> Result<Self::Handler, BuildError>;
}

/// Why a consumer's handler could not be built (an API not configured, a certificate that does not load, …).
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// What a consumer reads and writes.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Consumer group id.
    pub group: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Topics it publishes to: created at start-up with those it reads (`topics.create`).
    pub publishes: Vec<String>,
    /// How it reads its records: their format, and the identity of those that are not CloudEvents.
    pub reading: Reading,
}

impl ConsumerSpec {
    /// Consumer `name` (its group: `kafka.group_id_prefix` + `name`) reading structured CloudEvents from
    /// `topics`, publishing nothing.
    pub fn reads(settings: &Settings, name: &str, topics: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        let topics = topics.into_iter().map(|t| t.as_ref().to_owned()).collect();
        Self { group: settings.kafka.group_id(name), topics, publishes: Vec::new(), reading: Reading::cloudevents() }
    }

    /// The same, reading its records as `reading` says (another format: JSON, CloudEvents in binary mode, …).
    #[must_use]
    pub fn reading(mut self, reading: Reading) -> Self {
        self.reading = reading;
        self
    }

    /// The same, publishing to `topics` too.
    #[must_use]
    pub fn publishing(mut self, topics: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        self.publishes = topics.into_iter().map(|t| t.as_ref().to_owned()).collect();
        self
    }
}
