//! A jq program compiled by jaq, run on an [`Input`] to exactly one value.

use std::sync::Arc;

use bytes::Bytes;
use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader, lex};
use jaq_core::native::{Fun, bome, run, v};
use jaq_core::{Compiler, Ctx, Vars};
use jaq_json::Val;

use super::input::Input;
use super::projection::Projection;
use super::{CompileError, MappingError};

/// The data jaq's filters run on: JSON values, nothing else.
type Data = JustLut<Val>;

/// A jq program, compiled once and run on each event: a request's body, a route's filter, or one `{{ … }}`
/// expression of a [`super::Template`]. The jq language of jaq (jq's syntax and standard library), without what
/// reaches outside the event: `env` is empty, `debug` and `stderr` print nothing, `halt` is an error.
#[derive(Clone)]
pub struct Program {
    /// The setting it comes from (`forward.routes.crm.body`), named in its failures.
    key: String,
    /// The compiled filter, shared by the clones of the program.
    filter: Arc<jaq_core::Filter<Data>>,
    /// What of the event the program can see.
    projection: Projection,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program").field("key", &self.key).finish_non_exhaustive()
    }
}

/// What one run of a program gave, when it gave one value.
pub(crate) type Output = Val;

impl Program {
    /// `code` compiled, or why it does not compile and where (`key: expected term at line 1, column 7`).
    pub fn compile(key: &str, code: &str) -> Result<Self, CompileError> {
        Self::compile_in(key, code, 0, code, false)
    }

    /// `code`, written in `text` from byte `offset` on (a template's expression), compiled; `dotted`: a dot
    /// was put before what `text` holds. Positions in errors are positions in `text`.
    pub(crate) fn compile_in(
        key: &str,
        text: &str,
        offset: usize,
        code: &str,
        dotted: bool,
    ) -> Result<Self, CompileError> {
        let error = |at: &str, message: String| {
            let within = (at.as_ptr() as usize).saturating_sub(code.as_ptr() as usize).min(code.len());
            CompileError::at(key, text, offset + within.saturating_sub(usize::from(dotted)), message)
        };
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let arena = Arena::default();
        let modules = Loader::new(defs).load(&arena, File { code, path: () }).map_err(|errors| {
            let (_, first) = errors.into_iter().next().expect("jaq reports at least one error");
            match first {
                jaq_core::load::Error::Lex(errors) => {
                    let (expected, at) = errors.into_iter().next().expect("a lexer error");
                    error(at, format!("expected {}, found {}", lexed(&expected), found(at)))
                }
                jaq_core::load::Error::Parse(errors) => {
                    let (expected, at) = errors.into_iter().next().expect("a parse error");
                    error(at, format!("expected {}, found {}", expected.as_str(), found(at)))
                }
                jaq_core::load::Error::Io(errors) => {
                    let (at, why) = errors.into_iter().next().expect("an error");
                    error(at, format!("modules cannot be imported: {why}"))
                }
            }
        })?;
        let filter = Compiler::default().with_funs(functions()).compile(modules).map_err(|errors| {
            let (_, undefined) = errors.into_iter().next().expect("jaq reports at least one error");
            let (name, what) = undefined.into_iter().next().expect("an undefined symbol");
            error(name, format!("undefined {} `{name}`", what.as_str()))
        })?;
        Ok(Self { key: key.to_owned(), filter: Arc::new(filter), projection: Projection::of_code(code) })
    }

    /// What of the event the program can see: the members an [`Input`] needs to hold for it.
    pub(crate) fn projection(&self) -> &Projection {
        &self.projection
    }

    /// The setting the program comes from.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The one value the program gives for `input`, or why it gives none: an error, no value, several.
    pub(crate) fn one(&self, input: &Input) -> Result<Output, MappingError> {
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = self.filter.id.run((ctx, input.value().clone()));
        let first = outputs.next().ok_or_else(|| self.failure("gives no value (one is needed)".to_owned()))?;
        let first = first.map_err(|e| self.exception(e))?;
        match outputs.next() {
            None => Ok(first),
            Some(Err(e)) => Err(self.exception(e)),
            Some(Ok(_)) => Err(self.failure("gives several values (one is needed)".to_owned())),
        }
    }

    /// The program's one value for `input`, written as JSON: a request body.
    pub fn json(&self, input: &Input) -> Result<Bytes, MappingError> {
        let value = self.one(input)?;
        not_json(&value).map_or(Ok(()), |why| Err(self.failure(format!("gives {why}, which is not JSON"))))?;
        let mut body = Vec::with_capacity(256);
        jaq_json::write::write(&mut body, &jaq_json::write::Pp::default(), 0, &value)
            .map_err(|e| self.failure(format!("cannot be written as JSON: {e}")))?;
        Ok(body.into())
    }

