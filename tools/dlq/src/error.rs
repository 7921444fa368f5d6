//! What can go wrong, in words an operator can act on, and the exit code each failure gives.

use std::path::PathBuf;
use std::time::Duration;

use courier::kafka::connectivity::ClusterError;
use courier::settings::SettingsError;
use rdkafka::error::KafkaError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// The settings could not be loaded (a usage error: exit 2).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The cluster cannot be reached or refuses us.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The topic does not exist.
    #[error("topic {0} does not exist (courier-dlq list shows the dead-letter topics)")]
    UnknownTopic(String),
    /// The topic is not a dead-letter topic.
    #[error("{0} is not a dead-letter topic: their names end in .dlq (<topic>.<group>.dlq)")]
    NotDeadLetterTopic(String),
    /// A Kafka request failed.
    #[error("{context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// What the client said.
        source: KafkaError,
    },
    /// The broker stopped sending records before the end of the topic was reached.
    #[error("reading {topic}: no record for {waited:?} before its end was reached")]
    Stalled {
        /// The topic.
        topic: String,
        /// How long reading waited.
        waited: Duration,
    },
    /// A filter was given and no dead letter matched it.
    #[error("no dead letter in {topic} matches the filter ({read} read)")]
    NoMatch {
        /// The topic (or file).
        topic: String,
        /// Dead letters read.
        read: usize,
    },
    /// `--show` named a record the topic does not hold.
    #[error("{topic} holds no record at {at}")]
    NoRecord {
        /// The topic.
        topic: String,
        /// The partition:offset asked for.
        at: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A line of a drained file is not a dead letter this tool wrote.
    #[error("{path}, line {line}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl DlqError {
    /// A mapper from a Kafka error to [`DlqError::Kafka`] with `context`.
    pub fn kafka(context: &str) -> impl FnOnce(KafkaError) -> DlqError + '_ {
        move |source| DlqError::Kafka { context: context.to_owned(), source }
    }

    /// The exit code: 2 for a usage error (bad settings), 1 for every other failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            DlqError::Settings(_) => 2,
            _ => 1,
        }
    }
}
