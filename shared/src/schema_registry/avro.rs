//! Avro: the writer's schema parsed by apache-avro (with the schemas it references), a datum decoded by it, and
//! the decoded value turned into the JSON a user expects:
//!
//! * a record is an object, an array an array, a map an object, an enum its symbol;
//! * a union is the value of its branch, without a wrapper (`null`, `"ada"`, `250`);
//! * `bytes` and `fixed` are base64 (standard alphabet, padded);
//! * `date` is `"1990-12-10"`, `time-millis` / `time-micros` `"07:30:00.250"`, `timestamp-*` an RFC 3339 UTC
//!   instant (`"2026-12-07T04:30:15.123Z"`), `local-timestamp-*` the same without the `Z`;
//! * `decimal` is a string of its exact digits (`"1234.56"`), `uuid` its text, `duration`
//!   `{"months","days","milliseconds"}`; a float that JSON cannot hold (NaN, infinities) is a string.

use std::collections::HashMap;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{InnerDecimalSchema, Name, Schema};
use apache_avro::types::Value as Avro;
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveTime};
use serde_json::{Map, Value as Json};

use super::client::RegisteredSchema;
use super::error::DecodeError;

/// A parsed writer's schema, its reader built once, and the named schemas it may refer to.
#[derive(Debug)]
pub struct AvroSchema {
    /// The schemas and the reader of datums written with them.
    reader: Reader,
    /// Every named type of the schema and its references, by full name (for `decimal`'s scale behind a name).
    named: HashMap<Name, Schema>,
}

/// The schemas a datum is read with, and the reader that borrows them: its names resolved once, not per datum.
#[ouroboros::self_referencing]
struct Reader {
    /// The writer's schema.
    writer: Schema,
    /// The schemas it references (named types defined elsewhere), dependencies first.
    references: Vec<Schema>,
    /// apache-avro's reader of datums of the writer's schema, the named types of every schema resolved.
    #[borrows(writer, references)]
    #[covariant]
    datum: GenericDatumReader<'this>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("writer", self.borrow_writer()).finish_non_exhaustive()
    }
}

impl AvroSchema {
    /// Parses schema `id` with the texts of the schemas it references (dependencies first), and builds its
    /// reader.
    pub fn parse(id: u32, schema: &RegisteredSchema, references: &[&str]) -> Result<Self, DecodeError> {
        let invalid = |e: apache_avro::Error| DecodeError::InvalidSchema { id, reason: format!("Avro: {e}") };
        let (writer, references) = if references.is_empty() {
            (Schema::parse_str(&schema.schema).map_err(invalid)?, Vec::new())
        } else {
            Schema::parse_str_with_list(&schema.schema, references).map_err(invalid)?
        };
        let mut named = HashMap::new();
        for schema in references.iter().chain([&writer]) {
            collect_named(schema, &mut named);
        }
        let reader = ReaderTryBuilder {
            writer,
            references,
            // Resolved in order: the references first, then the writer's schema, which may name their types.
            datum_builder: |writer: &Schema, references: &Vec<Schema>| {
                GenericDatumReader::builder(writer)
                    .writer_schemata(references.iter().chain([writer]).collect())?
                    .build()
            },
        }
        .try_build()
        .map_err(invalid)?;
        Ok(Self { reader, named })
    }

    /// Decodes `payload` (one datum, nothing after it) to JSON.
    pub fn decode(&self, payload: &[u8]) -> Result<Json, DecodeError> {
        let mut rest = payload;
        let value = self
            .reader
            .borrow_datum()
            .read_value(&mut rest)
            .map_err(|e| DecodeError::Malformed(format!("Avro: {e}")))?;
        if !rest.is_empty() {
            return Err(DecodeError::Malformed(format!("{} bytes after the Avro datum", rest.len())));
        }
        Ok(self.json(value, self.reader.borrow_writer()))
    }

