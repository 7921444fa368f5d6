//! `[apis.<name>.signing]`: the signature every call to an API carries, so that its receiver can tell the call
//! comes from courier and was not altered on the way: Standard Webhooks, or an HMAC in the API's own scheme.
//! What the settings mean and how a call is signed is [`crate::downstream::signing`]'s; this module reads them.

use secrecy::SecretString;
use serde::Deserialize;

use super::lists::secret_list;
use super::{SettingsError, invalid};

/// `[apis.<name>.signing]`: how the calls to one API are signed (by default they are not).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningSettings {
    /// Which signature the calls carry: `none` (the default), `standard-webhooks` or `hmac`.
    #[serde(default)]
    pub scheme: SigningScheme,
    /// The signing secrets, in a file an array, from the environment comma-separated
    /// (`COURIER__APIS__<NAME>__SIGNING__SECRETS`). Standard Webhooks: one or more `whsec_<base64>`, each signing
    /// every call (several while a secret is rotated); `hmac`: exactly one, its UTF-8 bytes the key. Secrets:
    /// never printed.
    #[serde(default, deserialize_with = "secret_list")]
    pub secrets: Vec<SecretString>,
    /// `hmac`: the header that carries the signature, e.g. `X-Hub-Signature-256`.
    #[serde(default)]
    pub header: String,
    /// `hmac`: the hash, `sha256` (the default) or `sha512`.
    #[serde(default)]
    pub algorithm: Option<HmacAlgorithm>,
    /// `hmac`: how the signature is written, `hex` (the default, lower case) or `base64`.
    #[serde(default)]
    pub encoding: Option<SignatureEncoding>,
    /// `hmac`: text written before the signature in its header, e.g. `sha256=`; empty: none.
    #[serde(default)]
    pub prefix: String,
    /// `hmac`: what is signed, a template of `{body}` (the request body, byte for byte), `{timestamp}` (unix
    /// seconds at sending) and `{id}` (the `Idempotency-Key`), e.g. `{timestamp}.{body}`; empty: `{body}`.
    #[serde(default)]
    pub signed_payload: String,
    /// `hmac`: the header that carries the timestamp, which `signed_payload` with `{timestamp}` needs.
    #[serde(default)]
    pub timestamp_header: String,
}

/// Which signature an API's calls carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SigningScheme {
    /// None.
    #[default]
    #[serde(rename = "none")]
    None,
    /// Standard Webhooks (<https://www.standardwebhooks.com>): `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per secret).
    #[serde(rename = "standard-webhooks")]
    StandardWebhooks,
    /// An HMAC of the API's own scheme: its header, hash, encoding, prefix and signed payload.
    #[serde(rename = "hmac")]
    Hmac,
}

/// The hash of an `hmac` signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    /// HMAC-SHA256.
    #[default]
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// How an `hmac` signature is written in its header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    /// Lower-case hexadecimal.
    #[default]
    Hex,
    /// Standard base64, padded.
    Base64,
}

impl SigningSettings {
    /// Checks the signing settings of API `name`: the scheme's keys are set and sound, every secret has its
    /// form (an error names the key and which secret, never the secret).
    pub(super) fn validate(&self, name: &str) -> Result<(), SettingsError> {
        crate::downstream::signing::Signer::from_settings(self)
            .map(drop)
            .map_err(|error| invalid(format!("apis.{name}.signing.{}", error.key), error.reason))
    }
}
