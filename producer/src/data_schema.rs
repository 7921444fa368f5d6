//! The JSON Schemas of event data (`producer.events.<name>.schema`): each file is read and compiled once, when
//! the producer starts (a missing file, a file that is not JSON or not a valid JSON Schema stops the start,
//! naming the setting and the path), and `POST /v1/events` checks the `data` of each event of the group
//! against it. Every violation is named by an RFC 6901 JSON Pointer into the event as a structured-mode
//! CloudEvent (`/data/email`; for a missing property, the property's own pointer) and a message that never
//! repeats the value, which may be personal data. Formats (`email`, `date-time`, …) are checked whatever the
//! schema's draft.

use std::path::Path;

use courier::events::http_binding;
use jsonschema::error::{ValidationError, ValidationErrorKind};
use jsonschema::paths::Location;
use serde_json::{Map, Value};

use crate::error::SchemaViolation;

/// The most violations one answer lists: a large array of bad items cannot make an answer larger than its
/// request many times over.
pub const MAX_VIOLATIONS: usize = 100;

/// Why the schema file of a group cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {path}: {reason}")]
pub struct SchemaFileError {
    /// The setting naming the file, e.g. `producer.events.users.schema`.
    pub setting: String,
    /// The path as the setting gives it.
    pub path: String,
    /// What is wrong with the file.
    pub reason: String,
}

/// A compiled JSON Schema of event data.
#[derive(Debug)]
pub struct DataSchema {
    /// The schema as the file holds it (what the OpenAPI document shows of the group's `data`).
    schema: Value,
    /// The validator compiled from the schema, with format checks on.
    validator: jsonschema::Validator,
}

impl DataSchema {
    /// Reads and compiles the schema file at `path`, which `setting` names; a relative path is taken from the
    /// working directory.
    pub fn load(setting: &str, path: &str) -> Result<Self, SchemaFileError> {
        let fail = |reason: String| SchemaFileError { setting: setting.to_owned(), path: path.to_owned(), reason };
        let text = std::fs::read(path).map_err(|error| {
            let from = match std::env::current_dir() {
                Ok(dir) if Path::new(path).is_relative() => format!(" (relative to {})", dir.display()),
                _ => String::new(),
            };
            fail(format!("cannot read the JSON Schema file{from}: {error}"))
        })?;
        let schema: Value =
            serde_json::from_slice(&text).map_err(|error| fail(format!("the file is not JSON: {error}")))?;
        Self::compile(&schema).map_err(fail)
    }

    /// Compiles `schema`, or says why it is not a valid JSON Schema.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let validator = jsonschema::options().should_validate_formats(true).build(schema).map_err(|error| {
            let at = error.instance_path().as_str();
            let at = if at.is_empty() { String::new() } else { format!(" at {at}") };
            format!("not a valid JSON Schema{at}: {error}")
        })?;
        Ok(Self { schema: schema.clone(), validator })
    }

    /// The schema as its file holds it.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Checks the data of `event` (a structured-mode CloudEvent): JSON (`data`, with a JSON `datacontenttype`
    /// or none) that matches the schema; else every violation, at most [`MAX_VIOLATIONS`].
    pub fn check(&self, event: &Map<String, Value>) -> Result<(), Vec<SchemaViolation>> {
        let content_type = event.get("datacontenttype").and_then(Value::as_str);
        if let Some(content_type) = content_type.filter(|t| !http_binding::is_json(t)) {
            let message = format!("must be JSON to be checked against its type's schema, not {content_type:?}");
            return Err(vec![SchemaViolation::new("/data", message)]);
        }
        let data = match event.get("data") {
            Some(data) => data,
            None if event.contains_key("data_base64") => {
                let message = "must be JSON to be checked against its type's schema, not data_base64";
                return Err(vec![SchemaViolation::new("/data", message)]);
            }
            None => return Err(vec![SchemaViolation::new("/data", "is required: its type's schema describes it")]),
        };
        let violations: Vec<SchemaViolation> =
            self.validator.iter_errors(data).flat_map(|error| violations(&error)).take(MAX_VIOLATIONS).collect();
        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }
}

