//! Text with `{{ … }}` expressions: a request's path, query values and headers, rendered for each event.

use super::input::Input;
use super::program::Program;
use super::projection::Projection;
use super::{CompileError, MappingError};

/// Text with `{{ expression }}` parts, each a jq expression over the event ([`Input`]) giving one string,
/// number or boolean: `users/{{ .data.user_id }}`. The leading dot of a path may be left out
/// (`{{ data.user_id }}` is `{{ .data.user_id }}`): an expression that starts with a name (other than the
/// keywords `if`, `try`, `reduce`, `foreach`, `def`, `label`) is read as a path from the event, so
/// `{{ type }}` is the event's `type`, not jq's `type` function. Text without `{{` is static.
#[derive(Debug, Clone)]
pub struct Template {
    /// The text and the expressions, in order.
    parts: Vec<Part>,
}

/// One part of a [`Template`].
#[derive(Debug, Clone)]
enum Part {
    /// Text as written.
    Text(String),
    /// An expression, rendered for each event.
    Expression(Program),
}

/// Keywords that start a jq expression which is not a path.
const KEYWORDS: [&str; 6] = ["if", "try", "reduce", "foreach", "def", "label"];

impl Template {
    /// `text` compiled, or why it does not compile and where (`key: expected term at line 1, column 12`).
    pub fn compile(key: &str, text: &str) -> Result<Self, CompileError> {
        let mut parts = Vec::new();
        let mut rest = 0;
        while let Some(open) = text[rest..].find("{{").map(|at| rest + at) {
            if open > rest {
                parts.push(Part::Text(text[rest..open].to_owned()));
            }
            let start = open + 2;
            let end = closing(&text[start..])
                .map(|at| start + at)
                .ok_or_else(|| CompileError::at(key, text, open, "`{{` is not closed by `}}`".to_owned()))?;
            let expression = text[start..end].trim_start();
            let at = end - text[start..end].trim_start().len();
            let expression = expression.trim_end();
            if expression.is_empty() {
                return Err(CompileError::at(key, text, open, "`{{ }}` holds no expression".to_owned()));
            }
            let program = if starts_with_a_name(expression) {
                Program::compile_in(key, text, at, &format!(".{expression}"), true)?
            } else {
                Program::compile_in(key, text, at, expression, false)?
            };
            parts.push(Part::Expression(program));
            rest = end + 2;
        }
        if rest < text.len() || parts.is_empty() {
            parts.push(Part::Text(text[rest..].to_owned()));
        }
        Ok(Self { parts })
    }

    /// The text, when the template has no expression.
    pub fn as_static(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Text(text)] => Some(text),
            _ => None,
        }
    }

    /// Adds what of the event the template's expressions can see to `projection`.
    pub(crate) fn add_projection(&self, projection: &mut Projection) {
        for part in &self.parts {
            if let Part::Expression(program) = part {
                projection.add(program.projection());
            }
        }
    }

    /// The template rendered for `input`, each expression's value percent-encoded (every byte but ASCII letters,
    /// digits, `-`, `.`, `_` and `~`), so that it is one path segment or one query value whatever it holds.
    pub fn render_url(&self, input: &Input) -> Result<String, MappingError> {
        self.render(input, |value, out| out.push_str(&crate::downstream::path_segment(value)))
    }

    /// The template rendered for `input`, each expression's value as it is.
    pub fn render_text(&self, input: &Input) -> Result<String, MappingError> {
        self.render(input, |value, out| out.push_str(value))
    }

    /// The template rendered for `input`, each expression's value written by `write`.
    fn render(&self, input: &Input, write: impl Fn(&str, &mut String)) -> Result<String, MappingError> {
        let mut out = String::with_capacity(64);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Expression(program) => write(&program.text(input)?, &mut out),
            }
        }
        Ok(out)
    }
}

