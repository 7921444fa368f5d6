//! Signed calls (`[apis.<name>.signing]`): the headers by which an API's receiver checks that a call comes from
//! courier and was not altered. The [`super::ApiClient`] adds them to every attempt of every call (a retry is
//! signed anew, with its own timestamp), so forward routes, batches and coded consumers all send them.
//!
//! * **Standard Webhooks** (<https://www.standardwebhooks.com>): `webhook-id` (the call's `Idempotency-Key`,
//!   the same on every attempt; a `.` or `%` in it written `%2E` / `%25`, since the specification wants no `.`
//!   in the id it signs), `webhook-timestamp` (unix seconds at sending) and `webhook-signature`:
//!   `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per secret, space-separated, so that a receiver
//!   holding any of the secrets accepts the call while a secret is rotated. Secrets are in the specification's
//!   `whsec_<base64>` form (24 to 64 random bytes).
//! * **HMAC** of the API's own scheme: a header of its naming carrying `<prefix><HMAC>` (SHA-256 or SHA-512,
//!   hex or base64) of the body, or of a template such as `{timestamp}.{body}` with the timestamp in a header
//!   of its own. GitHub's `X-Hub-Signature-256: sha256=<hex>` is header, prefix and the defaults.
//!
//! Secrets are kept as [`secrecy`] secrets: never printed, never logged; an error names the setting and which
//! secret, never the secret.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Sha256, Sha512};

use crate::settings::{HmacAlgorithm, SignatureEncoding, SigningScheme, SigningSettings};

/// Standard Webhooks: the event's id, the same on every attempt.
pub const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
/// Standard Webhooks: when the attempt was sent, in unix seconds.
pub const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
/// Standard Webhooks: the signatures, space-separated.
pub const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// What a `webhook-id` writes percent-encoded: `.` (the separator of the signed content), `%` (so the encoding
/// can be undone), and controls and non-ASCII (which a header cannot carry).
const ESCAPED_IN_ID: &AsciiSet = &CONTROLS.add(b'.').add(b'%');
/// Base64 as Standard Webhooks secrets are written: the standard alphabet, padded or not.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// The sizes of a Standard Webhooks secret the specification allows, in bytes.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// Signs the calls to one API.
pub struct Signer {
    /// How.
    scheme: Scheme,
}

/// A signing scheme with its keys.
enum Scheme {
    /// Standard Webhooks, with every secret's key (each signs every call).
    StandardWebhooks(Vec<SecretSlice<u8>>),
    /// An HMAC of the API's own scheme.
    Hmac(HmacScheme),
}

/// An `hmac` signature: where it goes, how it is computed and written.
struct HmacScheme {
    /// The key: the secret's UTF-8 bytes.
    key: SecretSlice<u8>,
    /// The header carrying the signature.
    header: HeaderName,
    /// The hash.
    algorithm: HmacAlgorithm,
    /// How the signature is written.
    encoding: SignatureEncoding,
    /// Written before the signature.
    prefix: String,
    /// What is signed, in order.
    payload: Vec<Part>,
    /// The header carrying the timestamp, when the payload holds it.
    timestamp_header: Option<HeaderName>,
}

/// A piece of an `hmac` signed payload.
#[derive(Debug, PartialEq, Eq)]
enum Part {
    /// Text as written in the template.
    Text(String),
    /// The call's `Idempotency-Key`.
    Id,
    /// The attempt's unix seconds.
    Timestamp,
    /// The request body, byte for byte.
    Body,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.scheme {
            Scheme::StandardWebhooks(keys) => {
                f.debug_struct("Signer").field("scheme", &"standard-webhooks").field("secrets", &keys.len()).finish()
            }
            Scheme::Hmac(hmac) => f
                .debug_struct("Signer")
                .field("scheme", &"hmac")
                .field("header", &hmac.header)
                .field("algorithm", &hmac.algorithm)
                .field("encoding", &hmac.encoding)
                .finish(),
        }
    }
}

