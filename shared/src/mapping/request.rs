//! A request shaped from the event: which events it is made for, its path and query, its headers, its body.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::input::Input;
use super::program::Program;
use super::projection::Projection;
use super::template::Template;
use super::{CompileError, MappingError};
use crate::delivery::Incoming;

/// What a request mapping is written as: the templates and programs of `[forward.routes.<name>]`'s `path`,
/// `query`, `headers`, `body` and `filter`, before they are compiled. Empty text is "not mapped".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSpec {
    /// The path under the API's base URL, a [`Template`]; it may end with a query (`users/{{ .id }}?v=2`).
    pub path: String,
    /// Query parameters, name → [`Template`] of the value, after the path's own.
    pub query: BTreeMap<String, String>,
    /// Request headers, name → [`Template`] of the value.
    pub headers: BTreeMap<String, String>,
    /// A jq program giving the body (JSON, `application/json`); empty: the body is not mapped.
    pub body: String,
    /// A jq program deciding which events are sent: those for which it is neither `false` nor `null`; empty:
    /// every event.
    pub filter: String,
}

/// Headers a mapping cannot set: the ones the call sets itself (content type, idempotency key, trace
/// context, credentials from `[apis.<name>]`) and those of HTTP's framing.
const RESERVED_HEADERS: [&str; 10] = [
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "host",
    "idempotency-key",
    "traceparent",
    "tracestate",
    "authorization",
    "proxy-authorization",
];

/// A [`RequestSpec`] compiled: run for each event, it says whether the event is sent and shapes its request.
#[derive(Debug, Clone)]
pub struct RequestMapping {
    /// The settings' prefix (`forward.routes.crm`), named in failures of the event as a whole.
    prefix: String,
    /// Which events are sent; `None`: every one.
    filter: Option<Program>,
    /// The path, query included.
    path: Template,
    /// Query parameters after the path's own: the name, the name percent-encoded, the value's template.
    query: Vec<(String, String, Template)>,
    /// The headers of every request.
    static_headers: HeaderMap,
    /// The headers rendered for each event.
    templated_headers: Vec<(HeaderName, Template)>,
    /// The body; `None`: not mapped.
    body: Option<Program>,
    /// What of the event its programs and templates can see: what an [`Input`] is read as.
    projection: Projection,
}

impl RequestMapping {
    /// `spec` compiled, each key named `<prefix>.<key>` in errors (`forward.routes.crm.headers.x-user`).
    pub fn compile(prefix: &str, spec: &RequestSpec) -> Result<Self, CompileError> {
        let key = |name: &str| format!("{prefix}.{name}");
        let program =
            |name: &str, code: &str| (!code.trim().is_empty()).then(|| Program::compile(&key(name), code)).transpose();
        let mut query = Vec::with_capacity(spec.query.len());
        for (name, value) in &spec.query {
            let key = key(&format!("query.{name}"));
            if name.is_empty() {
                return Err(CompileError::new(&key, "a query parameter needs a name"));
            }
            query.push((name.clone(), crate::downstream::path_segment(name), Template::compile(&key, value)?));
        }
        let (mut static_headers, mut templated_headers) = (HeaderMap::new(), Vec::new());
        for (name, value) in &spec.headers {
            let key = key(&format!("headers.{name}"));
            let header = HeaderName::try_from(name.as_str())
                .map_err(|_| CompileError::new(&key, "is not a valid header name"))?;
            if RESERVED_HEADERS.contains(&header.as_str()) || header.as_str().starts_with("ce-") {
                let why = "is set by the call itself (content type, idempotency key, trace context, credentials \
                           of [apis.<name>], ce-* attributes): a mapping cannot set it";
                return Err(CompileError::new(&key, why));
            }
            let template = Template::compile(&key, value)?;
            match template.as_static() {
                Some(text) => {
                    let value = HeaderValue::from_str(text)
                        .map_err(|_| CompileError::new(&key, "is not a valid header value (visible ASCII only)"))?;
                    static_headers.append(header, value);
                }
                None => templated_headers.push((header, template)),
            }
        }
        let (filter, body) = (program("filter", &spec.filter)?, program("body", &spec.body)?);
        let path = Template::compile(&key("path"), &spec.path)?;
        let mut projection = Projection::default();
        for program in filter.iter().chain(&body) {
            projection.add(program.projection());
        }
        let templates = query.iter().map(|(.., value)| value).chain(templated_headers.iter().map(|(_, t)| t));
        for template in std::iter::once(&path).chain(templates) {
            template.add_projection(&mut projection);
        }
        Ok(Self { prefix: prefix.to_owned(), filter, path, query, static_headers, templated_headers, body, projection })
    }

    /// Whether anything of the request depends on the event (a filter, a template with an expression, a body
    /// program): then each event is read as an [`Input`].
    pub fn needs_input(&self) -> bool {
        self.filter.is_some() || self.body.is_some() || !self.event_dependent_keys().is_empty()
    }

