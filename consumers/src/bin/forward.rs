//! The `forward` binary. See [`courier_consumers::forward`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let about = "courier's no-code consumer: delivers the events named by its [forward.routes.<name>] settings to their APIs, one consumer group per route, with key order, retries, circuit breakers, dead letters and idempotency keys.";
    courier_consumers::main_with(courier_consumers::forward::NAME, about, courier_consumers::forward::run).await
}
