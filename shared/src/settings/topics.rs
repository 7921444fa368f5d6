//! `[topics]`: how courier creates topics, and the topics a domain names by key.
//!
//! The library names no topic of its own: a domain (the order flow: `orders_created`, `payment_failed`,
//! `orders_paid`) declares each of its topics as a key of `[topics]` in `config/default.toml`, with its default
//! name and what it is for, and reads it with [`TopicNames::get`]. Only the keys declared there are accepted,
//! so a misspelt key is refused like any unknown setting.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::LazyLock;

use config::{Config, File, FileFormat};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{DEFAULT_TOML, SettingsError, check};

/// `[topics]`: topic creation, and the named topics.
#[derive(Debug, Clone)]
pub struct TopicSettings {
    /// Partitions of a topic courier creates.
    pub partitions: i32,
    /// Replication factor of a topic courier creates.
    pub replication_factor: i32,
    /// Whether services create their topics at start-up when absent.
    pub create: bool,
    /// Every other key of `[topics]`: the topic names a domain declares in `config/default.toml`.
    pub names: TopicNames,
}

/// The named topics of `[topics]`, by key (`orders_created` → `orders.created`); printed as that map.
#[derive(Clone, PartialEq, Eq)]
pub struct TopicNames(BTreeMap<String, String>);

impl fmt::Debug for TopicNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TopicNames {
    /// The topic `topics.<key>` names.
    ///
    /// # Panics When `config/default.toml` declares no such key: every key a domain reads is declared there with its
    /// default, so this is a mistake in the code, never in the settings.
    #[track_caller]
    pub fn get(&self, key: &str) -> &str {
        match self.0.get(key) {
            Some(name) => name,
            None => panic!("config/default.toml declares no topics.{key}"),
        }
    }
}

/// The keys of `[topics]` that are not topic names.
const FIELDS: [&str; 3] = ["partitions", "replication_factor", "create"];

/// The topic keys `config/default.toml` declares.
fn declared() -> &'static BTreeSet<String> {
    static DECLARED: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
        let defaults = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml)).build();
        let table = defaults.and_then(|d| d.get_table("topics")).expect("config/default.toml has a [topics] table");
        table.into_keys().filter(|key| !FIELDS.contains(&key.as_str())).collect()
    });
    &DECLARED
}

impl TopicSettings {
    /// Checks each field on its own.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        for (key, name) in &self.names.0 {
            check(!name.trim().is_empty(), &format!("topics.{key}"), "must not be empty")?;
        }
        check(self.partitions >= 1, "topics.partitions", "must be at least 1")?;
        check(self.replication_factor >= 1, "topics.replication_factor", "must be at least 1")
    }
}

impl<'de> Deserialize<'de> for TopicSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Table)
    }
}

/// Reads `[topics]` key by key: each value is read by the source's own rules (a number or a boolean from the
/// environment's text), which a derived reader with a catch-all map would not do.
struct Table;

impl<'de> Visitor<'de> for Table {
    type Value = TopicSettings;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the [topics] table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopicSettings, A::Error> {
        let (mut partitions, mut replication_factor, mut create) = (None, None, None);
        let mut names = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "partitions" => partitions = Some(map.next_value()?),
                "replication_factor" => replication_factor = Some(map.next_value()?),
                "create" => create = Some(map.next_value()?),
                _ if declared().contains(&key) => {
                    let name = map.next_value()?;
                    names.insert(key, name);
                }
                _ => {
                    let expected: Vec<&str> = FIELDS.into_iter().chain(declared().iter().map(String::as_str)).collect();
                    return Err(de::Error::custom(format!("unknown field `{key}`, expected one of {expected:?}")));
                }
            }
        }
        Ok(TopicSettings {
            partitions: partitions.ok_or_else(|| de::Error::missing_field("partitions"))?,
            replication_factor: replication_factor.ok_or_else(|| de::Error::missing_field("replication_factor"))?,
            create: create.ok_or_else(|| de::Error::missing_field("create"))?,
            names: TopicNames(names),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::load;

    #[test]
    fn named_topics_are_the_keys_the_defaults_declare() {
        let s = load(&[("COURIER__TOPICS__PAYMENT_FAILED", "payments.failed")]).expect("valid");
        assert_eq!(s.topics.names.get("orders_created"), "orders.created");
        assert_eq!(s.topics.names.get("payment_failed"), "payments.failed");
        assert_eq!((s.topics.partitions, s.topics.replication_factor, s.topics.create), (8, 1, true));
        let missing = std::panic::catch_unwind(|| s.topics.names.get("orders_shipped").to_owned());
        assert!(missing.is_err(), "a key the defaults do not declare is a mistake in the code");
    }
}
