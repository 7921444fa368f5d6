//! JSON Schema: the payload is JSON text, validated by the jsonschema crate against the registry's schema (its
//! draft taken from `$schema`; remote `$ref`s are not fetched).

use serde_json::Value;

use super::client::RegisteredSchema;
use super::error::DecodeError;

/// A compiled JSON Schema.
#[derive(Debug)]
pub struct JsonSchema {
    /// The validator built from it.
    validator: jsonschema::Validator,
}

impl JsonSchema {
    /// Compiles schema `id`. Schemas that reference others are refused (not supported yet).
    pub fn parse(id: u32, schema: &RegisteredSchema) -> Result<Self, DecodeError> {
        let invalid = |reason: String| DecodeError::InvalidSchema { id, reason };
        if !schema.references.is_empty() {
            return Err(invalid("JSON Schema with references is not supported".into()));
        }
        let text: Value = serde_json::from_str(&schema.schema).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let validator = jsonschema::validator_for(&text).map_err(|e| invalid(format!("JSON Schema: {e}")))?;
        Ok(Self { validator })
    }

    /// Parses `payload` and validates it: the JSON value, or why it is not one the schema allows.
    pub fn decode(&self, payload: &[u8]) -> Result<Value, DecodeError> {
        let value: Value =
            serde_json::from_slice(payload).map_err(|e| DecodeError::Malformed(format!("not JSON: {e}")))?;
        if let Err(error) = self.validator.validate(&value) {
            let path = error.instance_path().to_string();
            let at = if path.is_empty() { String::new() } else { format!(" at {path}") };
            return Err(DecodeError::Malformed(format!("does not match its JSON Schema{at}: {error}")));
        }
        Ok(value)
    }
}
