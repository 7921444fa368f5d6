//! The delivery runtime a consumer runs on.
//!
//! * [`handler`]: the [`Handler`] trait a consumer implements and the [`Outcome`] it returns.
//! * [`retry`]: when to try a transient failure again (exponential backoff, full jitter, Retry-After).
//! * [`runner`]: the loop that reads records, decodes them, hands them to the handler, retries, and stores an
//!   offset only after its event was handled.
//! * [`failure`]: where an event goes when it cannot be delivered.

pub mod failure;
pub mod handler;
pub mod retry;
pub mod runner;

pub use handler::{Failure, Handler, Incoming, Outcome};
pub use runner::{ConsumerSpec, RunError, run};