    /// Whether the program's one value for `input` is true (anything but `false` and `null`, as jq's `select`
    /// has it): a filter.
    pub fn test(&self, input: &Input) -> Result<bool, MappingError> {
        Ok(!matches!(self.one(input)?, Val::Null | Val::Bool(false)))
    }

    /// The program's one value for `input` as text: a string as it is, a number or a boolean as JSON writes it;
    /// `null` (a member the event does not have), an array or an object are failures.
    pub fn text(&self, input: &Input) -> Result<String, MappingError> {
        match self.one(input)? {
            Val::TStr(text) => String::from_utf8(text.to_vec())
                .map_err(|_| self.failure("gives a string that is not UTF-8".to_owned())),
            value @ (Val::Num(_) | Val::Bool(_)) => match not_json(&value) {
                None => Ok(value.to_string()),
                Some(why) => Err(self.failure(format!("gives {why}"))),
            },
            Val::Null => Err(self.failure("gives null (is a member missing from the event?)".to_owned())),
            other => Err(self.failure(format!("gives {}, not a string or a number", kind(&other)))),
        }
    }

    /// The failure of this program for an event: `key: the program <what>`.
    fn failure(&self, what: String) -> MappingError {
        MappingError { key: self.key.clone(), reason: format!("the program {what}") }
    }

    /// The failure of a run that raised `exception`: the jq error, its strings elided (they may be personal
    /// data), or `halt`.
    fn exception(&self, exception: jaq_core::Exn<'_, Val>) -> MappingError {
        match exception.get_err() {
            Ok(error) => self.failure(format!("fails: {}", elided(&error.to_string()))),
            Err(_) => self.failure("stops (halt)".to_owned()),
        }
    }
}

/// What a lexer error expected, in words.
fn lexed(expected: &lex::Expect<&str>) -> String {
    match expected {
        lex::Expect::Delim(open) => format!("a closing delimiter for `{open}`"),
        other => other.as_str().to_owned(),
    }
}

/// The token a parser error found, in words.
fn found(at: &str) -> String {
    match at.split_whitespace().next() {
        None => "the end".to_owned(),
        Some(token) => format!("`{}`", token.chars().take(20).collect::<String>()),
    }
}

/// `message` (a jq error) with the text of every string literal in it replaced by `…`: a type error quotes
/// the value it failed on, which may be personal data, and failures are logged.
fn elided(message: &str) -> String {
    if !message.starts_with("cannot ") {
        return message.chars().take(200).collect();
    }
    let mut out = String::with_capacity(message.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in message.chars() {
        match (in_string, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, true, _) => escaped = false,
            (true, false, '"') => {
                out.push_str("…\"");
                in_string = false;
            }
            (true, false, _) => {}
            (false, _, '"') => {
                out.push('"');
                in_string = true;
            }
            (false, _, c) => out.push(c),
        }
    }
    out
}

/// What kind of value `value` is, for failures.
fn kind(value: &Val) -> &'static str {
    match value {
        Val::Null => "null",
        Val::Bool(_) => "a boolean",
        Val::Num(_) => "a number",
        Val::TStr(_) => "a string",
        Val::BStr(_) => "a byte string",
        Val::Arr(_) => "an array",
        Val::Obj(_) => "an object",
    }
}

/// Why `value` cannot be written as JSON (a byte string, NaN or an infinity, a key that is not a string, text
/// that is not UTF-8), or `None`.
fn not_json(value: &Val) -> Option<&'static str> {
    match value {
        Val::Null | Val::Bool(_) => None,
        Val::Num(jaq_json::Num::Float(x)) if !x.is_finite() => Some("a number that is NaN or infinite"),
        Val::Num(_) => None,
        Val::TStr(text) => std::str::from_utf8(text).is_err().then_some("a string that is not UTF-8"),
        Val::BStr(_) => Some("a byte string"),
        Val::Arr(values) => values.iter().find_map(not_json),
        Val::Obj(members) => members.iter().find_map(|(key, value)| match key {
            Val::TStr(_) => not_json(key).or_else(|| not_json(value)),
            _ => Some("an object with a key that is not a string"),
        }),
    }
}

