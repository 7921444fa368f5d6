//! Reading a request body within the size limit ([`RawBody`]; over it, the rest is discarded so that the client
//! reads the 413) and, for a JSON body, its content type and syntax ([`JsonBody`]). Each failure becomes its own
//! [`ApiError`] (415, 413, 400) instead of axum's plain-text rejections.

use axum::body::{BodyDataStream, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::header;
use bytes::BytesMut;
use futures::StreamExt as _;

use crate::error::ApiError;
use crate::request_timeout::RequestPhase;

/// A request body that is syntactically valid JSON (its meaning is checked by the route).
#[derive(Debug)]
pub struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("(not text)").to_owned())
            .unwrap_or_default();
        if !is_json(&content_type) {
            return Err(ApiError::UnsupportedMediaType(content_type));
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| ApiError::MalformedJson(e.to_string()))
    }
}

/// A request body of any content type, within the size limit (`producer.max_body_bytes`).
///
/// A body over the limit is a 413, but only once the client has sent it: many clients (Python's urllib, most
/// that do not ask for `100 Continue`) write the whole body before they read an answer, and a server that
/// answers and closes while they write resets the connection, so they see a broken pipe instead of the 413.
/// The rest of the body is therefore read and discarded, up to [`MAX_DISCARDED_BYTES`] in all and within the
/// request's time bound ([`crate::request_timeout`]), then the 413 closes the connection. A client that announced
/// a larger body, or waits for `100 Continue`, gets the 413 at once, before sending it.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

/// Most bytes of a body over the limit that are read (and discarded) before the 413 is sent.
pub const MAX_DISCARDED_BYTES: u64 = 64 * 1024 * 1024;

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map_or(usize::MAX, |l| l.0);
        let phase = req.extensions().get::<RequestPhase>().cloned().unwrap_or_default();
        let headers = req.headers();
        let announced = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let waits_for_continue =
            headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let mut body = req.into_body().into_data_stream();
        let too_large = ApiError::TooLarge { limit };
        if announced.is_some_and(|length| length > limit as u64) {
            if !waits_for_continue && announced.is_some_and(|length| length <= MAX_DISCARDED_BYTES) {
                phase.discarding();
                discard(&mut body, 0).await;
            }
            return Err(too_large);
        }
        let mut bytes = BytesMut::with_capacity(announced.map_or(0, |length| length as usize));
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ApiError::MalformedJson(format!("cannot read the request body: {e}")))?;
            if bytes.len() + chunk.len() > limit {
                phase.discarding();
                discard(&mut body, (bytes.len() + chunk.len()) as u64).await;
                return Err(too_large);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(RawBody(bytes.freeze()))
    }
}

/// Reads and drops the rest of `body` (`read` bytes of it are read already) until it ends, fails, or
/// [`MAX_DISCARDED_BYTES`] have been read.
async fn discard(body: &mut BodyDataStream, mut read: u64) {
    while read <= MAX_DISCARDED_BYTES {
        match body.next().await {
            Some(Ok(chunk)) => read += chunk.len() as u64,
            Some(Err(_)) | None => return,
        }
    }
}

/// The body size limit, put in request extensions so that a 413 can say what the limit is.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// `application/json`, or any `+json` type, with or without parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        for ok in ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge+json"]
        {
            assert!(is_json(ok), "{ok}");
        }
        for bad in ["", "text/plain", "application/x-www-form-urlencoded", "text/json"] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
