//! The parts of the event a mapping's programs can see, found in their code, and the event read as only those
//! parts: a route whose programs name `.data.user_id` and `.data.email` reads those two members of the event
//! into jaq's values, and skips the rest of it.

use std::collections::BTreeMap;
use std::fmt;

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Pattern, Term};
use jaq_core::path::Part;
use jaq_json::{Map, Val};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// What of a JSON value programs can see: all of it, or some members of it when it is an object (each member
/// in turn all or some of it). A value that is not an object is always seen whole, so that a program indexing
/// it fails as it would on the whole event; a member not named is left out, which a program that can see
/// only the members named cannot tell.
///
/// It is found in the programs' code by a conservative reading of jq: a path of names from the event
/// (`.data.user_id`, `.data."first-name"`) sees that member; the event itself (`.`, `..`), a function called
/// on it (`keys`, `tojson`, a `def`), an assignment, `reduce` and `foreach` see all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// The whole value.
    All,
    /// These members of an object, each as its projection says; the others are left out.
    Members(BTreeMap<String, Projection>),
}

impl Default for Projection {
    /// Nothing of the value.
    fn default() -> Self {
        Self::Members(BTreeMap::new())
    }
}

/// Calls that do not read their input.
const CONSTANTS: [&str; 4] = ["true", "false", "null", "empty"];

impl Projection {
    /// What a jq program of `code` can see of its input (all of it when the code is not one jq term).
    pub(crate) fn of_code(code: &str) -> Self {
        let mut projection = Self::default();
        match jaq_core::load::parse(code, |p| p.term()) {
            Some(term) => projection.add_term(&term),
            None => projection = Self::All,
        }
        projection
    }

    /// Adds what `other` sees.
    pub(crate) fn add(&mut self, other: &Projection) {
        match (&mut *self, other) {
            (Self::All, _) => {}
            (this, Self::All) => *this = Self::All,
            (Self::Members(mine), Self::Members(theirs)) => {
                for (name, projection) in theirs {
                    mine.entry(name.clone()).or_default().add(projection);
                }
            }
        }
    }

    /// What is seen of member `name`: `None` when nothing is.
    pub(crate) fn member(&self, name: &str) -> Option<&Projection> {
        match self {
            Self::All => Some(self),
            Self::Members(members) => members.get(name),
        }
    }

    /// Adds the whole value at `path` (names of members from this value on).
    fn add_path(&mut self, path: &[&str]) {
        match (path, &mut *self) {
            (_, Self::All) => {}
            ([], this) => *this = Self::All,
            ([name, rest @ ..], Self::Members(members)) => {
                members.entry((*name).to_owned()).or_default().add_path(rest);
            }
        }
    }