/// The filters a program may call: jaq's core, standard and JSON libraries, less what reaches outside the
/// event (the environment, standard error, halting the process), which is replaced by a harmless twin of the
/// same name and arity so that the libraries' definitions built on it still compile.
fn functions() -> impl Iterator<Item = Fun<Data>> {
    const REPLACED: [&str; 4] = ["env", "halt", "debug_empty", "stderr_empty"];
    let twins: [Fun<Data>; 4] = [
        run::<Data>(("env", v(0), |_| bome(Ok(Val::obj(Default::default()))))),
        run::<Data>(("halt", v(1), |_| bome(Err(jaq_core::Error::str("halt is not available in a mapping"))))),
        run::<Data>(("debug_empty", v(0), |_| Box::new(std::iter::empty()))),
        run::<Data>(("stderr_empty", v(0), |_| Box::new(std::iter::empty()))),
    ];
    jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .filter(|(name, ..)| !REPLACED.contains(name))
        .chain(twins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> Input {
        Input::of_text(json)
    }

    #[test]
    fn a_program_is_compiled_once_and_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Program>();
    }

    #[test]
    fn a_body_program_reshapes_the_event() {
        let program =
            Program::compile("body", r#"{email: .data.email, name: (.data.first + " " + .data.last)}"#).expect("ok");
        let event = input(r#"{"data": {"email": "ada@example.com", "first": "Ada", "last": "Lovelace"}}"#);
        let body = program.json(&event).expect("mapped");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body, serde_json::json!({"email": "ada@example.com", "name": "Ada Lovelace"}));
    }

    #[test]
    fn a_program_that_does_not_compile_is_refused_with_its_position() {
        let error = Program::compile("forward.routes.crm.body", "{email: .data.email").expect_err("unclosed");
        assert_eq!(error.key, "forward.routes.crm.body");
        assert!(error.to_string().contains("at line 1, column "), "{error}");
        let error = Program::compile("forward.routes.crm.body", ".data |\n  nosuchfunction").expect_err("undefined");
        assert_eq!(error.to_string(), "forward.routes.crm.body: undefined filter `nosuchfunction` at line 2, column 3");
        let error = Program::compile("k", ".a | ] ").expect_err("stray");
        assert_eq!(error.to_string(), "k: expected token, found `]` at line 1, column 6");
    }

    #[test]
    fn a_program_fails_for_an_event_with_a_reason_that_hides_its_strings() {
        let program = Program::compile("body", ".data.email + 1").expect("ok");
        let error = program.json(&input(r#"{"data": {"email": "ada@example.com"}}"#)).expect_err("string + number");
        assert_eq!(error.key, "body");
        assert!(error.reason.starts_with("the program fails: cannot"), "{error}");
        assert!(!error.reason.contains("ada@example.com"), "no personal data in a reason: {error}");
        let several = Program::compile("body", ".data[]").expect("ok");
        let error = several.json(&input(r#"{"data": [1, 2]}"#)).expect_err("two values");
        assert_eq!(error.reason, "the program gives several values (one is needed)");
        let none = Program::compile("body", "empty").expect("ok");
        assert_eq!(none.json(&input("{}")).expect_err("none").reason, "the program gives no value (one is needed)");
        let nan = Program::compile("body", "{x: nan}").expect("ok");
        assert!(nan.json(&input("{}")).expect_err("NaN").reason.contains("not JSON"));
    }

    #[test]
    fn the_environment_and_halting_are_out_of_reach() {
        let env = Program::compile("body", "{path: env.PATH}").expect("compiles");
        assert_eq!(&env.json(&input("{}")).expect("mapped")[..], br#"{"path":null}"#);
        let halt = Program::compile("body", "halt_error").expect("compiles");
        assert!(halt.json(&input(r#""bye""#)).is_err(), "the process goes on");
        let debug = Program::compile("body", "debug | .a").expect("compiles");
        assert_eq!(&debug.json(&input(r#"{"a": 1}"#)).expect("mapped")[..], b"1");
    }

    #[test]
    fn a_filter_is_true_unless_false_or_null() {
        let filter = Program::compile("filter", ".data.plan").expect("ok");
        let plans = [(r#""pro""#, true), ("false", false), ("null", false), ("0", true)];
        for (plan, expected) in plans {
            let event = input(&format!(r#"{{"data": {{"plan": {plan}}}}}"#));
            assert_eq!(filter.test(&event).expect("one value"), expected, "{plan}");
        }
    }

    #[test]
    fn text_is_a_string_a_number_or_a_boolean() {
        let program = Program::compile("path", ".v").expect("ok");
        for (v, text) in [(r#""u 1""#, "u 1"), ("12", "12"), ("1.50", "1.50"), ("true", "true")] {
            assert_eq!(program.text(&input(&format!(r#"{{"v": {v}}}"#))).expect("text"), text);
        }
        assert!(program.text(&input("{}")).expect_err("missing").reason.contains("null"));
        assert!(program.text(&input(r#"{"v": {"a": 1}}"#)).expect_err("object").reason.contains("an object"));
    }
}
