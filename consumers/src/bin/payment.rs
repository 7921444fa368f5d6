//! The `payment` binary. See [`courier_consumers::payment`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let about = "courier's payment consumer: charges each order (orders.created) through the payment API and publishes order.payment_failed when a charge is declined.";
    courier_consumers::main(courier_consumers::registry::PAYMENT, about).await
}