/// Why signing settings cannot work: the key under `[apis.<name>.signing]` at fault, and why (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing.{key}: {reason}")]
pub struct SigningError {
    /// The key at fault, e.g. `secrets`.
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// The error that `key` is wrong, and why.
fn wrong(key: &'static str, reason: impl Into<String>) -> SigningError {
    SigningError { key, reason: reason.into() }
}

impl Signer {
    /// The signer `settings` ask for: none with `scheme = "none"`, else one whose keys are ready. Fails, naming
    /// the key, when the settings cannot work (settings validation calls this at start-up).
    pub fn from_settings(settings: &SigningSettings) -> Result<Option<Self>, SigningError> {
        if settings.scheme != SigningScheme::Hmac {
            let hmac_only = [
                ("header", !settings.header.is_empty()),
                ("algorithm", settings.algorithm.is_some()),
                ("encoding", settings.encoding.is_some()),
                ("prefix", !settings.prefix.is_empty()),
                ("signed_payload", !settings.signed_payload.is_empty()),
                ("timestamp_header", !settings.timestamp_header.is_empty()),
            ];
            if let Some((key, _)) = hmac_only.into_iter().find(|(_, set)| *set) {
                return Err(wrong(key, "applies with scheme = \"hmac\" only"));
            }
        }
        let count = settings.secrets.len();
        let scheme = match settings.scheme {
            SigningScheme::None if count == 0 => return Ok(None),
            SigningScheme::None => {
                return Err(wrong(
                    "secrets",
                    "are set but scheme is \"none\": set scheme = \"standard-webhooks\" or \"hmac\" (or leave the \
                     secrets out)",
                ));
            }
            SigningScheme::StandardWebhooks if count == 0 => {
                return Err(wrong(
                    "secrets",
                    "must hold at least one whsec_ secret with scheme = \"standard-webhooks\" (set them with \
                     COURIER__APIS__<NAME>__SIGNING__SECRETS=whsec_…,whsec_…)",
                ));
            }
            SigningScheme::StandardWebhooks => {
                let keys = settings.secrets.iter().enumerate().map(|(i, secret)| {
                    standard_webhooks_key(secret.expose_secret())
                        .map_err(|why| wrong("secrets", format!("secret {} of {count} {why}", i + 1)))
                });
                Scheme::StandardWebhooks(keys.collect::<Result<_, _>>()?)
            }
            SigningScheme::Hmac => Scheme::Hmac(HmacScheme::from_settings(settings)?),
        };
        Ok(Some(Self { scheme }))
    }

    /// The headers that sign a call with idempotency key `id` and `body`, sent now.
    pub fn headers(&self, id: &str, body: &[u8]) -> HeaderMap {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        self.headers_at(id, now, body)
    }

