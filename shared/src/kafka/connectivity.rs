//! Whether the cluster can be reached and logged into, and if not, why in words an operator can act on: a
//! wrong SASL password or a TLS failure is named as such, with the settings to check, instead of a time-out.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::settings::KafkaSettings;

/// Why the cluster cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The brokers refused the SASL login.
    #[error(
        "Kafka authentication failed: {0} (check kafka.sasl.mechanism, kafka.sasl.username and kafka.sasl.password)"
    )]
    Authentication(String),
    /// The TLS connection to the brokers failed.
    #[error("TLS to Kafka failed: {0} (check kafka.tls.* and that the brokers speak TLS on kafka.bootstrap_servers)")]
    Tls(String),
    /// No broker answered in time.
    #[error("no Kafka broker answered at {bootstrap} within {waited:?}: {reason}")]
    Unreachable {
        /// `kafka.bootstrap_servers`.
        bootstrap: String,
        /// How long the check waited.
        waited: Duration,
        /// What the client said.
        reason: String,
    },
}

/// The authentication or TLS failure `error` (reported with `reason` to a client context) stands for, if any.
pub fn security_failure(error: &KafkaError, reason: &str) -> Option<ClusterError> {
    let code = error.rdkafka_error_code();
    if matches!(code, Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed))
        || reason.contains("SASL")
    {
        return Some(ClusterError::Authentication(reason.to_owned()));
    }
    if code == Some(RDKafkaErrorCode::SSL) || reason.contains("SSL") {
        return Some(ClusterError::Tls(reason.to_owned()));
    }
    None
}

/// A client context that keeps the first authentication or TLS failure it hears of.
#[derive(Default)]
struct Recorder {
    /// The first such failure.
    failure: Mutex<Option<ClusterError>>,
}

impl ClientContext for Recorder {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(failure) = security_failure(&error, reason) {
            let mut first = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(failure);
        }
    }
}

impl ConsumerContext for Recorder {}

/// Connects with the configured security and asks for the cluster's metadata, waiting up to `timeout`.
pub async fn check_cluster(kafka: &KafkaSettings, timeout: Duration) -> Result<(), ClusterError> {
    let unreachable = |reason: String| ClusterError::Unreachable {
        bootstrap: kafka.bootstrap_servers.clone(),
        waited: timeout,
        reason,
    };
    let client: BaseConsumer<Recorder> = super::base_config(kafka, "check")
        .create_with_context(Recorder::default())
        .map_err(|e| unreachable(format!("cannot create a client: {e}")))?;
    let answer = tokio::task::spawn_blocking(move || {
        let answer = client.fetch_metadata(None, timeout).map(|_| ());
        if answer.is_err() {
            // Errors reach the context when the client's queue is served: serve it before reading the failure.
            for _ in 0..5 {
                let _ = client.poll(Duration::from_millis(20));
            }
        }
        let failure = client.context().failure.lock().unwrap_or_else(|e| e.into_inner()).take();
        (answer, failure)
    })
    .await;
    match answer {
        Ok((Ok(()), _)) => Ok(()),
        Ok((Err(_), Some(failure))) => Err(failure),
        Ok((Err(error), None)) => Err(unreachable(error.to_string())),
        Err(error) => Err(unreachable(format!("the check did not finish: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_and_tls_failures_are_named() {
        let auth = KafkaError::Global(RDKafkaErrorCode::Authentication);
        let named = security_failure(&auth, "SASL authentication error: Authentication failed").expect("named");
        assert!(named.to_string().contains("kafka.sasl.password"), "{named}");
        let tls = security_failure(&KafkaError::Global(RDKafkaErrorCode::SSL), "SSL handshake failed").expect("named");
        assert!(matches!(tls, ClusterError::Tls(_)), "{tls}");
        assert_eq!(
            security_failure(&KafkaError::Global(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down"),
            None
        );
    }
}
