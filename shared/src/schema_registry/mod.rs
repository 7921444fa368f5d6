//! Records written with a Confluent-compatible Schema Registry, decoded to JSON: Avro, Protobuf and JSON Schema.
//!
//! A record in the Confluent wire format names its writer's schema by id; [`SchemaRegistry::decode`] fetches
//! that schema once (concurrent first uses of one id make one request), keeps it compiled (what decoding needs
//! of it built once: the Avro reader, the Protobuf message descriptors, the JSON Schema validator), and decodes
//! the record with it to a `serde_json::Value`. What the registry answers is kept as follows:
//!
//! * a schema, by id, for good (an id names one schema for ever), the least used dropped past `CACHED_SCHEMAS`;
//! * a schema another one references (by subject and version), once per process, however many schemas import it;
//! * a permanent failure of an id (an id the registry does not know, a refusal, a schema that does not parse), for
//!   `schema_registry.failure_cache_ms`: the records naming it meanwhile fail at once, without a request each;
//! * a transient failure (the registry unreachable, 5xx, a timeout), never: the next record asks again.
//!
//! Each concern has its file:
//!
//! * [`wire_format`]: the framing (magic byte, schema id, Protobuf's message indexes);
//! * [`client`]: the registry's REST API (`GET /schemas/ids/{id}`, the subjects a schema references), its
//!   credentials (basic or bearer), TLS and timeouts, and what each answer means;
//! * [`avro`], [`protobuf`], [`json_schema`]: each format's schema compiled and a payload decoded, by apache-avro,
//!   protox with prost-reflect, and jsonschema;
//! * [`error`]: [`DecodeError`], which says whether a failure is permanent (dead-letter the record with kind
//!   `decode` and the reason) or transient (the registry is unavailable: retry it).

pub mod avro;
pub mod client;
pub mod error;
pub mod json_schema;
pub mod protobuf;
pub mod wire_format;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use client::{ClientError, RegisteredSchema, RegistryClient, SchemaType};
pub use error::DecodeError;

use crate::settings::SchemaRegistrySettings;

/// What a request asks the registry to answer in.
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json";

/// The most compiled schemas (and failures) kept, and the most referenced schemas kept; past it, the least used
/// are fetched again when next needed.
const CACHED_SCHEMAS: u64 = 10_000;

/// The most references one schema may pull in (its imports and theirs): a cycle or a runaway graph stops here.
const MAX_REFERENCES: usize = 256;

/// The formats that read the Confluent wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaFormat {
    /// `avro`.
    Avro,
    /// `protobuf`.
    Protobuf,
    /// `json-schema`.
    JsonSchema,
}

impl SchemaFormat {
    /// The format's name in settings.
    pub fn name(self) -> &'static str {
        match self {
            SchemaFormat::Avro => "avro",
            SchemaFormat::Protobuf => "protobuf",
            SchemaFormat::JsonSchema => "json-schema",
        }
    }
}

/// A schema, compiled for decoding.
#[derive(Debug)]
enum Compiled {
    /// An Avro schema.
    Avro(avro::AvroSchema),
    /// A .proto file.
    Protobuf(protobuf::ProtobufSchema),
    /// A JSON Schema.
    Json(json_schema::JsonSchema),
}

/// What is kept of an id: its compiled schema, or the permanent failure of its fetch or compilation.
type Lookup = Arc<Result<Compiled, DecodeError>>;

/// How long a lookup is kept: a compiled schema for good, a permanent failure for its time.
struct KeptFor {
    /// How long a permanent failure is kept.
    failure: Duration,
}

impl moka::Expiry<u32, Lookup> for KeptFor {
    fn expire_after_create(&self, _id: &u32, lookup: &Lookup, _created_at: Instant) -> Option<Duration> {
        lookup.is_err().then_some(self.failure)
    }
}

/// The Schema Registry's client, the schemas it has compiled by id (and the permanent failures of ids), and the
/// referenced schemas it has fetched. Cloning shares them all.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    /// The registry's client.
    client: RegistryClient,
    /// Compiled schemas and permanent failures, by id.
    schemas: moka::future::Cache<u32, Lookup>,
    /// Referenced schemas, by subject and version.
    referenced: moka::future::Cache<(String, i64), Arc<RegisteredSchema>>,
}

impl SchemaRegistry {
    /// The registry `settings` describe.
    pub fn new(settings: &SchemaRegistrySettings) -> Result<Self, ClientError> {
        if !settings.is_configured() {
            return Err(ClientError::NotConfigured);
        }
        let schemas = moka::future::Cache::builder()
            .max_capacity(CACHED_SCHEMAS)
            .expire_after(KeptFor { failure: settings.failure_cache_ms })
            .build();
        let referenced = moka::future::Cache::builder().max_capacity(CACHED_SCHEMAS).build();
        Ok(Self { client: RegistryClient::new(settings)?, schemas, referenced })
    }