    /// The headers that sign a call with idempotency key `id` and `body`, sent at `timestamp` (unix seconds).
    pub fn headers_at(&self, id: &str, timestamp: u64, body: &[u8]) -> HeaderMap {
        let timestamp = timestamp.to_string();
        let mut headers = HeaderMap::new();
        match &self.scheme {
            Scheme::StandardWebhooks(keys) => {
                let id = webhook_id(id);
                let mut signatures = String::with_capacity(keys.len() * 48);
                for key in keys {
                    let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
                    let mac = hmac_of(HmacAlgorithm::Sha256, key.expose_secret(), &signed);
                    if !signatures.is_empty() {
                        signatures.push(' ');
                    }
                    signatures.push_str("v1,");
                    STANDARD.encode_string(mac, &mut signatures);
                }
                insert(&mut headers, WEBHOOK_ID, &id);
                insert(&mut headers, WEBHOOK_TIMESTAMP, &timestamp);
                insert(&mut headers, WEBHOOK_SIGNATURE, &signatures);
            }
            Scheme::Hmac(hmac) => {
                let signed: Vec<&[u8]> = hmac
                    .payload
                    .iter()
                    .map(|part| match part {
                        Part::Text(text) => text.as_bytes(),
                        Part::Id => id.as_bytes(),
                        Part::Timestamp => timestamp.as_bytes(),
                        Part::Body => body,
                    })
                    .collect();
                let mac = hmac_of(hmac.algorithm, hmac.key.expose_secret(), &signed);
                let mut signature = hmac.prefix.clone();
                match hmac.encoding {
                    SignatureEncoding::Hex => signature.push_str(&hex::encode(mac)),
                    SignatureEncoding::Base64 => STANDARD.encode_string(mac, &mut signature),
                }
                insert(&mut headers, hmac.header.clone(), &signature);
                if let Some(header) = &hmac.timestamp_header {
                    insert(&mut headers, header.clone(), &timestamp);
                }
            }
        }
        headers
    }
}

impl HmacScheme {
    /// The `hmac` scheme of `settings`, checked.
    fn from_settings(settings: &SigningSettings) -> Result<Self, SigningError> {
        let [secret] = settings.secrets.as_slice() else {
            return Err(wrong(
                "secrets",
                format!("must hold exactly one secret with scheme = \"hmac\" ({} given)", settings.secrets.len()),
            ));
        };
        let key = secret.expose_secret().as_bytes().to_vec();
        if key.is_empty() {
            return Err(wrong("secrets", "must not be empty"));
        }
        let header = HeaderName::from_bytes(settings.header.as_bytes()).map_err(|_| {
            wrong("header", "must name the signature's header with scheme = \"hmac\", e.g. X-Hub-Signature-256")
        })?;
        if HeaderValue::from_str(&settings.prefix).is_err() {
            return Err(wrong("prefix", "must be visible ASCII text, e.g. sha256="));
        }
        let payload = parse_payload(&settings.signed_payload).map_err(|why| wrong("signed_payload", why))?;
        let timestamp_header = match (payload.contains(&Part::Timestamp), settings.timestamp_header.as_str()) {
            (false, "") => None,
            (false, _) => return Err(wrong("timestamp_header", "is set but signed_payload has no {timestamp}")),
            (true, "") => {
                return Err(wrong(
                    "timestamp_header",
                    "must name the header that carries the timestamp, which signed_payload signs",
                ));
            }
            (true, name) => Some(
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| wrong("timestamp_header", "must be a header name, e.g. X-Timestamp"))?,
            ),
        };
        Ok(Self {
            key: SecretSlice::from(key),
            header,
            algorithm: settings.algorithm.unwrap_or_default(),
            encoding: settings.encoding.unwrap_or_default(),
            prefix: settings.prefix.clone(),
            payload,
            timestamp_header,
        })
    }
}

/// The key of Standard Webhooks secret `secret` (`whsec_<base64>`), or what is wrong with it (never the secret).
fn standard_webhooks_key(secret: &str) -> Result<SecretSlice<u8>, String> {
    let Some(encoded) = secret.strip_prefix(SECRET_PREFIX) else {
        return Err(format!("does not start with {SECRET_PREFIX} (Standard Webhooks secrets are whsec_<base64>)"));
    };
    let key = SECRET_BASE64
        .decode(encoded)
        .map_err(|_| format!("is not {SECRET_PREFIX} followed by base64 (the standard alphabet)"))?;
    if !SECRET_BYTES.contains(&key.len()) {
        return Err(format!(
            "holds {} bytes: Standard Webhooks secrets are {} to {} random bytes",
            key.len(),
            SECRET_BYTES.start(),
            SECRET_BYTES.end()
        ));
    }
    Ok(SecretSlice::from(key))
}

/// `template` (empty: `{body}`) as the pieces it signs, or why it cannot be one.
fn parse_payload(template: &str) -> Result<Vec<Part>, String> {
    let template = if template.is_empty() { "{body}" } else { template };
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        text.push_str(&rest[..open]);
        let column = template.len() - rest.len() + open + 1;
        let placeholder = &rest[open..];
        let Some(close) = placeholder.find('}') else {
            return Err(format!("the {{ at column {column} is not closed: use {{id}}, {{timestamp}} and {{body}}"));
        };
        let part = match &placeholder[..=close] {
            "{id}" => Part::Id,
            "{timestamp}" => Part::Timestamp,
            "{body}" => Part::Body,
            other => {
                return Err(format!(
                    "{other} at column {column} is not a placeholder: use {{id}}, {{timestamp}} and {{body}}"
                ));
            }
        };
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut text)));
        }
        parts.push(part);
        rest = &placeholder[close + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    if !parts.contains(&Part::Body) {
        return Err("must sign the body: hold {body}".into());
    }
    Ok(parts)
}