    /// The keys of the path, query and headers whose value depends on the event (`path`, `query.page`,
    /// `headers.x-user`): a call shared by several events (a batch) cannot have them.
    pub fn event_dependent_keys(&self) -> Vec<String> {
        let path = self.path.as_static().is_none().then(|| "path".to_owned());
        let query = self.query.iter().filter(|(_, _, value)| value.as_static().is_none());
        let query = query.map(|(name, ..)| format!("query.{name}"));
        let headers = self.templated_headers.iter().map(|(name, _)| format!("headers.{name}"));
        path.into_iter().chain(query).chain(headers).collect()
    }

    /// Whether the body is mapped (by a program).
    pub fn maps_body(&self) -> bool {
        self.body.is_some()
    }

    /// The event `incoming` holds, as the mapping's programs see it: only the members they can see are read.
    pub fn input(&self, incoming: &Incoming) -> Result<Input, MappingError> {
        Input::projected(incoming, &self.projection)
            .map_err(|e| MappingError { key: self.prefix.clone(), reason: e.reason })
    }

    /// What of the event the mapping's programs and templates can see.
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    /// Whether the event is sent: what the filter says of it; `true` without a filter.
    pub fn sends(&self, input: &Input) -> Result<bool, MappingError> {
        self.filter.as_ref().map_or(Ok(true), |filter| filter.test(input))
    }

