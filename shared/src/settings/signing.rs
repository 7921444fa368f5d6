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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::super::testing::load;
    use super::*;

    #[test]
    fn secrets_come_from_the_environment_comma_separated_and_a_bad_one_stops_start_up_unprinted() {
        let base = ("COURIER__APIS__PARTNER__BASE_URL", "https://hooks.example.com");
        let scheme = ("COURIER__APIS__PARTNER__SIGNING__SCHEME", "standard-webhooks");
        let new = "whsec_5GwuHSWkHWosaJso2QgPeai3DmU/P0D8rvLGr72jcCo=";
        let old = "whsec_qtuq/zOSQlp/Nq1LJehZAunwTlLOO8B4C2wxxfkeFUQ=";
        let both = format!("{new},{old}");
        let s = load(&[base, scheme, ("COURIER__APIS__PARTNER__SIGNING__SECRETS", &both)]).expect("valid");
        let signing = &s.apis.get("partner").expect("partner").signing;
        assert_eq!(signing.scheme, SigningScheme::StandardWebhooks);
        let secrets: Vec<&str> = signing.secrets.iter().map(|secret| secret.expose_secret()).collect();
        assert_eq!(secrets, [new, old], "in the order given");
        assert!(!format!("{s:?}").contains("5GwuHSWk"), "never printed");

        let bad = format!("{new},whsec_S3CR3T-not-base64");
        let error = load(&[base, scheme, ("COURIER__APIS__PARTNER__SIGNING__SECRETS", &bad)]).expect_err("refused");
        let error = error.to_string();
        assert!(error.contains("apis.partner.signing.secrets") && error.contains("secret 2 of 2"), "{error}");
        assert!(!error.contains("S3CR3T") && !error.contains("5GwuHSWk"), "{error}");
        let error = load(&[base, scheme]).expect_err("no secret").to_string();
        assert!(error.contains("apis.partner.signing.secrets"), "{error}");
        assert!(
            load(&[base])
                .expect("unsigned by default")
                .apis
                .get("partner")
                .is_ok_and(|api| api.signing.scheme == SigningScheme::None)
        );
    }
}
