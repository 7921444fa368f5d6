//! Records written with a Confluent-compatible Schema Registry, decoded to JSON: Avro, Protobuf and JSON Schema.
//!
//! A record in the Confluent wire format names its writer's schema by id; [`SchemaRegistry::decode`] fetches
//! that schema once (concurrent first uses of one id make one request), keeps it compiled, and decodes the
//! record with it to a `serde_json::Value`. Each concern has its file:
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

pub use client::{ClientError, RegisteredSchema, RegistryClient, SchemaType};
pub use error::DecodeError;

use crate::settings::SchemaRegistrySettings;

/// What a request asks the registry to answer in.
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json";

/// The most compiled schemas kept; past it, the least used are fetched again when next needed.
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

/// The Schema Registry's client and the schemas it has compiled, by id. Cloning shares both.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    /// The registry's client.
    client: RegistryClient,
    /// Compiled schemas by id.
    schemas: moka::future::Cache<u32, Arc<Compiled>>,
}

impl SchemaRegistry {
    /// The registry `settings` describe.
    pub fn new(settings: &SchemaRegistrySettings) -> Result<Self, ClientError> {
        if !settings.is_configured() {
            return Err(ClientError::NotConfigured);
        }
        let schemas = moka::future::Cache::builder().max_capacity(CACHED_SCHEMAS).build();
        Ok(Self { client: RegistryClient::new(settings)?, schemas })
    }

    /// Decodes `bytes`, a record value in the wire format of `format`, to JSON.
    pub async fn decode(&self, format: SchemaFormat, bytes: &[u8]) -> Result<serde_json::Value, DecodeError> {
        let framed = match format {
            SchemaFormat::Protobuf => wire_format::parse_protobuf(bytes)?,
            SchemaFormat::Avro | SchemaFormat::JsonSchema => wire_format::parse(bytes)?,
        };
        let id = framed.schema_id;
        // Concurrent callers for one id wait for the same fetch; a failed fetch is not kept, so the next record
        // asks again.
        let compiled = self.schemas.try_get_with(id, self.compile(id)).await.map_err(|e| (*e).clone())?;
        match (format, &*compiled) {
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

    /// Fetches schema `id` and the schemas it references, and compiles it.
    async fn compile(&self, id: u32) -> Result<Arc<Compiled>, DecodeError> {
        let schema = self.client.schema(id).await?;
        let references = self.references(id, &schema).await?;
        Ok(Arc::new(match schema.schema_type {
            SchemaType::Avro => {
                let texts: Vec<RegisteredSchema> = references.into_iter().map(|(_, schema)| schema).collect();
                Compiled::Avro(avro::AvroSchema::parse(id, &schema, &texts)?)
            }
            SchemaType::Protobuf => Compiled::Protobuf(protobuf::ProtobufSchema::parse(id, &schema, &references)?),
            SchemaType::Json => Compiled::Json(json_schema::JsonSchema::parse(id, &schema)?),
        }))
    }

    /// Every schema `schema` references, directly or through another, each once, dependencies first, with the
    /// name it is imported by.
    async fn references(
        &self,
        id: u32,
        schema: &RegisteredSchema,
    ) -> Result<Vec<(String, RegisteredSchema)>, DecodeError> {
        let mut found: Vec<(String, RegisteredSchema)> = Vec::new();
        let mut pending: Vec<client::Reference> = schema.references.iter().rev().cloned().collect();
        while let Some(reference) = pending.pop() {
            if found.iter().any(|(name, _)| *name == reference.name) {
                continue;
            }
            if found.len() >= MAX_REFERENCES {
                let reason = format!("more than {MAX_REFERENCES} referenced schemas");
                return Err(DecodeError::InvalidSchema { id, reason });
            }
            let referenced = self.client.referenced(&reference).await?;
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
