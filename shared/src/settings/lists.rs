//! How list settings are read: a TOML array, or (as the environment gives it) one comma-separated string
//! (`COURIER__FORWARD__ROUTES__CRM__TOPICS=users.registered,users.updated`).

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// A list given as an array, or as one comma-separated string.
pub(super) fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        /// `"a,b"`.
        Text(String),
        /// `["a", "b"]`.
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::Text(text) => text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        OneOrMany::Many(many) => many,
    })
}

/// A list of secrets given as an array, or as one comma-separated string.
pub(super) fn secret_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<SecretString>, D::Error> {
    Ok(list(deserializer)?.into_iter().map(SecretString::from).collect())
}
