//! The Confluent wire format: magic byte 0, the schema id (4 bytes, big-endian), for Protobuf the message
//! indexes (a zigzag varint count, then each index as a zigzag varint; the single byte 0 stands for `[0]`), then
//! the payload.

use super::error::DecodeError;

/// The first byte of every record in the wire format.
pub const MAGIC_BYTE: u8 = 0;

/// A record split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed<'a> {
    /// The registry's id of the writer's schema.
    pub schema_id: u32,
    /// Protobuf only: the path to the message type in the schema's file (top-level index, then nested ones).
    pub message_indexes: Vec<usize>,
    /// The encoded value.
    pub payload: &'a [u8],
}

/// Splits `bytes` into schema id and payload (Avro, JSON Schema).
pub fn parse(bytes: &[u8]) -> Result<Framed<'_>, DecodeError> {
    let (schema_id, payload) = header(bytes)?;
    Ok(Framed { schema_id, message_indexes: Vec::new(), payload })
}

/// Splits `bytes` into schema id, message indexes and payload (Protobuf).
pub fn parse_protobuf(bytes: &[u8]) -> Result<Framed<'_>, DecodeError> {
    let (schema_id, mut rest) = header(bytes)?;
    let count = zigzag(&mut rest, "the count of message indexes")?;
    let message_indexes = if count == 0 {
        vec![0]
    } else {
        // Each index takes at least a byte: a count past what is left is malformed, never an allocation.
        if count < 0 || count as usize > rest.len() {
            return Err(DecodeError::Malformed(format!(
                "{count} message indexes announced, {} bytes left",
                rest.len()
            )));
        }
        (0..count)
            .map(|_| {
                let index = zigzag(&mut rest, "a message index")?;
                usize::try_from(index).map_err(|_| DecodeError::Malformed(format!("message index {index} is negative")))
            })
            .collect::<Result<_, _>>()?
    };
    Ok(Framed { schema_id, message_indexes, payload: rest })
}

/// The schema id and what follows it.
fn header(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    match bytes {
        [MAGIC_BYTE, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [MAGIC_BYTE, ..] => Err(DecodeError::Malformed(format!(
            "{} bytes: shorter than the 5-byte header (magic byte, schema id)",
            bytes.len()
        ))),
        [first, ..] => Err(DecodeError::Malformed(format!(
            "the first byte is {first}, not the magic byte 0 of the Confluent wire format"
        ))),
        [] => Err(DecodeError::Malformed("an empty value".into())),
    }
}

/// Reads one zigzag varint (`what`, for the error) off the front of `rest`.
fn zigzag(rest: &mut &[u8], what: &str) -> Result<i64, DecodeError> {
    let raw =
        prost::encoding::decode_varint(rest).map_err(|_| DecodeError::Malformed(format!("{what} is not a varint")))?;
    Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_payload() {
        let framed = parse(&[0, 0, 0, 1, 2, 0xAA]).expect("framed");
        assert_eq!(framed, Framed { schema_id: 258, message_indexes: vec![], payload: &[0xAA] });
    }

    #[test]
    fn protobuf_message_indexes() {
        // The [0] shortcut, [1] and [1, 0], as confluent-kafka writes them (see the fixtures).
        assert_eq!(parse_protobuf(&[0, 0, 0, 0, 5, 0, 0x0A]).expect("[0]").message_indexes, [0]);
        assert_eq!(parse_protobuf(&[0, 0, 0, 0, 3, 2, 2, 0x0A]).expect("[1]").message_indexes, [1]);
        let nested = parse_protobuf(&[0, 0, 0, 0, 4, 4, 2, 0, 0x0A]).expect("[1, 0]");
        assert_eq!((nested.message_indexes, nested.payload), (vec![1, 0], &[0x0A][..]));
    }

    #[test]
    fn malformed_bytes_say_what_is_wrong() {
        let cases: [(&[u8], &str); 6] = [
            (b"", "empty"),
            (b"{\"a\":1}", "not the magic byte"),
            (&[0, 0, 1], "shorter than the 5-byte header"),
            (&[0, 0, 0, 0, 1, 0xFF], "not a varint"),
            (&[0, 0, 0, 0, 1, 0x7E], "announced"),
            (&[0, 0, 0, 0, 1, 2, 1], "negative"),
        ];
        for (bytes, expected) in cases {
            match parse_protobuf(bytes) {
                Err(DecodeError::Malformed(reason)) => assert!(reason.contains(expected), "{bytes:?}: {reason}"),
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
    }
}
