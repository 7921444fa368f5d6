//! The delivery runtime a consumer runs on.
//!
//! What a consumer author uses:
//! * [`Consumer`]: what a consumer declares: its name, what it reads and publishes ([`ConsumerSpec`]), how its
//!   handler is built from settings ([`BuildError`] when it cannot be).
//! * [`Handler`]: what handles an event: what it is given ([`Incoming`]), the [`Outcome`] it returns (with its
//!   [`Failure`], which carries the [`RetryBudget`] of the API that failed), its channels, and its
//!   [`Batching`] when its API takes several events in one call.
//! * [`run`] runs a consumer as its binary does; a [`Runner`] does the same with what a test or a tool changes
//!   (its [`Health`](crate::health::Health), its failure route, its health server), and [`Runner::build`]
//!   builds the handler before the run starts ([`Built`]). [`RunError`] says why a consumer could not run.
//! * [`failure`]: where an event goes when it cannot be delivered: the [`failure::FailureRoute`] trait;
//!   [`dlq`]: the dead-letter topic route, its topic names and its `courier.dlq.*` headers.
//! * [`RECOMMIT_EVERY`]: how often the poll thread commits every partition's offset again, moved or not.
//!
//! Inside, private to the runtime:
//! * `consumer`, `handler`, `runner`: the items above.
//! * `runtime`: the wiring of one consumer's parts.
//! * `poll_loop`: the poll thread: reads records, commits watermarks, shutdown.
//! * `kafka_context`: librdkafka's callbacks: rebalances, statistics (lag), errors.
//! * `dispatcher`: key-ordered scheduling (one event per key at a time, keys concurrently), each partition's
//!   share of the budget, pause/resume backstops.
//! * `doorbell`: how the poll thread waits for records or finished events.
//! * `offsets`: the per-partition contiguous watermark that may be committed.
//! * `worker`: delivering one event: decode, attempts, retries, failure route.
//! * `batch`: attempts of different keys gathered into one call, for a handler that batches.
//! * `panics`: a panic inside an attempt, contained as a failure of that attempt.
//! * `retry`: when to try again (exponential backoff, full jitter, Retry-After).
//! * `throttle`: events an API keeps throttling (429), shown on `/readyz` and, when asked, bounded.
//! * `dlq_guard`: the limit that stops a consumer from dead-lettering everything during an outage.
//! * `record`: a Kafka record owned by the runtime.

mod batch;
mod consumer;
mod dispatcher;
pub mod dlq;
mod dlq_guard;
mod doorbell;
pub mod failure;
mod handler;
mod kafka_context;
mod offsets;
mod panics;
mod poll_loop;
mod record;
mod retry;
mod runner;
mod runtime;
mod throttle;
mod worker;

pub use batch::Batching;
pub use consumer::{BuildError, Consumer, ConsumerSpec};
pub use handler::{Failure, Handler, Incoming, Outcome, RetryBudget};
pub use poll_loop::RECOMMIT_EVERY;
pub use runner::{Built, Runner, registry_for, run, serve_health};
pub use runtime::RunError;
