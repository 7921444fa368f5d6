//! A panic inside an event's attempt (the handler, the classification of its answer, the API's credentials,
//! anything the attempt runs) is contained: the attempt fails with kind [`PANIC`] and the panic's message, and
//! is retried and dead-lettered like any other failure, while the key, its partition's commits and the process
//! go on. `courier_panics_total` counts such attempts, and the panic is logged with its event's span.

use std::any::Any;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use super::handler::Failure;

/// The failure kind of an attempt that panicked (`courier.dlq.error.kind` of its dead letter).
pub const PANIC: &str = "panic";

/// Runs `future`; a panic while it runs is `Err` with the failure it stands for.
///
/// Not an `async fn`: one would keep `future` twice in its state (the argument, and the future it awaits),
/// doubling every event's task that contains a delivery.
pub fn contain<F: Future>(future: F) -> impl Future<Output = Result<F::Output, Failure>> {
    // Whatever the panicking attempt left half-changed belongs to that attempt: the next one starts afresh.
    AssertUnwindSafe(future).catch_unwind().map(|result| result.map_err(|payload| failure(payload.as_ref())))
}

/// The failure a panic with `payload` stands for: kind [`PANIC`], the panic's message in words.
pub fn failure(payload: &(dyn Any + Send)) -> Failure {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    Failure::new(PANIC, format!("the attempt panicked: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_a_failure_with_its_message() {
        let failure = contain(async { panic!("index {} out of range", 7) }).await.expect_err("contained");
        assert_eq!(failure.kind, PANIC);
        assert_eq!(failure.message, "the attempt panicked: index 7 out of range");
        assert!(failure.charged, "a panicking attempt spends an attempt: it ends in the dead-letter topic");
        assert_eq!(contain(async { 5 }).await.expect("no panic"), 5);
    }
}
