//! The `notification` binary. See [`courier_consumers::notification`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let about = "courier's notification consumer: sends each order's confirmation by e-mail and SMS (orders.created) through the two APIs, each channel on its own.";
    courier_consumers::main(courier_consumers::registry::NOTIFICATION, about).await
}
