//! Record headers as bytes, both ways.
//!
//! Kafka header keys are byte strings, but rdkafka's safe header API turns every key into a `&str` and panics
//! on one that is not UTF-8 (`BorrowedHeaders::try_get` unwraps `CStr::to_str`), and can only write `&str`
//! keys. A single such record would kill the poll thread, and then the next member of the group that inherits
//! it. So courier reads and writes headers through librdkafka's C API, here and nowhere else: keys and values
//! are kept byte for byte, whatever they hold.
//!
//! The one thing lost is a key with a NUL byte inside: librdkafka hands keys out as NUL-terminated strings,
//! so such a key is read up to its first NUL.

#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_void};
use std::ptr;

use rdkafka::bindings as rdsys;
use rdkafka::message::{BorrowedMessage, OwnedHeaders};
use rdkafka::types::RDKafkaRespErr;

/// One header: its key and value, byte for byte (`None`: a null value).
pub type RawHeader = (Vec<u8>, Option<Vec<u8>>);

/// The headers of `message`, in order, byte for byte.
pub fn read(message: &BorrowedMessage<'_>) -> Vec<RawHeader> {
    let mut headers: *mut rdsys::rd_kafka_headers_t = ptr::null_mut();
    // SAFETY: `message.ptr()` is the live librdkafka message that `message` borrows; the headers it returns
    // belong to the message and are only read while `message` is borrowed.
    let err = unsafe { rdsys::rd_kafka_message_headers(message.ptr(), &mut headers) };
    if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
        return Vec::new();
    }
    // SAFETY: `headers` is non-null and valid (see above).
    let count = unsafe { rdsys::rd_kafka_header_cnt(headers) };
    let mut out = Vec::with_capacity(count);
    for index in 0..count {
        let (mut name, mut value, mut size): (*const c_char, *const c_void, usize) = (ptr::null(), ptr::null(), 0);
        // SAFETY: `index` is below the count; librdkafka writes pointers into its own storage, valid while the
        // message lives.
        let err = unsafe { rdsys::rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size) };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: librdkafka NUL-terminates every header name it stores.
        let key = unsafe { CStr::from_ptr(name) }.to_bytes().to_vec();
        let value = (!value.is_null()).then(|| {
            // SAFETY: `value` points at `size` bytes owned by the message.
            unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }.to_vec()
        });
        out.push((key, value));
    }
    out
}

/// Headers to produce: `headers` in order, keys and values byte for byte.
pub fn to_owned<'a, K, V>(headers: impl IntoIterator<Item = (&'a K, Option<&'a V>)>) -> OwnedHeaders
where
    K: AsRef<[u8]> + ?Sized + 'a,
    V: AsRef<[u8]> + ?Sized + 'a,
{
    let owned = OwnedHeaders::new();
    // `OwnedHeaders` owns a librdkafka header list; its borrowed view points at that same list.
    let list = ptr::from_ref(owned.as_borrowed()).cast::<rdsys::rd_kafka_headers_t>().cast_mut();
    for (key, value) in headers {
        let key = key.as_ref();
        let (value_ptr, value_len) = match value.map(AsRef::as_ref) {
            Some(v) => (v.as_ptr().cast::<c_void>(), isize::try_from(v.len()).unwrap_or(isize::MAX)),
            None => (ptr::null(), 0),
        };
        // SAFETY: `list` is the writable header list `owned` owns (the same pointer rdkafka's own `insert`
        // writes to); librdkafka copies the key and value, whose pointers and lengths are those of live slices.
        let err = unsafe {
            rdsys::rd_kafka_header_add(
                list,
                key.as_ptr().cast::<c_char>(),
                isize::try_from(key.len()).unwrap_or(isize::MAX),
                value_ptr,
                value_len,
            )
        };
        // A writable header list only refuses when it is read-only, which an `OwnedHeaders` never is.
        debug_assert_eq!(err, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    owned
}

/// The value of the first header named `key`, as text, when it is UTF-8.
pub fn text<'h>(headers: &'h [RawHeader], key: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.as_slice() == key.as_bytes())
        .and_then(|(_, v)| v.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;

    use super::*;

    #[test]
    fn non_utf8_keys_and_values_are_written_byte_for_byte() {
        let headers: Vec<RawHeader> = vec![
            (b"plain".to_vec(), Some(b"v".to_vec())),
            (vec![0xff, 0xfe, b'k'], Some(vec![0x00, 0xc3])),
            (b"null".to_vec(), None),
        ];
        let owned = to_owned(headers.iter().map(|(k, v)| (k, v.as_ref())));
        assert_eq!(owned.count(), 3);
        // rdkafka's safe reader still works for the UTF-8 keys around the bad one.
        assert_eq!(owned.try_get(0).map(|h| h.key), Some("plain"));
        assert_eq!(owned.try_get(2).map(|h| (h.key, h.value)), Some(("null", None)));
        assert_eq!(text(&headers, "plain"), Some("v"));
        assert_eq!(text(&headers, "null"), None);
    }
}
