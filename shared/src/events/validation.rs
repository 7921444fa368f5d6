//! What an event's members must be for courier to deliver it: attribute values that every consumer can carry in
//! an HTTP header and a record, within bounded lengths, and `data_base64` that decodes.
//!
//! * `id` and `source`: visible ASCII only (`!` to `~`, no space). A consumer sends `Idempotency-Key:
//!   <prefix>:<id>` and may derive keys from `source`; an HTTP header value carries visible ASCII safely (RFC 9110
//!   field-vchar; bytes above ASCII are obsolete "obs-text" that servers refuse or mangle, control characters
//!   cannot be sent at all, and spaces at either end are trimmed by parsers). `source` is a URI reference,
//!   which is visible ASCII by definition (RFC 3986).
//! * Every other string attribute (`type`, `subject`, extensions, …): printable Unicode, as the CloudEvents
//!   String type requires: no control characters (U+0000–U+001F, U+007F–U+009F) and no noncharacters.
//! * Lengths in bytes of UTF-8: `id` at most [`MAX_ID_BYTES`] (so that `<prefix>:<id>` stays within the 255
//!   characters idempotency keys commonly allow), `source`, `type` and `subject` at most [`MAX_NAME_BYTES`], any
//!   other attribute at most [`MAX_ATTRIBUTE_BYTES`].
//! * `data_base64`: base64 with the standard alphabet and padding (RFC 4648 §4), as the binary-mode conversion
//!   decodes it.

use base64::Engine;

/// Longest `id`, in bytes.
pub const MAX_ID_BYTES: usize = 200;
/// Longest `source`, `type` and `subject`, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest value of any other attribute (extensions, `datacontenttype`, `dataschema`, …), in bytes.
pub const MAX_ATTRIBUTE_BYTES: usize = 1024;

/// Checks the string value of attribute `name`; what is wrong with it otherwise. Emptiness is not checked here
/// (whether an attribute is required is the caller's rule).
pub fn attribute(name: &str, value: &str) -> Result<(), String> {
    let (max, header_safe) = match name {
        "id" => (MAX_ID_BYTES, true),
        "source" => (MAX_NAME_BYTES, true),
        "type" | "subject" => (MAX_NAME_BYTES, false),
        _ => (MAX_ATTRIBUTE_BYTES, false),
    };
    if value.len() > max {
        return Err(format!("is {} bytes long; at most {max} are accepted", value.len()));
    }
    if header_safe {
        if let Some(position) = value.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(format!(
                "must be visible ASCII characters only (it travels in HTTP headers): the character at byte \
                 {position} is not"
            ));
        }
    } else if let Some((position, c)) = value.char_indices().find(|&(_, c)| !printable(c)) {
        return Err(format!("must be printable: the character U+{:04X} at byte {position} is not", u32::from(c)));
    }
    Ok(())
}

/// Checks that `value` is base64 (standard alphabet, padded); what is wrong with it otherwise.
pub fn data_base64(value: &str) -> Result<(), String> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_bytes())
        .map(drop)
        .map_err(|e| format!("must be base64 (RFC 4648, standard alphabet with padding): {e}"))
}

/// Whether the CloudEvents String type allows `c`: not a control character, not a noncharacter.
fn printable(c: char) -> bool {
    let code = u32::from(c);
    let noncharacter = (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE;
    !c.is_control() && !noncharacter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_sources_are_visible_ascii() {
        for ok in ["e-1", "01J8Z3", "a:b/c?d=e#f", "~!"] {
            assert_eq!(attribute("id", ok), Ok(()), "{ok}");
            assert_eq!(attribute("source", ok), Ok(()), "{ok}");
        }
        for bad in ["a\u{1}b", "a b", " a", "a\t", "a\u{7f}", "zoë", "a\nb", "\u{85}"] {
            let why = attribute("id", bad).expect_err(bad);
            assert!(why.contains("visible ASCII"), "{bad:?}: {why}");
            assert!(attribute("source", bad).is_err(), "{bad:?}");
        }
        assert!(attribute("id", "a\u{1}b").expect_err("control").contains("byte 1"));
    }

    #[test]
    fn other_attributes_are_printable_unicode() {
        for name in ["type", "subject", "tenant", "datacontenttype"] {
            for ok in ["user.registered", "Zoë \"A\" 100%", "file name.jpg", "日本"] {
                assert_eq!(attribute(name, ok), Ok(()), "{name}={ok}");
            }
            for bad in ["a\u{1}b", "a\nb", "\u{7f}", "x\u{9f}", "\u{fdd0}", "\u{fffe}", "\u{1ffff}", "\u{10ffff}"] {
                let why = attribute(name, bad).expect_err(bad);
                assert!(why.contains("printable"), "{name}={bad:?}: {why}");
            }
        }
        assert!(attribute("subject", "a\u{1}").expect_err("control").contains("U+0001"));
    }

    #[test]
    fn lengths_are_bounded() {
        for (name, max) in
            [("id", MAX_ID_BYTES), ("source", MAX_NAME_BYTES), ("type", MAX_NAME_BYTES), ("subject", MAX_NAME_BYTES)]
        {
            assert_eq!(attribute(name, &"a".repeat(max)), Ok(()), "{name} at its bound");
            let why = attribute(name, &"a".repeat(max + 1)).expect_err("over the bound");
            assert!(why.contains(&format!("at most {max}")), "{name}: {why}");
        }
        assert_eq!(attribute("tenant", &"a".repeat(MAX_ATTRIBUTE_BYTES)), Ok(()));
        assert!(attribute("tenant", &"a".repeat(MAX_ATTRIBUTE_BYTES + 1)).is_err());
        assert!(attribute("id", &"a".repeat(20_000)).is_err(), "a 20 KB id");
        // Bytes, not characters: 129 two-byte characters are 258 bytes.
        assert!(attribute("subject", &"ë".repeat(129)).is_err());
    }

    #[test]
    fn data_base64_must_decode() {
        for ok in ["", "AAE=", "AJ+S", "aGVsbG8gd29ybGQ="] {
            assert_eq!(data_base64(ok), Ok(()), "{ok}");
        }
        for bad in ["not base64!", "AAE", "AA=E", "AJ-S", "AA E=", "aGVs\nbG8="] {
            let why = data_base64(bad).expect_err(bad);
            assert!(why.contains("must be base64"), "{bad:?}: {why}");
        }
    }
}
