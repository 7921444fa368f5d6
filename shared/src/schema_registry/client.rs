//! The HTTP client of the Schema Registry: `GET /schemas/ids/{id}` and `GET /subjects/{subject}/versions/{version}`
//! (the schemas a schema references), with the registry's credentials (basic or bearer), its CA and client
//! certificate, and timeouts; each answer classified into a schema or a [`DecodeError`].

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::error::DecodeError;
use crate::downstream::client::{TlsFiles, redacted, redacted_error};
use crate::settings::SchemaRegistrySettings;

/// What kind of schema the registry holds (`schemaType`; absent means Avro).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    /// Avro (the registry's default).
    #[default]
    Avro,
    /// Protobuf: the schema is .proto text.
    Protobuf,
    /// JSON Schema.
    Json,
}

/// A schema another schema imports: its name there, and where the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Reference {
    /// The name it is imported by (a .proto file name, an Avro full name, a JSON Schema `$ref`).
    pub name: String,
    /// The subject it is registered under.
    pub subject: String,
    /// Its version there.
    pub version: i64,
}

/// A schema as the registry answers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredSchema {
    /// Its kind.
    #[serde(default)]
    pub schema_type: SchemaType,
    /// Its text.
    pub schema: String,
    /// The schemas it references.
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// How requests authenticate.
#[derive(Clone)]
enum Credentials {
    /// None.
    None,
    /// HTTP basic.
    Basic(String, SecretString),
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
}

/// The registry's client: a pooled HTTP client with the registry's TLS and timeouts.
#[derive(Clone)]
pub struct RegistryClient {
    /// The base URL, ending with `/`.
    base_url: Url,
    /// The HTTP client.
    http: reqwest::Client,
    /// The credentials.
    credentials: Credentials,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient").field("base_url", &redacted(&self.base_url).as_str()).finish()
    }
}

/// Why the client could not be built (a setting the settings check cannot see: a certificate that does not
/// parse).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No `schema_registry.url` is set.
    #[error("no schema registry is configured: set schema_registry.url")]
    NotConfigured,
    /// A certificate or key file cannot be read or parsed.
    #[error("{0}")]
    Certificate(String),
    /// The HTTP client could not be built.
    #[error("cannot build the schema registry's HTTP client: {0}")]
    Http(reqwest::Error),
}

impl RegistryClient {
    /// The client `settings` describe.
    pub fn new(settings: &SchemaRegistrySettings) -> Result<Self, ClientError> {
        let mut base_url = Url::parse(&settings.url).map_err(|_| ClientError::NotConfigured)?;
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        let builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout_ms)
            .timeout(settings.request_timeout_ms)
            .user_agent(concat!("courier/", env!("CARGO_PKG_VERSION")));
        let tls = TlsFiles {
            setting_prefix: "schema_registry",
            ca: &settings.tls_ca_location,
            certificate: &settings.tls_certificate_location,
            key: &settings.tls_key_location,
        };
        let builder = tls.apply(builder).map_err(ClientError::Certificate)?;
        let secret = |s: &Option<SecretString>| s.clone().unwrap_or_else(|| SecretString::from(String::new()));
        let credentials = match settings.effective_auth() {
            "basic" => Credentials::Basic(settings.username.clone(), secret(&settings.password)),
            "bearer" => Credentials::Bearer(secret(&settings.token)),
            _ => Credentials::None,
        };
        Ok(Self { base_url, http: builder.build().map_err(ClientError::Http)?, credentials })
    }

    /// The schema with `id` (`GET /schemas/ids/{id}`).
    pub async fn schema(&self, id: u32) -> Result<RegisteredSchema, DecodeError> {
        self.get(&format!("schemas/ids/{id}"), Some(id)).await
    }

    /// The schema `reference` names (`GET /subjects/{subject}/versions/{version}`).
    pub async fn referenced(&self, reference: &Reference) -> Result<RegisteredSchema, DecodeError> {
        let subject = crate::downstream::path_segment(&reference.subject);
        self.get(&format!("subjects/{subject}/versions/{}", reference.version), None).await
    }

    /// `GET path`, its answer classified; `id` is the schema id asked for, if any.
    async fn get(&self, path: &str, id: Option<u32>) -> Result<RegisteredSchema, DecodeError> {
        let url = self.base_url.join(path).map_err(|e| DecodeError::Malformed(format!("{path}: {e}")))?;
        let mut request = self.http.get(url).header(http::header::ACCEPT, super::ACCEPT);
        request = match &self.credentials {
            Credentials::None => request,
            Credentials::Basic(user, password) => request.basic_auth(user, Some(password.expose_secret())),
            Credentials::Bearer(token) => request.bearer_auth(token.expose_secret()),
        };
        let unavailable = |error: reqwest::Error| DecodeError::Unavailable(redacted_error(error).to_string());
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unavailable)?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| DecodeError::InvalidSchema {
                id: id.unwrap_or_default(),
                reason: format!("the registry's answer to GET /{path} is not a schema: {e}"),
            });
        }
        let error: Option<RegistryError> = serde_json::from_slice(&body).ok();
        let message = match &error {
            Some(error) => format!("{} (error code {})", error.message, error.error_code),
            None => crate::downstream::excerpt(&body),
        };
        let code = status.as_u16();
        Err(match (code, &error, id) {
            (404, Some(RegistryError { error_code: 40403, .. }), Some(id)) => {
                DecodeError::UnknownSchema { id, message }
            }
            // 40401 (subject) and 40402 (version): a reference the registry no longer has.
            (404, Some(RegistryError { error_code: 40401 | 40402, .. }), _) => {
                DecodeError::InvalidSchema { id: id.unwrap_or_default(), reason: format!("GET /{path}: {message}") }
            }
            // A 404 that is not the registry's (a wrong URL, a proxy): retried, so that a misconfiguration holds
            // records back rather than dead-letters them all.
            (404 | 408 | 429, ..) | (500.., ..) => {
                DecodeError::Unavailable(format!("HTTP {code} to GET /{path}: {message}"))
            }
            _ => DecodeError::Refused { status: code, message },
        })
    }
}

/// The registry's error body: `{"error_code": 40403, "message": "Schema 7 not found"}`.
#[derive(Debug, Deserialize)]
struct RegistryError {
    /// The registry's code (the HTTP status, or five digits that refine it).
    error_code: u32,
    /// What it says.
    message: String,
}
