//! courier-dlq: dead letters an operator can work with, from a terminal.
//!
//! courier dead-letters what it cannot deliver to `<topic>.<group>.dlq` with `courier.dlq.*` headers (see
//! `courier::delivery::dlq`). This crate reads those topics and sends dead letters back safely:
//!
//! * [`letter`]: a dead letter parsed from a record (coordinates, consumer, channel, error, original
//!   position, event id, a short reason).
//! * [`filter`]: which dead letters a command acts on (`--kind`, `--status`, `--consumer`, `--channel`,
//!   `--since`, `--until`, `--event-id`, `--offset`).
//! * [`read`]: reading a topic from a start position to its end, assign-only, committing nothing.
//! * [`position`]: the tool's own consumer group on a dead-letter topic, so replays and drains resume; a
//!   position the broker expired is noticed, not taken for "never replayed".
//! * [`ledger`]: the durable record of every position (a compacted topic), with which a lost one is noticed.
//! * [`resume`]: the marks kept with the position, with which a rerun finds what an interrupted replay sent.
//! * [`lock`]: one replay or drain of a topic at a time (membership of a consumer group as a lease).
//! * [`list`], [`inspect`], [`replay`], [`drain`]: the four subcommands.
//! * [`cli`]: the command line and its exit codes; [`error`]: what can go wrong.

pub mod cli;
pub mod drain;
pub mod error;
pub mod filter;
pub mod inspect;
pub mod ledger;
pub mod letter;
pub mod list;
pub mod lock;
pub mod position;
pub mod read;
pub mod replay;
pub mod resume;

pub use error::DlqError;

/// Runs `f`, which blocks (librdkafka's synchronous calls, files), on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DlqError> + Send + 'static,
) -> Result<T, DlqError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(DlqError::Io { path: "courier-dlq".into(), source: std::io::Error::other(e) }))
}
