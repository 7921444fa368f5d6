//! The `shipping` binary. See [`courier_consumers::shipping`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let about = "courier's shipping consumer: creates a shipping label through the shipping API for each paid order (orders.paid).";
    courier_consumers::main(courier_consumers::registry::SHIPPING, about).await
}