    /// `value` of `schema` as JSON.
    fn json(&self, value: Avro, schema: &Schema) -> Json {
        let schema = match schema {
            Schema::Ref { name } => self.named.get(name).unwrap_or(schema),
            schema => schema,
        };
        let base64 = |bytes: &[u8]| Json::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        match value {
            Avro::Null => Json::Null,
            Avro::Boolean(b) => Json::Bool(b),
            Avro::Int(n) => Json::from(n),
            Avro::Long(n) => Json::from(n),
            Avro::Float(f) => float(f64::from(f)),
            Avro::Double(f) => float(f),
            Avro::Bytes(bytes) | Avro::Fixed(_, bytes) => base64(&bytes),
            Avro::String(s) | Avro::Enum(_, s) => Json::String(s),
            Avro::Union(branch, value) => match schema {
                Schema::Union(union) => match union.variants().get(branch as usize) {
                    Some(variant) => self.json(*value, variant),
                    None => self.json(*value, &Schema::Null),
                },
                _ => self.json(*value, schema),
            },
            Avro::Array(items) => {
                let item = match schema {
                    Schema::Array(array) => &array.items,
                    _ => &Schema::Null,
                };
                Json::Array(items.into_iter().map(|v| self.json(v, item)).collect())
            }
            Avro::Map(entries) => {
                let values = match schema {
                    Schema::Map(map) => &map.types,
                    _ => &Schema::Null,
                };
                Json::Object(entries.into_iter().map(|(k, v)| (k, self.json(v, values))).collect())
            }
            Avro::Record(fields) => {
                let schemas = match schema {
                    Schema::Record(record) => record.fields.as_slice(),
                    _ => &[],
                };
                let mut object = Map::with_capacity(fields.len());
                for (i, (name, value)) in fields.into_iter().enumerate() {
                    let json = self.json(value, schemas.get(i).map_or(&Schema::Null, |field| &field.schema));
                    object.insert(name, json);
                }
                Json::Object(object)
            }
            // Day 719,163 of the common era is 1970-01-01.
            Avro::Date(days) => days
                .checked_add(719_163)
                .and_then(NaiveDate::from_num_days_from_ce_opt)
                .map(|d| Json::String(d.to_string()))
                .unwrap_or_else(|| Json::from(days)),
            Avro::TimeMillis(ms) => time(i64::from(ms) * 1_000_000),
            Avro::TimeMicros(us) => time(us.saturating_mul(1_000)),
            Avro::TimestampMillis(ms) => instant(DateTime::from_timestamp_millis(ms), ms, true),
            Avro::TimestampMicros(us) => instant(DateTime::from_timestamp_micros(us), us, true),
            Avro::TimestampNanos(ns) => instant(Some(DateTime::from_timestamp_nanos(ns)), ns, true),
            Avro::LocalTimestampMillis(ms) => instant(DateTime::from_timestamp_millis(ms), ms, false),
            Avro::LocalTimestampMicros(us) => instant(DateTime::from_timestamp_micros(us), us, false),
            Avro::LocalTimestampNanos(ns) => instant(Some(DateTime::from_timestamp_nanos(ns)), ns, false),
            Avro::Decimal(decimal) => {
                let scale = match schema {
                    Schema::Decimal(decimal) => decimal.scale,
                    _ => 0,
                };
                Json::String(apache_avro::BigDecimal::new(decimal.into(), scale as i64).to_string())
            }
            Avro::BigDecimal(decimal) => Json::String(decimal.to_string()),
            Avro::Duration(duration) => serde_json::json!({
                "months": u32::from(duration.months()),
                "days": u32::from(duration.days()),
                "milliseconds": u32::from(duration.millis()),
            }),
            Avro::Uuid(uuid) => Json::String(uuid.to_string()),
        }
    }
}

/// Every named type defined in `schema`, by full name, into `named`.
fn collect_named(schema: &Schema, named: &mut HashMap<Name, Schema>) {
    match schema {
        Schema::Record(record) => {
            named.insert(record.name.clone(), schema.clone());
            record.fields.iter().for_each(|field| collect_named(&field.schema, named));
        }
        Schema::Enum(e) => {
            named.insert(e.name.clone(), schema.clone());
        }
        Schema::Fixed(f) => {
            named.insert(f.name.clone(), schema.clone());
        }
        Schema::Decimal(decimal) => {
            if let InnerDecimalSchema::Fixed(fixed) = &decimal.inner {
                named.insert(fixed.name.clone(), Schema::Fixed(fixed.clone()));
            }
        }
        Schema::Array(array) => collect_named(&array.items, named),
        Schema::Map(map) => collect_named(&map.types, named),
        Schema::Union(union) => union.variants().iter().for_each(|variant| collect_named(variant, named)),
        _ => {}
    }
}

/// A float as a JSON number, or as a string where JSON has no number for it.
fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map(Json::Number).unwrap_or_else(|| Json::String(f.to_string()))
}

/// A time of day `nanos` after midnight, `HH:MM:SS[.fraction]`.
fn time(nanos: i64) -> Json {
    let seconds = nanos.div_euclid(1_000_000_000);
    let fraction = nanos.rem_euclid(1_000_000_000);
    match u32::try_from(seconds).ok().and_then(|s| NaiveTime::from_num_seconds_from_midnight_opt(s, fraction as u32)) {
        Some(time) => Json::String(time.format("%H:%M:%S%.f").to_string()),
        None => Json::from(nanos),
    }
}

/// An instant as RFC 3339 (`Z` when `utc`, else a local date-time without offset); `raw` when out of range.
fn instant(at: Option<DateTime<chrono::Utc>>, raw: i64, utc: bool) -> Json {
    match at {
        Some(at) if utc => Json::String(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        Some(at) => Json::String(at.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
        None => Json::from(raw),
    }
}