/// The `webhook-id` of a call with idempotency key `key`: the key, with `.`, `%`, controls and non-ASCII
/// percent-encoded.
fn webhook_id(key: &str) -> String {
    utf8_percent_encode(key, ESCAPED_IN_ID).to_string()
}

/// The HMAC with `algorithm` under `key` of the concatenation of `pieces`.
fn hmac_of(algorithm: HmacAlgorithm, key: &[u8], pieces: &[&[u8]]) -> Vec<u8> {
    /// The HMAC of `pieces` with the hash of `M`.
    fn of<M: Mac + KeyInit>(key: &[u8], pieces: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
        for piece in pieces {
            mac.update(piece);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        HmacAlgorithm::Sha256 => of::<Hmac<Sha256>>(key, pieces),
        HmacAlgorithm::Sha512 => of::<Hmac<Sha512>>(key, pieces),
    }
}

/// Sets `name: value` in `headers`. Every value made here is visible ASCII (base64, hex, digits, a percent-
/// encoded id, a prefix checked at start-up), so none is ever left out.
fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    /// Settings of `scheme` with `secrets`.
    fn settings(scheme: SigningScheme, secrets: &[&str]) -> SigningSettings {
        SigningSettings {
            scheme,
            secrets: secrets.iter().map(|s| SecretString::from(*s)).collect(),
            ..SigningSettings::default()
        }
    }

    /// The signer of `settings`, which must be sound.
    fn signer(settings: &SigningSettings) -> Signer {
        Signer::from_settings(settings).expect("valid settings").expect("a signer")
    }

    /// The value of `name` in `headers`.
    fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
        headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    }

    /// The test vectors the Standard Webhooks libraries publish (libraries/python/tests/test_webhooks.py and
    /// libraries/javascript/src/webhook.test.ts: "sign function works"; libraries/rust/src/lib.rs: test_sign):
    /// secret, message id, timestamp, payload and the signature they expect.
    const STANDARD_WEBHOOKS_VECTORS: [(&str, &str, u64, &str, &str); 2] = [
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
        (
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            r#"{"email":"test@example.com","username":"test_user"}"#,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
    ];

    #[test]
    fn standard_webhooks_signatures_match_the_specifications_test_vectors() {
        for (secret, id, timestamp, payload, expected) in STANDARD_WEBHOOKS_VECTORS {
            let signer = signer(&settings(SigningScheme::StandardWebhooks, &[secret]));
            let headers = signer.headers_at(id, timestamp, payload.as_bytes());
            assert_eq!(header(&headers, "webhook-signature"), expected, "{id}");
            assert_eq!(header(&headers, "webhook-id"), id);
            assert_eq!(header(&headers, "webhook-timestamp"), timestamp.to_string());
            assert_eq!(headers.len(), 3, "{headers:?}");
        }
    }

    #[test]
    fn every_secret_signs_for_rotation_space_separated_in_the_order_given() {
        let [(first, id, timestamp, payload, first_signature), (second, _, _, _, _)] = STANDARD_WEBHOOKS_VECTORS;
        let second_alone = signer(&settings(SigningScheme::StandardWebhooks, &[second]));
        let second_signature =
            header(&second_alone.headers_at(id, timestamp, payload.as_bytes()), "webhook-signature").to_owned();
        assert_ne!(second_signature, first_signature);
        let both = signer(&settings(SigningScheme::StandardWebhooks, &[first, second]));
        let headers = both.headers_at(id, timestamp, payload.as_bytes());
        assert_eq!(header(&headers, "webhook-signature"), format!("{first_signature} {second_signature}"));
    }

    #[test]
    fn a_secret_without_padding_is_the_same_secret() {
        // 26 bytes: base64 with one `=` of padding, which the specification's libraries accept left out.
        let padded = format!("whsec_{}", STANDARD.encode([7u8; 26]));
        assert!(padded.ends_with('='));
        let unpadded = padded.trim_end_matches('=');
        let signature = |secret: &str| {
            let headers = signer(&settings(SigningScheme::StandardWebhooks, &[secret])).headers_at("k", 1, b"{}");
            header(&headers, "webhook-signature").to_owned()
        };
        assert_eq!(signature(&padded), signature(unpadded));
    }

    #[test]
    fn the_webhook_id_is_the_idempotency_key_with_its_dots_percent_encoded() {
        let signer = signer(&settings(SigningScheme::StandardWebhooks, &[STANDARD_WEBHOOKS_VECTORS[0].0]));
        let id = |key: &str| header(&signer.headers_at(key, 1, b"{}"), "webhook-id").to_owned();
        assert_eq!(id("welcome:0123456789abcdef:reg-1"), "welcome:0123456789abcdef:reg-1", "the key as it is");
        assert_eq!(id("hook:ab:evt.1.2"), "hook:ab:evt%2E1%2E2", "no `.` in the id the signature covers");
        assert_eq!(id("hook:ab:100%"), "hook:ab:100%25", "and the encoding can be undone");
        assert_ne!(id("a.b"), id("a%2Eb"), "two keys, two ids");
    }

    #[test]
    fn a_retry_is_signed_anew_with_its_own_timestamp() {
        let signer = signer(&settings(SigningScheme::StandardWebhooks, &[STANDARD_WEBHOOKS_VECTORS[0].0]));
        let (first, retry) =
            (signer.headers_at("k", 1_700_000_000, b"{}"), signer.headers_at("k", 1_700_000_007, b"{}"));
        assert_eq!(header(&first, "webhook-id"), header(&retry, "webhook-id"));
        assert_ne!(header(&first, "webhook-signature"), header(&retry, "webhook-signature"));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
        let sent: u64 = header(&signer.headers("k", b"{}"), "webhook-timestamp").parse().expect("unix seconds");
        assert!(sent.abs_diff(now) <= 1, "{sent} is now ({now})");
    }

    #[test]
    fn hmac_matches_githubs_published_example() {
        // docs.github.com, "Validating webhook deliveries": this secret and payload give this signature.
        let settings = SigningSettings {
            header: "X-Hub-Signature-256".into(),
            prefix: "sha256=".into(),
            ..settings(SigningScheme::Hmac, &["It's a Secret to Everybody"])
        };
        let headers = signer(&settings).headers_at("k", 1, b"Hello, World!");
        assert_eq!(
            header(&headers, "x-hub-signature-256"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert_eq!(headers.len(), 1, "the signature alone: {headers:?}");
    }

    #[test]
    fn hmac_sha512_in_base64_of_a_template_matches_rfc_4231() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?"; the template writes the data's
        // first words, the body the rest.
        let settings = SigningSettings {
            header: "X-Signature".into(),
            algorithm: Some(HmacAlgorithm::Sha512),
            encoding: Some(SignatureEncoding::Base64),
            signed_payload: "what do ya {body}".into(),
            ..settings(SigningScheme::Hmac, &["Jefe"])
        };
        let headers = signer(&settings).headers_at("k", 1, b"want for nothing?");
        let signature = header(&headers, "x-signature");
        assert_eq!(STANDARD.decode(signature).map(hex::encode).as_deref(), Ok(RFC_4231_CASE_2_SHA512), "{signature}");
    }

    /// RFC 4231, section 4.3: HMAC-SHA-512 of test case 2.
    const RFC_4231_CASE_2_SHA512: &str = "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                                          9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737";

    #[test]
    fn hmac_of_a_timestamp_and_the_body_sends_the_timestamp_in_its_header() {
        let settings = SigningSettings {
            header: "X-Signature".into(),
            signed_payload: "{timestamp}.{body}".into(),
            timestamp_header: "X-Timestamp".into(),
            ..settings(SigningScheme::Hmac, &["Jefe"])
        };
        let headers = signer(&settings).headers_at("k", 1_700_000_000, b"{}");
        assert_eq!(header(&headers, "x-timestamp"), "1700000000");
        let body_only = SigningSettings { signed_payload: String::new(), timestamp_header: String::new(), ..settings };
        let unsigned_time = signer(&body_only).headers_at("k", 1_700_000_000, b"{}");
        assert_ne!(header(&headers, "x-signature"), header(&unsigned_time, "x-signature"), "the timestamp is signed");
        assert_eq!(header(&headers, "x-signature").len(), 64, "hex of SHA-256 by default");
    }

    #[test]
    fn templates_parse_into_their_pieces_or_name_the_column_at_fault() {
        assert_eq!(parse_payload(""), Ok(vec![Part::Body]));
        assert_eq!(
            parse_payload("v0:{timestamp}:{id}:{body}}"),
            Ok(vec![
                Part::Text("v0:".into()),
                Part::Timestamp,
                Part::Text(":".into()),
                Part::Id,
                Part::Text(":".into()),
                Part::Body,
                Part::Text("}".into()),
            ])
        );
        let error = parse_payload("{timestamp}.{bdy}").expect_err("a typo");
        assert!(error.contains("{bdy}") && error.contains("column 13"), "{error}");
        let error = parse_payload("{timestamp}.{body").expect_err("not closed");
        assert!(error.contains("column 13"), "{error}");
        assert!(parse_payload("{timestamp}").expect_err("no body").contains("{body}"));
    }

    #[test]
    fn settings_that_cannot_work_name_their_key_and_never_the_secret() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let hmac = |changes: fn(&mut SigningSettings)| {
            let mut s =
                SigningSettings { header: "X-Signature".into(), ..settings(SigningScheme::Hmac, &["k3y-S3CR3T"]) };
            changes(&mut s);
            s
        };
        let cases: Vec<(SigningSettings, &str, &str)> = vec![
            (settings(SigningScheme::None, &[secret]), "secrets", "scheme is \"none\""),
            (settings(SigningScheme::StandardWebhooks, &[]), "secrets", "at least one"),
            (
                settings(SigningScheme::StandardWebhooks, &[secret, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]),
                "secrets",
                "secret 2 of 2 does not start with whsec_",
            ),
            (
                settings(SigningScheme::StandardWebhooks, &["whsec_not base64!S3CR3T"]),
                "secrets",
                "secret 1 of 1 is not whsec_ followed by base64",
            ),
            (settings(SigningScheme::StandardWebhooks, &["whsec_c2hvcnQtUzNDUjNU"]), "secrets", "holds 12 bytes"),
            (
                SigningSettings { header: "X-Sig".into(), ..settings(SigningScheme::StandardWebhooks, &[secret]) },
                "header",
                "hmac",
            ),
            (hmac(|s| s.secrets.clear()), "secrets", "exactly one"),
            (hmac(|s| s.header.clear()), "header", "must name"),
            (hmac(|s| s.header = "X Signature".into()), "header", "must name"),
            (hmac(|s| s.prefix = "sha256=\n".into()), "prefix", "visible ASCII"),
            (hmac(|s| s.signed_payload = "{timestamp}.{body}".into()), "timestamp_header", "must name"),
            (hmac(|s| s.timestamp_header = "X-Timestamp".into()), "timestamp_header", "no {timestamp}"),
            (hmac(|s| s.signed_payload = "{time}.{body}".into()), "signed_payload", "{time}"),
        ];
        for (settings, key, reason) in cases {
            let error = Signer::from_settings(&settings).expect_err(reason);
            assert_eq!(error.key, key, "{error}");
            assert!(error.reason.contains(reason), "{error} does not say {reason:?}");
            for secret in ["S3CR3T", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "c2hvcnQ"] {
                assert!(!error.to_string().contains(secret), "{error}");
            }
        }
        assert!(Signer::from_settings(&SigningSettings::default()).expect("no signing").is_none());
    }

    #[test]
    fn a_signer_prints_without_its_secrets() {
        let secret = STANDARD_WEBHOOKS_VECTORS[0].0;
        let printed = format!("{:?}", signer(&settings(SigningScheme::StandardWebhooks, &[secret])));
        assert!(printed.contains("standard-webhooks") && !printed.contains("MfKQ9r8G"), "{printed}");
        let settings = settings(SigningScheme::StandardWebhooks, &[secret]);
        assert!(!format!("{settings:?}").contains("MfKQ9r8G"), "{settings:?}");
    }
}
