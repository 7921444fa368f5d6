//! The `producer` binary: the order API. All the work is in the library; see [`courier_producer`].

use std::process::ExitCode;

use courier_producer::data_schema::SchemaFileError;
use courier_producer::routes::events::EventTopics;
use courier_producer::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    let about = "courier's order API: POST /v1/orders validates an order and publishes an order.created event to \
                 Kafka, answering 202 once the broker acknowledged it.";
    // `--check` reads and compiles the event schemas too, as the start does.
    let schemas = |settings: &courier::settings::Settings| {
        EventTopics::new(&settings.producer.events).map(drop).map_err(|error| error.to_string())
    };
    let settings = match courier::cli::start_checked("producer", about, schemas).await {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let code = match Application::build(&settings).await {
        Ok(app) => match app.run_until_stopped(courier::shutdown::on_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "producer stopped with an error");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "producer could not start");
            // A schema file that cannot be used is a bad setting: said on stderr, exit code 2, as the others.
            if error.downcast_ref::<SchemaFileError>().is_some() {
                eprintln!("producer: {error}");
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    };
    courier::telemetry::shutdown();
    code
}