    /// Adds what `term` sees when it runs on this value.
    fn add_term(&mut self, term: &Term<&str>) {
        match term {
            Term::Num(_) | Term::Var(_) | Term::Break(_) | Term::Arr(None) => {}
            Term::Call(name, args) if args.is_empty() && CONSTANTS.contains(name) => {}
            Term::Str(_, parts) => self.add_parts(parts),
            Term::Arr(Some(term)) | Term::Neg(term) | Term::Label(_, term) => self.add_term(term),
            Term::Obj(entries) => {
                for (key, value) in entries {
                    match (key, value) {
                        (key, Some(value)) => {
                            self.add_term(key);
                            self.add_term(value);
                        }
                        // `{$x}` is `{x: $x}`; `{name}` and `{"name"}` are `{name: .name}`.
                        (Term::Var(_), None) => {}
                        (key, None) => match name(key) {
                            Some(name) => self.add_path(&[name]),
                            None => *self = Self::All,
                        },
                    }
                }
            }
            Term::TryCatch(term, catch) => {
                self.add_term(term);
                if let Some(catch) = catch {
                    self.add_term(catch);
                }
            }
            Term::IfThenElse(branches, otherwise) => {
                for (condition, then) in branches {
                    self.add_term(condition);
                    self.add_term(then);
                }
                if let Some(otherwise) = otherwise {
                    self.add_term(otherwise);
                }
            }
            // The right side of `l | r` runs on what the left side gives, not on this value.
            Term::BinOp(left, BinaryOp::Pipe(None), _) => self.add_term(left),
            // `l as $x | r`: both run on this value.
            Term::BinOp(left, BinaryOp::Pipe(Some(pattern)), right) => {
                self.add_term(left);
                self.add_pattern(pattern);
                self.add_term(right);
            }
            Term::BinOp(left, BinaryOp::Comma | BinaryOp::Alt | BinaryOp::Or | BinaryOp::And, right)
            | Term::BinOp(left, BinaryOp::Math(_) | BinaryOp::Cmp(_), right) => {
                self.add_term(left);
                self.add_term(right);
            }
            Term::Path(head, path) => {
                let mut parts = path.0.iter().peekable();
                if matches!(**head, Term::Id) {
                    let mut names = Vec::new();
                    while let Some(name) = parts.peek().and_then(|(part, _)| match part {
                        Part::Index(key) => name(key),
                        Part::Range(..) => None,
                    }) {
                        names.push(name);
                        parts.next();
                    }
                    self.add_path(&names);
                } else {
                    self.add_term(head);
                }
                // The indices of a path run on the value the path starts from: `.items[.i]`.
                for (part, _) in parts {
                    match part {
                        Part::Index(index) => self.add_term(index),
                        Part::Range(from, to) => {
                            for bound in [from, to].into_iter().flatten() {
                                self.add_term(bound);
                            }
                        }
                    }
                }
            }
            Term::Id
            | Term::Recurse
            | Term::Call(..)
            | Term::Def(..)
            | Term::Fold(..)
            | Term::BinOp(_, BinaryOp::Assign | BinaryOp::Update | BinaryOp::UpdateMath(_), _)
            | Term::BinOp(_, BinaryOp::UpdateAlt, _) => *self = Self::All,
        }
    }

    /// Adds what the interpolations of a string see.
    fn add_parts(&mut self, parts: &[StrPart<&str, Term<&str>>]) {
        for part in parts {
            if let StrPart::Term(term) = part {
                self.add_term(term);
            }
        }
    }

    /// Adds what the keys of a destructuring pattern (`. as {(f): $x}`) see.
    fn add_pattern(&mut self, pattern: &Pattern<&str>) {
        match pattern {
            Pattern::Var(_) => {}
            Pattern::Arr(patterns) => patterns.iter().for_each(|p| self.add_pattern(p)),
            Pattern::Obj(entries) => {
                for (key, pattern) in entries {
                    self.add_term(key);
                    self.add_pattern(pattern);
                }
            }
        }
    }

    /// `json` read as a jaq value, as much of it as this projection sees.
    pub(crate) fn read(&self, json: &[u8]) -> Result<Val, String> {
        let members = match self {
            Self::Members(members) if json.trim_ascii_start().first() == Some(&b'{') => members,
            _ => return jaq_json::read::parse_single(json).map_err(|e| e.to_string()),
        };
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let value = deserializer.deserialize_map(Members(members)).map_err(|e| e.to_string())?;
        deserializer.end().map_err(|e| e.to_string())?;
        Ok(value)
    }
}

/// The member name a path index or an object key is, when it is a plain string (no interpolation, no escape).
fn name<'a>(key: &Term<&'a str>) -> Option<&'a str> {
    match key {
        Term::Str(None, parts) => match parts.as_slice() {
            [StrPart::Str(name)] => Some(name),
            _ => None,
        },
        _ => None,
    }
}

/// Reads an object into a jaq object of the members named, each read as its projection says.
struct Members<'p>(&'p BTreeMap<String, Projection>);

impl<'de> Visitor<'de> for Members<'_> {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val, A::Error> {
        let mut object = Map::default();
        while let Some(member) = map.next_key_seed(Named(self.0))? {
            match member {
                Some((name, projection)) => {
                    let raw: &RawValue = map.next_value()?;
                    let value = projection.read(raw.get().as_bytes()).map_err(serde::de::Error::custom)?;
                    object.insert(Val::utf8_str(name.as_bytes().to_vec()), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Val::obj(object))
    }
}

/// Reads an object's key: the member's name and projection when it is named, else `None`.
struct Named<'p>(&'p BTreeMap<String, Projection>);

