//! The CloudEvents Kafka protocol binding (version 1.0), binary mode: the attributes travel as `ce_<name>`
//! record headers (UTF-8 text, nothing percent-encoded), `datacontenttype` as the `content-type` header, and
//! `data` is the record's value. [`to_structured`] turns such a record into the structured JSON event the rest
//! of courier reads.

use serde_json::{Map, Value};

use super::http_binding::{BindingError, insert_data};
use crate::kafka::headers::RawHeader;

/// The prefix of an attribute's header.
pub const HEADER_PREFIX: &str = "ce_";
/// The header of the `specversion` attribute: a record that has it is a CloudEvent in binary mode.
pub const SPEC_VERSION_HEADER: &str = "ce_specversion";
/// The header holding `datacontenttype`.
pub const CONTENT_TYPE_HEADER: &str = "content-type";
/// The content type of bytes of no known type.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Whether a record with `headers` is a CloudEvent in binary mode (it has a `ce_specversion` header).
pub fn is_binary(headers: &[RawHeader]) -> bool {
    headers.iter().any(|(key, _)| key.eq_ignore_ascii_case(SPEC_VERSION_HEADER.as_bytes()))
}

/// The structured JSON event of a binary-mode record: each `ce_<name>` header as attribute `<name>` (a
/// string), `datacontenttype` from `content-type` (when the record has none: `application/json` for a JSON
/// value, else `application/octet-stream`), `data` the value's JSON for a JSON content type, its text for a `text/…` one, `data_base64`
/// otherwise. Headers of other names are left out.
pub fn to_structured(headers: &[RawHeader], value: &[u8]) -> Result<Map<String, Value>, BindingError> {
    let mut event = Map::new();
    let mut content_type = None;
    for (key, header) in headers {
        let key = String::from_utf8_lossy(key).to_ascii_lowercase();
        let text = || {
            let bytes = header.as_deref().unwrap_or_default();
            std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| BindingError::Attribute {
                name: key.clone(),
                reason: "its header is not UTF-8".to_owned(),
            })
        };
        if key == CONTENT_TYPE_HEADER {
            content_type = Some(text()?);
        } else if let Some(attribute) = key.strip_prefix(HEADER_PREFIX) {
            event.insert(attribute.to_owned(), Value::String(text()?));
        }
    }
    let content_type = content_type.unwrap_or_else(|| {
        let json = serde_json::from_slice::<serde::de::IgnoredAny>(value).is_ok();
        if json { super::DATA_CONTENT_TYPE } else { OCTET_STREAM }.to_owned()
    });
    insert_data(&mut event, Some(&content_type), value)?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<RawHeader> {
        pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))).collect()
    }

    #[test]
    fn a_binary_record_becomes_a_structured_event() {
        let record = headers(&[
            ("ce_specversion", "1.0"),
            ("ce_id", "e-1"),
            ("ce_source", "/signup"),
            ("ce_type", "user.registered"),
            ("ce_tenant", "Zoë 100%"),
            ("content-type", "application/json"),
            ("traceparent", "00-x"),
        ]);
        assert!(is_binary(&record));
        let event = to_structured(&record, br#"{"user_id":"u-1"}"#).expect("structured");
        let expected = serde_json::json!({
            "specversion": "1.0", "id": "e-1", "source": "/signup", "type": "user.registered",
            "tenant": "Zoë 100%", "datacontenttype": "application/json", "data": {"user_id": "u-1"},
        });
        assert_eq!(Value::Object(event), expected, "no percent-decoding, other headers left out");
    }

    #[test]
    fn the_value_is_data_by_its_content_type() {
        let base = [("ce_specversion", "1.0"), ("ce_id", "e"), ("ce_source", "/s"), ("ce_type", "t")];
        let event = to_structured(&headers(&base), br#"[1,2]"#).expect("JSON without content type");
        assert_eq!(
            (event["datacontenttype"].as_str(), &event["data"]),
            (Some("application/json"), &Value::from(vec![1, 2]))
        );
        let mut text = base.to_vec();
        text.push(("content-type", "text/plain"));
        assert_eq!(to_structured(&headers(&text), b"hi").expect("text")["data"], "hi");
        let event = to_structured(&headers(&base), &[0, 1]).expect("bytes");
        assert_eq!(
            (&event["datacontenttype"], &event["data_base64"]),
            (&Value::from(OCTET_STREAM), &Value::from("AAE="))
        );
        let mut json = base.to_vec();
        json.push(("content-type", "application/json"));
        assert!(to_structured(&headers(&json), b"{not json").is_err(), "a JSON content type with another value");
        assert!(!is_binary(&headers(&[("ce_id", "e")])), "no ce_specversion: not a binary-mode record");
    }
}
