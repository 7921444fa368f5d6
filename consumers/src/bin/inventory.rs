//! The `inventory` binary. See [`courier_consumers::inventory`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    courier_consumers::main("inventory", courier_consumers::inventory::run).await
}