/// The violations one validation error stands for: a missing or unexpected property is pointed at itself
/// (one violation per unexpected property), anything else at the value that failed.
fn violations(error: &ValidationError<'_>) -> Vec<SchemaViolation> {
    let at = |location: &Location| format!("/data{}", location.as_str());
    let path = error.instance_path();
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
            vec![SchemaViolation::new(at(&path.join(name.as_str())), "is required")]
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
            .iter()
            .map(|name| SchemaViolation::new(at(&path.join(name.as_str())), "is not a property the schema allows"))
            .collect(),
        _ => vec![SchemaViolation::new(at(path), error.masked().to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> DataSchema {
        DataSchema::compile(&json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "required": ["user_id", "email"],
            "properties": {
                "user_id": {"type": "string", "minLength": 1},
                "email": {"type": "string", "format": "email"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "address": {
                    "type": "object",
                    "required": ["city/town"],
                    "properties": {"city/town": {"type": "string"}},
                    "additionalProperties": false
                }
            }
        }))
        .expect("a valid schema")
    }

    fn event(data: Value) -> Map<String, Value> {
        let event = json!({"specversion": "1.0", "id": "e-1", "source": "/s", "type": "user.registered", "data": data});
        event.as_object().expect("an object").clone()
    }

    fn pointers(result: Result<(), Vec<SchemaViolation>>) -> Vec<String> {
        let mut pointers: Vec<String> = result.expect_err("violations").into_iter().map(|v| v.pointer).collect();
        pointers.sort();
        pointers
    }

    #[test]
    fn matching_data_passes() {
        schema().check(&event(json!({"user_id": "u-1", "email": "ada@example.com", "extra": 1}))).expect("valid");
    }

    #[test]
    fn a_missing_property_is_pointed_at_itself() {
        let violations = schema().check(&event(json!({"user_id": "u-1"}))).expect_err("no email");
        assert_eq!(violations, [SchemaViolation::new("/data/email", "is required")]);
    }

    #[test]
    fn every_violation_is_listed_by_its_pointer_and_no_message_repeats_the_value() {
        let secret = "not-an-address";
        let data = json!({
            "user_id": "", "email": secret, "tags": ["a", 7],
            "address": {"zip": "1000", "a~b": true}
        });
        let violations = schema().check(&event(data)).expect_err("invalid");
        assert!(violations.iter().all(|v| !v.message.contains(secret) && !v.message.is_empty()), "{violations:?}");
        let mut pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
        pointers.sort_unstable();
        assert_eq!(
            pointers,
            [
                "/data/address/a~0b",
                "/data/address/city~1town",
                "/data/address/zip",
                "/data/email",
                "/data/tags/1",
                "/data/user_id"
            ],
            "{violations:?}"
        );
        let email = violations.iter().find(|v| v.pointer == "/data/email").expect("the e-mail");
        assert!(email.message.contains("email"), "the format is checked and named: {}", email.message);
    }

    #[test]
    fn data_that_is_not_json_or_absent_is_refused() {
        let base64 = json!({"specversion": "1.0", "id": "e", "source": "/s", "type": "t",
                            "datacontenttype": "application/octet-stream", "data_base64": "AAE="});
        let text = json!({"specversion": "1.0", "id": "e", "source": "/s", "type": "t",
                          "datacontenttype": "text/plain", "data": "hello"});
        let none = json!({"specversion": "1.0", "id": "e", "source": "/s", "type": "t"});
        for case in [base64, text, none] {
            let result = schema().check(case.as_object().expect("an object"));
            assert_eq!(pointers(result), ["/data"], "{case}");
        }
        let mut cloudevents_json = event(json!({"user_id": "u-1", "email": "ada@example.com"}));
        cloudevents_json.insert("datacontenttype".into(), json!("application/vnd.user+json; charset=utf-8"));
        schema().check(&cloudevents_json).expect("a +json content type is JSON");
    }

    #[test]
    fn the_answer_lists_at_most_max_violations() {
        let tags: Vec<u32> = (0..1000).collect();
        let violations =
            schema().check(&event(json!({"user_id": "u", "email": "a@b.c", "tags": tags}))).expect_err("invalid");
        assert_eq!(violations.len(), MAX_VIOLATIONS);
    }

    #[test]
    fn a_bad_schema_file_is_named_with_its_setting_and_path() {
        let dir = std::env::temp_dir().join(format!("courier-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let not_json = dir.join("not-json.json");
        std::fs::write(&not_json, "{\"type\": ").expect("written");
        let bad_schema = dir.join("bad.json");
        std::fs::write(&bad_schema, r#"{"type": "objekt"}"#).expect("written");
        let missing = dir.join("missing.json");
        let cases = [(&missing, "cannot read"), (&not_json, "not JSON"), (&bad_schema, "not a valid JSON Schema")];
        for (path, reason) in cases {
            let path = path.to_str().expect("UTF-8");
            let error = DataSchema::load("producer.events.users.schema", path).expect_err("refused").to_string();
            assert!(error.starts_with(&format!("producer.events.users.schema: {path}: ")), "{error}");
            assert!(error.contains(reason), "{error}");
        }
        std::fs::remove_dir_all(&dir).expect("removed");
    }
}
