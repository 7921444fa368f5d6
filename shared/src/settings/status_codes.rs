//! Lists of HTTP status codes and ranges, as an API's status policy takes them (`apis.<name>.success_on`,
//! `retry_on`, `dead_letter_on`): `[409, "400-403"]` in a file, `"409,400-403"` from the environment (one
//! comma-separated string, as every list setting reads it: `lists.rs`).

use std::fmt;
use std::ops::RangeInclusive;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// The lowest and highest status code a list may name.
const STATUS_CODES: RangeInclusive<u16> = 100..=599;

/// A list of status codes and ranges of them (both ends included); empty: no status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCodes {
    /// Each entry of the list as a range (a single code is a range of one).
    ranges: Vec<RangeInclusive<u16>>,
}

impl StatusCodes {
    /// The list of `entries`, each a code (`"409"`) or a range (`"400-403"`), or why one is not.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let ranges = entries.into_iter().map(parse_entry).collect::<Result<_, _>>()?;
        Ok(Self { ranges })
    }

    /// Whether `status` is in the list.
    pub fn contains(&self, status: u16) -> bool {
        self.ranges.iter().any(|range| range.contains(&status))
    }

    /// Whether the list names no status.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The lowest status in both lists, when they share one.
    pub fn shared_with(&self, other: &StatusCodes) -> Option<u16> {
        self.ranges
            .iter()
            .flat_map(|mine| {
                other
                    .ranges
                    .iter()
                    .map(move |theirs| (*mine.start()).max(*theirs.start())..=(*mine.end()).min(*theirs.end()))
            })
            .filter(|both| !both.is_empty())
            .map(|both| *both.start())
            .min()
    }
}

/// One entry: a code, or a range `low-high` with `low ≤ high`, within 100–599.
fn parse_entry(entry: &str) -> Result<RangeInclusive<u16>, String> {
    let code =
        |text: &str| {
            text.trim().parse::<u16>().ok().filter(|code| STATUS_CODES.contains(code)).ok_or_else(|| {
                format!("{entry:?} is not a status code from 100 to 599 or a range of them (\"400-403\")")
            })
        };
    let (low, high) = match entry.split_once('-') {
        Some((low, high)) => (code(low)?, code(high)?),
        None => (code(entry)?, code(entry)?),
    };
    if low > high {
        return Err(format!("{entry:?} is a range whose low end is above its high end"));
    }
    Ok(low..=high)
}

impl<'de> Deserialize<'de> for StatusCodes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StatusCodesVisitor)
    }
}

/// Reads a list of codes and ranges: an array of numbers and strings, or one comma-separated string.
struct StatusCodesVisitor;

impl<'de> Visitor<'de> for StatusCodesVisitor {
    type Value = StatusCodes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of status codes and ranges, e.g. [409, \"400-403\"] or \"409,400-403\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<StatusCodes, E> {
        StatusCodes::parse(text.split(',').map(str::trim).filter(|entry| !entry.is_empty())).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, code: u64) -> Result<StatusCodes, E> {
        self.visit_str(&code.to_string())
    }

    fn visit_i64<E: de::Error>(self, code: i64) -> Result<StatusCodes, E> {
        self.visit_str(&code.to_string())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusCodes, A::Error> {
        /// One element of the array: a number or a string.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Entry {
            /// `409`.
            Code(i64),
            /// `"409"` or `"400-403"`.
            Text(String),
        }
        let mut entries = Vec::new();
        while let Some(entry) = seq.next_element::<Entry>()? {
            entries.push(match entry {
                Entry::Code(code) => code.to_string(),
                Entry::Text(text) => text,
            });
        }
        StatusCodes::parse(entries.iter().map(String::as_str)).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_ranges_are_read_and_matched() {
        let list = StatusCodes::parse(["409", "400-403", " 500 - 502 "]).expect("valid");
        for status in [409, 400, 401, 403, 500, 501, 502] {
            assert!(list.contains(status), "{status}");
        }
        for status in [399, 404, 408, 410, 499, 503] {
            assert!(!list.contains(status), "{status}");
        }
        assert!(StatusCodes::default().is_empty() && !StatusCodes::default().contains(200));
    }

    #[test]
    fn codes_outside_100_to_599_and_reversed_ranges_are_refused() {
        for entry in ["99", "600", "0", "-1", "4xx", "", "403-400", "400-", "-403", "400-403-405", "65936"] {
            let error = StatusCodes::parse([entry]).expect_err(entry);
            assert!(error.contains(&format!("{entry:?}")), "{entry}: {error}");
        }
    }

    #[test]
    fn two_lists_share_their_lowest_common_status() {
        let lists = |a: &[&str], b: &[&str]| {
            let a = StatusCodes::parse(a.iter().copied()).expect("a");
            let b = StatusCodes::parse(b.iter().copied()).expect("b");
            a.shared_with(&b)
        };
        assert_eq!(lists(&["400-410"], &["405-420"]), Some(405));
        assert_eq!(lists(&["409", "500-599"], &["404", "503"]), Some(503));
        assert_eq!(lists(&["400-403"], &["404-410"]), None);
        assert_eq!(lists(&[], &["404"]), None);
    }
}