impl<'de, 'p> DeserializeSeed<'de> for Named<'p> {
    type Value = Option<(&'p String, &'p Projection)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 'p> Visitor<'de> for Named<'p> {
    type Value = Option<(&'p String, &'p Projection)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.get_key_value(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The projection of `code`, written as the JSON paths it sees (`data.user_id`), or `["."]` for all.
    fn seen(code: &str) -> Vec<String> {
        fn paths(projection: &Projection, prefix: &str, out: &mut Vec<String>) {
            match projection {
                Projection::All => out.push(if prefix.is_empty() { ".".to_owned() } else { prefix.to_owned() }),
                Projection::Members(members) => {
                    for (name, projection) in members {
                        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                        paths(projection, &path, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        paths(&Projection::of_code(code), "", &mut out);
        out
    }

    #[test]
    fn paths_of_names_from_the_event_see_those_members() {
        assert_eq!(seen(".data.user_id"), ["data.user_id"]);
        assert_eq!(seen("{order_id: .data.order_id, items: .data.items}"), ["data.items", "data.order_id"]);
        assert_eq!(seen(r#".data."first-name" + " " + .data.last?"#), ["data.first-name", "data.last"]);
        assert_eq!(seen(".data.order_id != null"), ["data.order_id"]);
        assert_eq!(seen("{id, $__loc__, tenant: .tenant}"), ["id", "tenant"]);
        assert_eq!(seen(r#""user \(.data.user_id)""#), ["data.user_id"]);
        assert_eq!(seen(r#"if .data.plan then "paid" else "free" end"#), ["data.plan"]);
        assert_eq!(seen(r#".data.plan // "none""#), ["data.plan"]);
        assert_eq!(seen(".data.items[0].sku"), ["data.items"]);
        assert_eq!(seen(".data.items[.i]"), ["data.items", "i"]);
        assert_eq!(seen(".data | {email, name: (.first + .last)}"), ["data"]);
        assert_eq!(seen(".data.a as $a | {a: $a, b: .b}"), ["b", "data.a"]);
        assert_eq!(seen(".data.a, .data"), ["data"]);
        assert_eq!(seen("[1, true, null, \"x\"]"), Vec::<String>::new());
    }

    #[test]
    fn the_event_itself_or_a_function_of_it_sees_all_of_it() {
        for code in [
            ".",
            "..",
            "keys",
            "tojson",
            "{a: 1} + .",
            ".a = 1",
            ".a |= 1",
            "def f: .a; f",
            "@base64",
            "reduce .data[] as $x (0; . + $x)",
            ".[\"a\\u0041\"]",
            "{\"a\\n\"}",
            ". as [$x] | $x",
        ] {
            assert_eq!(seen(code), ["."], "{code}");
        }
        assert_eq!(seen("$x.a"), Vec::<String>::new(), "a variable's member is not the event's");
    }

    #[test]
    fn an_event_read_through_a_projection_holds_what_it_sees_and_fails_alike() {
        let event = br#"{"id": "e-1", "data": {"user_id": "u-1", "email": "ada@example.com", "n": 1.50,
            "tags": ["a", {"b": 2}]}, "time": "2026-12-07T00:00:00Z"}"#;
        let projection = Projection::of_code("{user: .data.user_id, n: .data.n, tags: .data.tags, x: .data.x}");
        let read = projection.read(event).expect("JSON");
        let expected =
            jaq_json::read::parse_single(br#"{"data": {"user_id": "u-1", "n": 1.50, "tags": ["a", {"b": 2}]}}"#)
                .expect("JSON");
        assert_eq!(read, expected);
        assert_eq!(read.to_string(), expected.to_string(), "numbers keep their text");
        // A value that is not an object is read whole, so that indexing it fails as on the whole event.
        let read = Projection::of_code(".data.user_id").read(br#"{"data": [1, 2]}"#).expect("JSON");
        assert_eq!(read, jaq_json::read::parse_single(br#"{"data": [1, 2]}"#).expect("JSON"));
        assert!(Projection::of_code(".a").read(br#"{"a": 1,}"#).is_err(), "not JSON");
        assert!(Projection::of_code(".a").read(br#"{"b": [1,}"#).is_err(), "not JSON, in a member not read");
    }
}
