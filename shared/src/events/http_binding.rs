//! The CloudEvents HTTP protocol binding (version 1.0): a structured JSON event to and from binary mode, where
//! the attributes travel as `ce-<name>` headers and `data` is the body with the event's `datacontenttype`.
//!
//! The `forward` consumer sends events in binary mode ([`to_binary`]); `POST /v1/events` accepts them
//! ([`from_binary`]). Header values are percent-encoded where the binding asks for it (any byte outside
//! printable ASCII, `"` and `%`).

use base64::Engine;
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The prefix of an attribute's header.
pub const HEADER_PREFIX: &str = "ce-";

/// An event in binary mode.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryEvent {
    /// `ce-<attribute>` headers, names in lower case, values percent-encoded.
    pub headers: Vec<(String, String)>,
    /// The body's content type: the event's `datacontenttype` (`application/json` when it has none).
    pub content_type: String,
    /// The body: `data` (its JSON text for a JSON content type, the text itself for a string of another
    /// type, the decoded bytes of `data_base64`), empty without data.
    pub body: Bytes,
}

/// Why an event cannot be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BindingError {
    /// The structured event is not a JSON object.
    #[error("the event is not a JSON object: {0}")]
    NotAnObject(String),
    /// An attribute cannot be a header or came from one that is not valid.
    #[error("attribute {name:?}: {reason}")]
    Attribute {
        /// The attribute.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// `data_base64` is not base64.
    #[error("data_base64 is not base64: {0}")]
    Base64(String),
}

/// Whether a content type is JSON (`application/json`, `…+json`, `text/json`), parameters ignored.
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

/// A structured JSON event in binary mode.
pub fn to_binary(structured: &[u8]) -> Result<BinaryEvent, BindingError> {
    let members: std::collections::BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(structured).map_err(|e| BindingError::NotAnObject(e.to_string()))?;
    let mut headers = Vec::with_capacity(members.len());
    let mut content_type = None;
    let mut data = None;
    let mut data_base64 = None;
    for (name, raw) in &members {
        let value: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
        match name.as_str() {
            "data" => data = Some(raw),
            "data_base64" => data_base64 = value.as_str().map(str::to_owned),
            "datacontenttype" => content_type = value.as_str().map(str::to_owned),
            _ if value.is_null() => {}
            _ => {
                if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
                    let reason = "an attribute name is lower-case letters and digits only".to_owned();
                    return Err(BindingError::Attribute { name: name.clone(), reason });
                }
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                headers.push((format!("{HEADER_PREFIX}{name}"), percent_encode(&text)));
            }
        }
    }
    let content_type = content_type.unwrap_or_else(|| super::DATA_CONTENT_TYPE.to_owned());
    let body = match (data, data_base64) {
        (_, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map(Bytes::from)
            .map_err(|e| BindingError::Base64(e.to_string()))?,
        (Some(raw), None) if is_json(&content_type) => Bytes::copy_from_slice(raw.get().as_bytes()),
        (Some(raw), None) => match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::String(text)) => Bytes::from(text),
            _ => Bytes::copy_from_slice(raw.get().as_bytes()),
        },
        (None, None) => Bytes::new(),
    };
    Ok(BinaryEvent { headers, content_type, body })
}

/// A binary-mode event (its `ce-*` headers, its content type and body) as a structured JSON event: the
/// attributes as strings, `datacontenttype` from the content type, `data` the body's JSON for a JSON content
/// type, its text for a textual one, `data_base64` otherwise.
pub fn from_binary<'h>(
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, BindingError> {
    let mut event = Map::new();
    for (name, value) in headers {
        let Some(attribute) = name.to_ascii_lowercase().strip_prefix(HEADER_PREFIX).map(str::to_owned) else {
            continue;
        };
        let text = percent_decode(value).ok_or_else(|| BindingError::Attribute {
            name: attribute.clone(),
            reason: "its header is not valid percent-encoded UTF-8".to_owned(),
        })?;
        event.insert(attribute, Value::String(text));
    }
    insert_data(&mut event, content_type, body)?;
    Ok(event)
}

