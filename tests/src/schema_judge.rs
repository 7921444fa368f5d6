//! The independent judge of courier's event schemas (`schemas/events/<type>.json`): the `jsonschema` Python
//! package, through `tests/independent/validate_json.py`, so that what courier publishes, and what its producer
//! accepts, is held to the schemas by code that is not courier's.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::{Value, json};

/// The judge's verdict on one value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Verdict {
    /// Whether the value matches its schema.
    pub valid: bool,
    /// Each violation: where (an RFC 6901 pointer into the value) and what.
    pub errors: Vec<Violation>,
}

/// One violation the judge found.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Violation {
    /// RFC 6901 pointer into the value.
    pub pointer: String,
    /// The judge's message.
    pub message: String,
}

/// The schema file of the data of events of `event_type`, in the workspace.
pub fn event_schema(event_type: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/events").join(format!("{event_type}.json"))
}

/// The verdicts on each `(event type, data)`, in order, against its type's schema file. Needs `python3` with
/// `jsonschema[format-nongpl]` (`scripts/test.sh` installs it); blocks while the judge runs.
pub fn judge_event_data(data: &[(&str, &Value)]) -> Vec<Verdict> {
    let schemas: serde_json::Map<String, Value> =
        data.iter().map(|(event_type, _)| ((*event_type).to_owned(), json!(event_schema(event_type)))).collect();
    let instances: Vec<Value> =
        data.iter().map(|(event_type, instance)| json!({"schema": event_type, "instance": instance})).collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("independent/validate_json.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test.sh installs jsonschema)");
    let request = json!({"schemas": schemas, "instances": instances}).to_string();
    child.stdin.take().expect("its stdin").write_all(request.as_bytes()).expect("the values written");
    let output = child.wait_with_output().expect("the judge ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} failed: {stderr}", script.display());
    let verdicts = serde_json::Deserializer::from_slice(&output.stdout).into_iter::<Verdict>();
    let verdicts: Vec<Verdict> = verdicts.collect::<Result<_, _>>().expect("the judge writes a verdict a line");
    assert_eq!(verdicts.len(), data.len(), "a verdict per value: {verdicts:?}");
    verdicts
}