/// Whether `text` holds a `{{ … }}` expression.
pub fn has_expressions(text: &str) -> bool {
    text.contains("{{")
}

/// Whether `expression` starts with a name that is not a keyword: a path with its leading dot left out.
fn starts_with_a_name(expression: &str) -> bool {
    let name_end = expression.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(expression.len());
    let name = &expression[..name_end];
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && !KEYWORDS.contains(&name)
}

/// Where the `}}` that closes an expression starts in `text` (what follows its `{{`): the first `}}` outside
/// the expression's string literals and its own braces.
fn closing(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut in_string, mut i) = (0_usize, false, 0);
    while i < bytes.len() {
        match (in_string, bytes[i]) {
            (true, b'\\') => i += 1,
            (_, b'"') => in_string = !in_string,
            (false, b'{') => depth += 1,
            (false, b'}') if depth > 0 => depth -= 1,
            (false, b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> Input {
        Input::of_text(json)
    }

    #[test]
    fn a_path_template_percent_encodes_each_value() {
        let event = input(r#"{"id": "e/1", "data": {"user_id": "u 1/ü?&#", "n": 7}}"#);
        let path = Template::compile("path", "users/{{ .data.user_id }}/n/{{data.n}}?event={{ id }}").expect("ok");
        assert_eq!(path.render_url(&event).expect("rendered"), "users/u%201%2F%C3%BC%3F%26%23/n/7?event=e%2F1");
        assert_eq!(path.as_static(), None);
        let header = Template::compile("headers.x-user", "user {{ .data.user_id }}").expect("ok");
        assert_eq!(header.render_text(&event).expect("rendered"), "user u 1/ü?&#");
    }

    #[test]
    fn text_without_expressions_is_static() {
        for text in ["users", "", "a}}b{"] {
            let template = Template::compile("path", text).expect("ok");
            assert_eq!(template.as_static(), Some(text));
            assert_eq!(template.render_url(&input("{}")).expect("rendered"), text);
        }
    }

    #[test]
    fn an_expression_may_hold_braces_strings_and_keywords() {
        let event = input(r#"{"type": "user.registered", "data": {"plan": null}}"#);
        let cases = [
            ("{{ {a: .type} | .a }}", "user.registered"),
            (r#"{{ "}}" }}"#, "}}"),
            ("{{ type }}", "user.registered"),
            (r#"{{ if .data.plan then "paid" else "free" end }}"#, "free"),
            (r#"{{ .data.plan // "none" }}"#, "none"),
        ];
        for (text, expected) in cases {
            let template = Template::compile("t", text).expect(text);
            assert_eq!(template.render_text(&event).expect(text), expected, "{text}");
        }
    }

    #[test]
    fn a_template_that_does_not_compile_names_its_key_and_position() {
        let error = Template::compile("forward.routes.crm.path", "users/{{ .data.user_id").expect_err("unclosed");
        assert_eq!(error.to_string(), "forward.routes.crm.path: `{{` is not closed by `}}` at line 1, column 7");
        let error = Template::compile("forward.routes.crm.path", "users/{{ .data. | }}").expect_err("bad");
        assert_eq!(error.to_string(), "forward.routes.crm.path: expected key, found `|` at line 1, column 17");
        let error = Template::compile("p", "users/{{ data.x | nosuch }}").expect_err("undefined");
        assert_eq!(error.to_string(), "p: undefined filter `nosuch` at line 1, column 19");
        assert!(Template::compile("p", "a{{ }}").expect_err("empty").to_string().contains("no expression"));
    }

    #[test]
    fn a_missing_member_fails_the_event() {
        let path = Template::compile("forward.routes.crm.path", "users/{{ .data.user_id }}").expect("ok");
        let error = path.render_url(&input(r#"{"data": {}}"#)).expect_err("missing");
        assert_eq!(error.key, "forward.routes.crm.path");
        assert!(error.reason.contains("null"), "{error}");
    }
}