/// Adds `datacontenttype` (when there is a content type) and the body to `event`: `data` the body's JSON for a
/// JSON content type (or none), its text for a textual one, `data_base64` otherwise. Shared by the HTTP and
/// the Kafka bindings.
pub(super) fn insert_data(
    event: &mut Map<String, Value>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), BindingError> {
    if let Some(content_type) = content_type {
        event.insert("datacontenttype".to_owned(), Value::String(content_type.to_owned()));
    }
    if !body.is_empty() {
        let json = content_type.is_none_or(is_json);
        match (json, std::str::from_utf8(body)) {
            (true, _) => {
                let data: Value = serde_json::from_slice(body).map_err(|e| BindingError::Attribute {
                    name: "data".to_owned(),
                    reason: format!("the body is not the JSON its content type says: {e}"),
                })?;
                event.insert("data".to_owned(), data);
            }
            (false, Ok(text)) if content_type.is_some_and(|t| t.starts_with("text/")) => {
                event.insert("data".to_owned(), Value::String(text.to_owned()));
            }
            _ => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(body);
                event.insert("data_base64".to_owned(), Value::String(encoded));
            }
        }
    }
    Ok(())
}

/// Percent-encodes the bytes the binding asks for: outside printable ASCII, space, `"` and `%`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x21..=0x7e).contains(&byte) && byte != b'"' && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` sequences; `None` when the result is not UTF-8 or a sequence is broken.
fn percent_decode(value: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(byte);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"specversion":"1.0","id":"e-1","source":"/signup","type":"user.registered",
        "time":"2026-12-03T10:00:00Z","subject":"u-1","tenant":"Zoë \"A\"","datacontenttype":"application/json",
        "data":{"user_id":"u-1","email":"ada@example.com"}}"#;

    fn header<'a>(binary: &'a BinaryEvent, name: &str) -> Option<&'a str> {
        binary.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_structured_event_becomes_headers_and_a_body() {
        let binary = to_binary(EVENT.as_bytes()).expect("converts");
        assert_eq!(header(&binary, "ce-id"), Some("e-1"));
        assert_eq!(header(&binary, "ce-type"), Some("user.registered"));
        assert_eq!(header(&binary, "ce-specversion"), Some("1.0"));
        assert_eq!(header(&binary, "ce-tenant"), Some("Zo%C3%AB%20%22A%22"), "extensions, percent-encoded");
        assert_eq!(header(&binary, "ce-data"), None);
        assert_eq!(binary.content_type, "application/json");
        assert_eq!(&binary.body[..], br#"{"user_id":"u-1","email":"ada@example.com"}"#);
    }

    #[test]
    fn binary_mode_round_trips() {
        let binary = to_binary(EVENT.as_bytes()).expect("converts");
        let headers = binary.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
        let back = from_binary(headers, Some(&binary.content_type), &binary.body).expect("converts back");
        let original: Map<String, Value> = serde_json::from_str(EVENT).expect("json");
        assert_eq!(back, original);
    }

    #[test]
    fn text_and_bytes_bodies() {
        let text =
            r#"{"specversion":"1.0","id":"e","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi"}"#;
        let binary = to_binary(text.as_bytes()).expect("converts");
        assert_eq!(&binary.body[..], b"hi");
        let bytes = r#"{"specversion":"1.0","id":"e","source":"/s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AAE="}"#;
        let binary = to_binary(bytes.as_bytes()).expect("converts");
        assert_eq!(&binary.body[..], &[0, 1]);
        let back = from_binary([("ce-id", &b"e"[..])], Some("application/octet-stream"), &[0, 1]).expect("back");
        assert_eq!(back["data_base64"], "AAE=");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(to_binary(b"[1]"), Err(BindingError::NotAnObject(_))));
        assert!(matches!(to_binary(br#"{"Bad-Name":"x"}"#), Err(BindingError::Attribute { .. })));
        assert!(from_binary([("ce-id", &b"%zz"[..])], None, b"").is_err());
        assert!(from_binary([("ce-id", &b"e"[..])], Some("application/json"), b"{not json").is_err());
    }
}
