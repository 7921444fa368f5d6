//! Why a record in the Confluent wire format could not be decoded, and whether that can change: a permanent
//! failure dead-letters the record (kind `decode`, with the reason), a transient one retries it.

/// Why a record could not be decoded. [`DecodeError::is_transient`] says which kind it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not in the wire format, or the payload does not decode with (or validate against) its
    /// schema. Permanent.
    #[error("malformed record: {0}")]
    Malformed(String),
    /// The registry does not know the schema id (404, error code 40403). Permanent.
    #[error("schema {id} is unknown to the schema registry: {message}")]
    UnknownSchema {
        /// The id the record names.
        id: u32,
        /// The registry's message.
        message: String,
    },
    /// The registry refuses the request (401, 403, or another 4xx of its own). Permanent: the credentials or
    /// the permissions need changing.
    #[error("the schema registry refuses: HTTP {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The registry's message (its body's `message`, or an excerpt of the body).
        message: String,
    },
    /// The schema does not parse, or is not of the route's format. Permanent.
    #[error("schema {id} cannot be used: {reason}")]
    InvalidSchema {
        /// The schema's id.
        id: u32,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry cannot be reached, times out, or answers 5xx (or 408, 429, or anything that is not the
    /// registry's answer). Transient.
    #[error("the schema registry is unavailable: {0}")]
    Unavailable(String),
}

impl DecodeError {
    /// Whether the same record may decode later (the registry comes back): retry it, never dead-letter it.
    pub fn is_transient(&self) -> bool {
        matches!(self, DecodeError::Unavailable(_))
    }

    /// A short name of the failure for dead-letter headers, logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Malformed(_) => "malformed",
            DecodeError::UnknownSchema { .. } => "unknown_schema",
            DecodeError::Refused { .. } => "registry_refused",
            DecodeError::InvalidSchema { .. } => "invalid_schema",
            DecodeError::Unavailable(_) => "registry_unavailable",
        }
    }
}