    /// Decodes `bytes`, a record value in the wire format of `format`, to JSON.
    pub async fn decode(&self, format: SchemaFormat, bytes: &[u8]) -> Result<serde_json::Value, DecodeError> {
        let framed = match format {
            SchemaFormat::Protobuf => wire_format::parse_protobuf(bytes)?,
            SchemaFormat::Avro | SchemaFormat::JsonSchema => wire_format::parse(bytes)?,
        };
        let id = framed.schema_id;
        // Concurrent callers for one id wait for the same fetch. A permanent failure is kept (for its time) like a
        // schema; a transient one is not, so the next record asks again.
        let lookup = self.schemas.try_get_with(id, self.lookup(id)).await.map_err(|e| (*e).clone())?;
        let compiled = lookup.as_ref().as_ref().map_err(Clone::clone)?;
        match (format, compiled) {
            (SchemaFormat::Avro, Compiled::Avro(schema)) => schema.decode(framed.payload),
            (SchemaFormat::Protobuf, Compiled::Protobuf(schema)) => {
                schema.decode(&framed.message_indexes, framed.payload)
            }
            (SchemaFormat::JsonSchema, Compiled::Json(schema)) => schema.decode(framed.payload),
            (format, compiled) => Err(DecodeError::InvalidSchema {
                id,
                reason: format!("it is a {} schema, and the format is {}", kind(compiled), format.name()),
            }),
        }
    }

    /// Schema `id` compiled, or its permanent failure; `Err` only for a transient failure, which is not kept.
    async fn lookup(&self, id: u32) -> Result<Lookup, DecodeError> {
        match self.compile(id).await {
            Err(error) if error.is_transient() => Err(error),
            kept => Ok(Arc::new(kept)),
        }
    }

    /// Fetches schema `id` and the schemas it references, and compiles it.
    async fn compile(&self, id: u32) -> Result<Compiled, DecodeError> {
        let schema = self.client.schema(id).await?;
        let references = self.references(id, &schema).await?;
        Ok(match schema.schema_type {
            SchemaType::Avro => {
                let texts: Vec<&str> = references.iter().map(|(_, schema)| schema.schema.as_str()).collect();
                Compiled::Avro(avro::AvroSchema::parse(id, &schema, &texts)?)
            }
            SchemaType::Protobuf => Compiled::Protobuf(protobuf::ProtobufSchema::parse(id, &schema, &references)?),
            SchemaType::Json => Compiled::Json(json_schema::JsonSchema::parse(id, &schema)?),
        })
    }

    /// The schema `reference` names: fetched once, then kept (concurrent first uses make one request; a failure
    /// is not kept: it fails the schema that references it, which is kept if it is permanent).
    async fn referenced(&self, reference: &client::Reference) -> Result<Arc<RegisteredSchema>, DecodeError> {
        let key = (reference.subject.clone(), reference.version);
        let fetch = async { self.client.referenced(reference).await.map(Arc::new) };
        self.referenced.try_get_with(key, fetch).await.map_err(|e| (*e).clone())
    }

    /// Every schema `schema` references, directly or through another, each once, dependencies first, with the
    /// name it is imported by.
    async fn references(
        &self,
        id: u32,
        schema: &RegisteredSchema,
    ) -> Result<Vec<(String, Arc<RegisteredSchema>)>, DecodeError> {
        let mut found: Vec<(String, Arc<RegisteredSchema>)> = Vec::new();
        let mut pending: Vec<client::Reference> = schema.references.iter().rev().cloned().collect();
        while let Some(reference) = pending.pop() {
            if found.iter().any(|(name, _)| *name == reference.name) {
                continue;
            }
            if found.len() >= MAX_REFERENCES {
                let reason = format!("more than {MAX_REFERENCES} referenced schemas");
                return Err(DecodeError::InvalidSchema { id, reason });
            }
            let referenced = self.referenced(&reference).await?;
            pending.extend(referenced.references.iter().rev().cloned());
            found.push((reference.name, referenced));
        }
        // Fetched depth-first from the top: reversed, a schema comes after those it references.
        found.reverse();
        Ok(found)
    }
}

/// The kind of a compiled schema, as the registry names it.
fn kind(compiled: &Compiled) -> &'static str {
    match compiled {
        Compiled::Avro(_) => "AVRO",
        Compiled::Protobuf(_) => "PROTOBUF",
        Compiled::Json(_) => "JSON",
    }
}

#[cfg(test)]
mod tests;