    /// The path and query under the API's base URL, each value percent-encoded; `input` is needed only when
    /// they depend on the event ([`RequestMapping::needs_input`]).
    pub fn target(&self, input: Option<&Input>) -> Result<Cow<'_, str>, MappingError> {
        let path = match (self.path.as_static(), input) {
            (Some(path), _) if self.query.is_empty() => return Ok(Cow::Borrowed(path)),
            (Some(path), _) => path.to_owned(),
            (None, Some(input)) => self.path.render_url(input)?,
            (None, None) => return Err(self.without_input()),
        };
        let mut target = path;
        for (_, name, value) in &self.query {
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(name);
            target.push('=');
            match (value.as_static(), input) {
                (Some(text), _) => target.push_str(&crate::downstream::path_segment(text)),
                (None, Some(input)) => target.push_str(&value.render_url(input)?),
                (None, None) => return Err(self.without_input()),
            }
        }
        Ok(Cow::Owned(target))
    }

    /// The mapped headers, appended to `headers`: the static ones, and the templated ones rendered for `input`
    /// (each checked as a header value).
    pub fn add_headers(&self, input: Option<&Input>, headers: &mut HeaderMap) -> Result<(), MappingError> {
        for (name, value) in &self.static_headers {
            headers.append(name, value.clone());
        }
        for (name, template) in &self.templated_headers {
            let input = input.ok_or_else(|| self.without_input())?;
            let text = template.render_text(input)?;
            let value = HeaderValue::from_str(&text).map_err(|_| MappingError {
                key: format!("{}.headers.{name}", self.prefix),
                reason: "the value is not a valid header value (visible ASCII only)".to_owned(),
            })?;
            headers.append(name, value);
        }
        Ok(())
    }

    /// The mapped body for `input` (JSON), or `None` when the body is not mapped.
    pub fn body(&self, input: &Input) -> Option<Result<Bytes, MappingError>> {
        self.body.as_ref().map(|body| body.json(input))
    }

    /// The failure of a mapping that depends on the event, run without it (a caller's mistake).
    fn without_input(&self) -> MappingError {
        MappingError { key: self.prefix.clone(), reason: "the mapping depends on the event: read it first".to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(path: &str) -> RequestSpec {
        RequestSpec { path: path.to_owned(), ..RequestSpec::default() }
    }

    fn input(json: serde_json::Value) -> Input {
        Input::from_json(&serde_json::to_vec(&json).expect("JSON")).expect("an input")
    }

    #[test]
    fn a_static_mapping_needs_no_event() {
        let mut spec = spec("contacts");
        spec.headers.insert("x-source".into(), "courier".into());
        let mapping = RequestMapping::compile("forward.routes.crm", &spec).expect("ok");
        assert!(!mapping.needs_input());
        assert_eq!(mapping.target(None).expect("static"), "contacts");
        let mut headers = HeaderMap::new();
        mapping.add_headers(None, &mut headers).expect("static");
        assert_eq!(headers["x-source"], "courier");
    }

    #[test]
    fn path_query_and_headers_are_rendered_for_the_event() {
        let mut spec = spec("users/{{ .data.user_id }}?v=2");
        spec.query.insert("tenant id".into(), "{{ .tenant }}".into());
        spec.query.insert("fixed".into(), "a b".into());
        spec.headers.insert("x-user".into(), "{{ data.user_id }}".into());
        spec.body = "{email: .data.email}".into();
        let mapping = RequestMapping::compile("forward.routes.crm", &spec).expect("ok");
        assert!(mapping.needs_input() && mapping.maps_body());
        assert_eq!(mapping.event_dependent_keys(), ["path", "query.tenant id", "headers.x-user"]);
        let event = input(json!({"tenant": "eu/1", "data": {"user_id": "u 1", "email": "ada@example.com"}}));
        assert_eq!(mapping.target(Some(&event)).expect("mapped"), "users/u%201?v=2&fixed=a%20b&tenant%20id=eu%2F1");
        let mut headers = HeaderMap::new();
        mapping.add_headers(Some(&event), &mut headers).expect("mapped");
        assert_eq!(headers["x-user"], "u 1");
        let body = mapping.body(&event).expect("mapped").expect("JSON");
        assert_eq!(&body[..], br#"{"email":"ada@example.com"}"#);
    }

    #[test]
    fn bad_headers_are_refused_at_compilation_and_for_an_event() {
        for (name, value) in [("idempotency-key", "x"), ("Content-Type", "x"), ("ce-id", "x"), ("bad name", "x")] {
            let mut spec = spec("");
            spec.headers.insert(name.into(), value.into());
            let error = RequestMapping::compile("r", &spec).expect_err(name);
            assert_eq!(error.key, format!("r.headers.{name}"));
        }
        let mut spec = spec("");
        spec.headers.insert("x-name".into(), "{{ .name }}".into());
        let mapping = RequestMapping::compile("r", &spec).expect("ok");
        let error = mapping.add_headers(Some(&input(json!({"name": "a\nb"}))), &mut HeaderMap::new());
        assert_eq!(error.expect_err("a line break").key, "r.headers.x-name");
    }

    #[test]
    fn an_event_is_read_as_what_its_mapping_sees_and_maps_as_the_whole_event_would() {
        let mut spec = spec("users/{{ .data.user_id }}");
        spec.query.insert("t".into(), "{{ .tenant }}".into());
        spec.headers.insert("x-id".into(), "{{ id }}".into());
        spec.filter = ".data.plan != \"free\"".into();
        spec.body = "{email: .data.email, tags: .data.tags}".into();
        let mapping = RequestMapping::compile("r", &spec).expect("ok");
        let seen = |path: &[&str]| {
            path.iter()
                .rev()
                .fold(Projection::All, |inner, name| Projection::Members([((*name).to_owned(), inner)].into()))
        };
        let mut expected = Projection::default();
        for path in
            [&["data", "user_id"][..], &["tenant"], &["id"], &["data", "plan"], &["data", "email"], &["data", "tags"]]
        {
            expected.add(&seen(path));
        }
        assert_eq!(mapping.projection(), &expected);
        let events = [
            json!({"specversion": "1.0", "source": "/s", "type": "t", "time": "2026-12-07T00:00:00Z", "datacontenttype": "application/json", "id": "e-1", "tenant": "eu", "data": {"user_id": "u/1", "email": "a@example.com",
                "plan": "pro", "tags": [1.50, {"x": null}], "address": {"city": "Paris"}}}),
            json!({"specversion": "1.0", "source": "/s", "type": "t", "time": "2026-12-07T00:00:00Z", "datacontenttype": "application/json", "id": "e-2", "tenant": "eu", "data": {"user_id": 7, "plan": "free"}}),
            json!({"specversion": "1.0", "source": "/s", "type": "t", "time": "2026-12-07T00:00:00Z", "datacontenttype": "application/json", "id": "e-3", "tenant": "eu", "data": {"plan": "pro"}}),
            json!({"specversion": "1.0", "source": "/s", "type": "t", "time": "2026-12-07T00:00:00Z", "datacontenttype": "application/json", "id": "e-4", "tenant": "eu", "data": "not an object"}),
            json!({"specversion": "1.0", "source": "/s", "type": "t", "time": "2026-12-07T00:00:00Z", "datacontenttype": "application/json", "id": "e-5", "tenant": ["eu"], "data": {"user_id": "u", "plan": null}}),
        ];
        for event in events {
            let whole = input(event.clone());
            let incoming = Incoming::new("users", &event).expect("a CloudEvent");
            let projected = mapping.input(&incoming).expect("JSON");
            let outcome = |input: &Input| {
                let sends = mapping.sends(input);
                let target = mapping.target(Some(input)).map(|t| t.into_owned());
                let mut headers = HeaderMap::new();
                let headers = mapping.add_headers(Some(input), &mut headers).map(|()| headers);
                (sends, target, headers, mapping.body(input))
            };
            assert_eq!(format!("{:?}", outcome(&projected)), format!("{:?}", outcome(&whole)), "{event}");
        }
    }

    #[test]
    fn a_filter_says_which_events_are_sent() {
        let mapping = RequestMapping::compile("r", &RequestSpec { filter: ".data.plan == \"pro\"".into(), ..spec("") })
            .expect("ok");
        assert!(mapping.sends(&input(json!({"data": {"plan": "pro"}}))).expect("ok"));
        assert!(!mapping.sends(&input(json!({"data": {}}))).expect("ok"));
    }
}
