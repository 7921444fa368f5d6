//! Request mapping: the request a call makes, shaped from the event it delivers, in jq's language.
//!
//! * [`Input`]: the event as a mapping sees it (`.`): a CloudEvent as its structured JSON, any other record as
//!   an object of its `key`, `value`, `headers`, `topic`, `partition`, `offset` and `timestamp`.
//! * [`Program`]: a jq program compiled once by jaq and run on each event to one value: a body (JSON), a filter
//!   (true unless `false` or `null`), or a template's text.
//! * [`Template`]: text with `{{ … }}` jq expressions (`users/{{ .data.user_id }}`), rendered for each event,
//!   each value percent-encoded in a URL.
//! * [`RequestMapping`]: a [`RequestSpec`] (path, query, headers, body, filter) compiled: whether an event is
//!   sent, and its path, query, headers and body.
//!
//! Everything is compiled at start-up: a template or program that does not compile is a [`CompileError`]
//! naming its setting and the position (`forward.routes.crm.body: expected term, found `]` at line 1,
//! column 7`). A mapping that fails for one event (a missing member, a value of the wrong type, a jq error, a
//! program giving no value or several) is a [`MappingError`]: a permanent failure of kind
//! [`FAILURE_KIND`] (`mapping`), dead-lettered with its reason and never tried again, since the same event
//! fails the same way every time. Its reason elides the strings a jq error quotes (they may be personal data).
//!
//! A coded consumer uses the same parts:
//!
//! ```
//! use courier::mapping::{Input, RequestMapping, RequestSpec};
//!
//! let spec = RequestSpec { path: "users/{{ .data.user_id }}".into(), body: "{email: .data.email}".into(),
//!     ..RequestSpec::default() };
//! let mapping = RequestMapping::compile("greeter", &spec).expect("compiles");
//! let input = Input::from_json(br#"{"data": {"user_id": "u/1", "email": "ada@example.com"}}"#).expect("JSON");
//! assert_eq!(mapping.target(Some(&input)).expect("mapped"), "users/u%2F1");
//! assert_eq!(&mapping.body(&input).expect("a body").expect("mapped")[..], br#"{"email":"ada@example.com"}"#);
//! ```

mod input;
mod program;
mod projection;
mod request;
mod template;

pub use input::Input;
pub use program::Program;
pub use projection::Projection;
pub use request::{RequestMapping, RequestSpec};
pub use template::{Template, has_expressions};

use crate::delivery::Failure;

/// The kind of the failure of an event whose mapping fails (`courier.dlq.error.kind`).
pub const FAILURE_KIND: &str = "mapping";

/// A template or program that does not compile: the setting, what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct CompileError {
    /// The setting (`forward.routes.crm.body`).
    pub key: String,
    /// What is wrong, with its position when it has one (`expected term, found `]` at line 1, column 7`).
    pub reason: String,
}

impl CompileError {
    /// `key`'s error `reason`, without a position.
    pub fn new(key: &str, reason: &str) -> Self {
        Self { key: key.to_owned(), reason: reason.to_owned() }
    }

    /// `key`'s error `message` at byte `at` of its value `text`.
    pub(crate) fn at(key: &str, text: &str, at: usize, message: String) -> Self {
        let before = &text[..floor_char_boundary(text, at)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        Self { key: key.to_owned(), reason: format!("{message} at line {line}, column {column}") }
    }
}

/// The largest char boundary of `text` at or before `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
}

/// A mapping that fails for one event: the setting whose template or program failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct MappingError {
    /// The setting (`forward.routes.crm.path`).
    pub key: String,
    /// Why, in words.
    pub reason: String,
}

impl MappingError {
    /// The permanent failure it is: kind [`FAILURE_KIND`], the setting and the reason as its message.
    pub fn failure(&self) -> Failure {
        Failure::new(FAILURE_KIND, self.to_string())
    }
}
