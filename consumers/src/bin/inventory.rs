//! The `inventory` binary. See [`courier_consumers::inventory`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let about = "courier's inventory consumer: reserves each order's items (orders.created) and releases them when its payment was declined (orders.payment-failed), through the inventory API.";
    courier_consumers::main(courier_consumers::registry::INVENTORY, about).await
}
