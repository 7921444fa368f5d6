//! The `notification` binary. See [`courier_consumers::notification`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    courier_consumers::main("notification", courier_consumers::notification::run).await
}
