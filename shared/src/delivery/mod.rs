//! The delivery runtime a consumer runs on.
//!
//! * [`consumer`]: the [`Consumer`] trait, what a consumer declares: its name, what it reads and publishes,
//!   how its handler is built from settings.
//! * [`handler`]: the [`Handler`] trait, what handles an event, what it is given ([`Incoming`]) and the
//!   [`Outcome`] it returns.
//! * [`runner`]: [`run`], and the [`Runner`] with what a test or a tool changes.
//! * `runtime`: the wiring of one consumer's parts.
//! * `poll_loop`: the poll thread: reads records, commits watermarks, shutdown.
//! * `kafka_context`: librdkafka's callbacks: rebalances, statistics (lag), errors.
//! * [`dispatcher`]: key-ordered scheduling (one event per key at a time, keys concurrently), each
//!   partition's share of the budget, pause/resume backstops.
//! * [`doorbell`]: how the poll thread waits for records or finished events.
//! * [`offsets`]: the per-partition contiguous watermark that may be committed.
//! * [`worker`]: delivering one event: decode, attempts, retries, failure route.
//! * [`batch`]: attempts of different keys gathered into one call, for a handler that batches.
//! * `panics`: a panic inside an attempt, contained as a failure of that attempt.
//! * [`retry`]: when to try again (exponential backoff, full jitter, Retry-After).
//! * [`throttle`]: events an API keeps throttling (429), shown on `/readyz` and, when asked, bounded.
//! * [`failure`]: where an event goes when it cannot be delivered: the [`failure::FailureRoute`] trait.
//! * [`dlq`]: the dead-letter topic route, with the original record and `courier.dlq.*` headers.
//! * [`dlq_guard`]: the limit that stops a consumer from dead-lettering everything during an outage.
//! * [`record`]: a Kafka record owned by the runtime.

pub mod batch;
pub mod consumer;
pub mod dispatcher;
pub mod dlq;
pub mod dlq_guard;
pub mod doorbell;
pub mod failure;
pub mod handler;
mod kafka_context;
pub mod offsets;
mod panics;
mod poll_loop;
pub mod record;
pub mod retry;
pub mod runner;
mod runtime;
pub mod throttle;
pub mod worker;

pub use batch::Batching;
pub use consumer::{BuildError, Consumer, ConsumerSpec};
pub use handler::{Failure, Handler, Incoming, Outcome};
pub use poll_loop::RECOMMIT_EVERY;
pub use runner::{Built, RunError, Runner, run, serve_health};
