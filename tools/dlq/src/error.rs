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
    /// The position's committed offsets are gone (expired or deleted) while the ledger records it above the
    /// oldest dead letters: starting at them would send again what was replayed.
    #[error(
        "the tool's position on {topic} was lost: group {group} has no committed offsets, but the ledger \
         (topic courier-dlq.positions) records the position {recorded} (partition:next offset, written \
         {written_at}). A broker deletes committed offsets after offsets.retention.minutes without a commit, \
         and deleting the group does the same. Nothing was sent. Run again with --restore-position to go on \
         from the recorded position, or with --from-beginning to start at the oldest dead letter still on the \
         topic (sending again what was replayed)"
    )]
    PositionLost {
        /// The dead-letter topic.
        topic: String,
        /// The position's group.
        group: String,
        /// The recorded position of the partitions that lost theirs (`partition:offset …`).
        recorded: String,
        /// When the ledger record was written (RFC 3339).
        written_at: String,
    },
    /// The ledger cannot be used.
    #[error("the position ledger: {0}")]
    Ledger(String),
    /// Another run holds the lock on the topic.
    #[error(
        "another courier-dlq replay or drain of {topic} is running (it holds the lock, group {group}{members}). \
         Nothing was sent. Run again once it has finished; a run that was killed holds the lock \
         until its session times out (kafka.session_timeout_ms, {session_timeout_ms} ms)"
    )]
    Locked {
        /// The dead-letter topic.
        topic: String,
        /// The lock group.
        group: String,
        /// `; its members: client-id@host, …` as the broker lists them, or empty.
        members: String,
        /// The session timeout after which a killed run's hold lapses.
        session_timeout_ms: u128,
    },
    /// The lock group did not decide in time.
    #[error("could not take the lock on {topic} (group {group}) within {waited:?} (last client error: {last_error})")]
    LockTimeout {
        /// The dead-letter topic.
        topic: String,
        /// The lock group.
        group: String,
        /// How long the join was waited for.
        waited: Duration,
        /// What the group's client last reported.
        last_error: String,
    },
    /// The run lost the lock while it ran.
    #[error(
        "lost the lock on {topic} (group {group}: this run's membership lapsed); stopped before sending or \
         committing more. Run again to go on from the position"
    )]
    LockLost {
        /// The dead-letter topic.
        topic: String,
        /// The lock group.
        group: String,
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
