//! Protobuf: the registry's .proto text (and the files it imports, from the schemas it references, or protox's
//! copies of Google's well-known types) compiled at run time by protox, the message type picked by the record's
//! message indexes, the payload decoded by prost-reflect and written as JSON: the proto3 JSON mapping (enums by
//! name, `bytes` in base64, `Timestamp` as RFC 3339, …) with two choices made for the APIs courier calls: the
//! field names of the .proto file (`order_id`, not `orderId`), every field present with its default when unset
//! (but an unset `optional` field, which has presence, is left out), and 64-bit integers as numbers (as Avro's
//! `long`), not strings.

use std::collections::HashMap;
use std::sync::Arc;

use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::client::RegisteredSchema;
use super::error::DecodeError;

/// The name the schema's own file is compiled under (its imports have the names the references give them).
const MAIN_FILE: &str = "courier-schema-registry/schema.proto";

/// A compiled .proto file: the descriptor of each of its messages, by the message indexes that name it.
#[derive(Debug)]
pub struct ProtobufSchema {
    /// Every message of the file, nested ones too, by its indexes (`[0]`, `[1, 0]`, …).
    messages: HashMap<Vec<usize>, MessageDescriptor>,
    /// How a message is written as JSON.
    options: SerializeOptions,
}

/// The .proto texts of one schema and its references, by file name.
struct Sources(HashMap<String, String>);

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

impl ProtobufSchema {
    /// Compiles schema `id`, with `references`: each imported file's name and the schema registered for it.
    pub fn parse(
        id: u32,
        schema: &RegisteredSchema,
        references: &[(String, Arc<RegisteredSchema>)],
    ) -> Result<Self, DecodeError> {
        let invalid = |e: protox::Error| DecodeError::InvalidSchema { id, reason: format!("Protobuf: {e}") };
        let mut sources: HashMap<String, String> =
            references.iter().map(|(name, schema)| (name.clone(), schema.schema.clone())).collect();
        sources.insert(MAIN_FILE.to_owned(), schema.schema.clone());
        let mut resolver = ChainFileResolver::new();
        resolver.add(Sources(sources));
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true);
        compiler.open_file(MAIN_FILE).map_err(invalid)?;
        let file = compiler.descriptor_pool().get_file_by_name(MAIN_FILE).ok_or_else(|| {
            DecodeError::InvalidSchema { id, reason: "Protobuf: the compiled file is missing".into() }
        })?;
        let mut messages = HashMap::new();
        let mut pending: Vec<(Vec<usize>, MessageDescriptor)> =
            file.messages().enumerate().map(|(i, message)| (vec![i], message)).collect();
        while let Some((indexes, message)) = pending.pop() {
            for (i, child) in message.child_messages().enumerate() {
                pending.push(([indexes.as_slice(), &[i]].concat(), child));
            }
            messages.insert(indexes, message);
        }
        let options = SerializeOptions::new()
            .use_proto_field_name(true)
            .skip_default_fields(false)
            .stringify_64_bit_integers(false);
        Ok(Self { messages, options })
    }

    /// Decodes `payload` as the message `indexes` name to JSON.
    pub fn decode(&self, indexes: &[usize], payload: &[u8]) -> Result<serde_json::Value, DecodeError> {
        let descriptor = self.messages.get(indexes).ok_or_else(|| {
            DecodeError::Malformed(format!("message indexes {indexes:?} name no message of the schema"))
        })?;
        let message = DynamicMessage::decode(descriptor.clone(), payload)
            .map_err(|e| DecodeError::Malformed(format!("Protobuf {}: {e}", descriptor.full_name())))?;
        message
            .serialize_with_options(serde_json::value::Serializer, &self.options)
            .map_err(|e| DecodeError::Malformed(format!("Protobuf {}: {e}", descriptor.full_name())))
    }
}
