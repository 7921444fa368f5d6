//! The `payment` binary. See [`courier_consumers::payment`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    courier_consumers::main("payment", courier_consumers::payment::run).await
}
