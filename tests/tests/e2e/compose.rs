//! Checks that the container definitions agree with the workspace, without Docker or a broker.
//!
//! `docker-compose.yml` and `Dockerfile` name binaries by string; nothing else notices when a binary is
//! renamed, a service is dropped or a change stops `docker compose up --scale inventory=3` from working. These
//! tests read the workspace's manifests (every `[[bin]] name`, and every `src/bin/*.rs`, of every `[workspace]
//! members` entry) and check:
//!
//! * every compose service built from the Dockerfile runs one of those binaries, and the image builds it;
//! * the services `kafka`, `kafka-init`, `producer`, `mock-apis` and one per registered consumer
//!   (`courier_consumers::registry`) exist;
//! * every consumer service has no `container_name` and no host `ports`, so it scales, and has a
//!   `healthcheck`;
//! * `kafka-init` creates the courier topics: what each registered consumer reads and publishes, its dead-letter
//!   topics, and the topics of `producer.events`, all with the default settings;
//! * every `depends_on` names a defined service;
//! * the Dockerfile's `cargo build` names only existing packages, and its runtime stage runs as a non-root
//!   `USER` and copies the event schemas the default settings name by a relative path where that path
//!   resolves, under its `WORKDIR`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use courier::settings::Settings;
use courier_consumers::registry::CONSUMERS;

/// Services besides the consumers that the local run and the docs rely on.
const REQUIRED_SERVICES: &[&str] = &["kafka", "kafka-init", "producer", "mock-apis"];

/// The consumer services: scaled with `--scale`, each replica a member of its service's consumer group.
fn consumer_services() -> impl Iterator<Item = &'static str> {
    CONSUMERS.iter().map(|consumer| consumer.name)
}

/// Topics `kafka-init` must create, with the default settings: what each consumer reads and publishes, the
/// dead-letter topic of each topic it reads, and the topics of `POST /v1/events`.
pub(super) fn topics() -> BTreeSet<String> {
    let settings = Settings::load_with_env(None, Some(HashMap::new())).expect("the default settings load");
    let mut topics: BTreeSet<String> = settings.producer.events.values().map(|route| route.topic.clone()).collect();
    for consumer in CONSUMERS {
        let spec = (consumer.spec)(&settings);
        topics.extend(spec.topics.iter().map(|topic| courier::delivery::dlq::dlq_topic(topic, &spec.group)));
        topics.extend(spec.topics.into_iter().chain(spec.publishes));
    }
    topics
}

/// The workspace root (this crate lives in `tests/`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Reads a file of the workspace, `relative` to its root.
pub(super) fn read(relative: &str) -> String {
    let path = workspace_root().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Every `[[bin]] name` declared by a member of the workspace.
fn workspace_binaries() -> BTreeSet<String> {
    workspace_packages().into_values().flatten().collect()
}

/// Every member of the workspace by package name, with its `[[bin]]` names.
fn workspace_packages() -> BTreeMap<String, BTreeSet<String>> {
    let root: toml::Table =
        toml::from_str(&read("Cargo.toml")).unwrap_or_else(|error| panic!("Cargo.toml is not valid TOML: {error}"));
    let members = root
        .get("workspace")
        .and_then(|workspace| workspace.get("members"))
        .and_then(toml::Value::as_array)
        .expect("Cargo.toml has no `[workspace] members` array");

    let mut packages = BTreeMap::new();
    for member in members {
        let member = member.as_str().unwrap_or_else(|| panic!("Cargo.toml: workspace member {member} is not a string"));
        assert!(
            !member.contains(['*', '?', '[']),
            "Cargo.toml: workspace member {member:?} is a glob; this test reads members by path only"
        );
        let manifest_path = format!("{member}/Cargo.toml");
        let manifest: toml::Table = toml::from_str(&read(&manifest_path))
            .unwrap_or_else(|error| panic!("{manifest_path} is not valid TOML: {error}"));
        let package = manifest
            .get("package")
            .and_then(|package| package.get("name"))
            .and_then(toml::Value::as_str)
            .unwrap_or_else(|| panic!("{manifest_path}: no [package] name"));
        let binaries: &mut BTreeSet<String> = packages.entry(package.to_owned()).or_default();
        // Cargo's own discovery: every `src/bin/<name>.rs` is binary `<name>`.
        if let Ok(files) = fs::read_dir(workspace_root().join(member).join("src/bin")) {
            let names = files.filter_map(|f| f.ok()?.file_name().to_str()?.strip_suffix(".rs").map(str::to_owned));
            binaries.extend(names);
        }
        let Some(bins) = manifest.get("bin") else {
            continue;
        };
        let bins = bins.as_array().unwrap_or_else(|| panic!("{manifest_path}: `bin` is not an array of tables"));
        for bin in bins {
            let name = bin
                .get("name")
                .and_then(toml::Value::as_str)
                .unwrap_or_else(|| panic!("{manifest_path}: a [[bin]] has no string `name`"));
            binaries.insert(name.to_owned());
        }
    }
    assert!(
        packages.values().any(|bins| !bins.is_empty()),
        "no workspace member declares a [[bin]]; the manifests were not read as expected"
    );
    packages
}

/// `docker-compose.yml`, with its `<<` merge keys applied (as Compose does).
pub(super) fn compose() -> Value {
    let mut compose: Value = serde_norway::from_str(&read("docker-compose.yml"))
        .unwrap_or_else(|error| panic!("docker-compose.yml is not valid YAML: {error}"));
    compose
        .apply_merge()
        .unwrap_or_else(|error| panic!("docker-compose.yml: a `<<` merge key cannot be applied: {error}"));
    compose
}

/// The `services` mapping of a compose file.
fn services(compose: &Value) -> &Mapping {
    compose.get("services").and_then(Value::as_mapping).expect("docker-compose.yml has no `services` mapping")
}

/// The services as (name, definition) pairs.
fn named_services(compose: &Value) -> Vec<(String, &Value)> {
    services(compose)
        .iter()
        .map(|(name, service)| {
            let name =
                name.as_str().unwrap_or_else(|| panic!("docker-compose.yml: service name {name:?} is not a string"));
            (name.to_owned(), service)
        })
        .collect()
}

/// One service by name.
fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    services(compose).get(name).unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"))
}

/// A `command` or `entrypoint` as its arguments: a list as is, a string split on whitespace (as Compose does
/// for simple strings); `None` when absent or null.
fn arguments(service_name: &str, key: &str, value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::Null => None,
        Value::String(line) => Some(line.split_whitespace().map(str::to_owned).collect()),
        Value::Sequence(items) => Some(
            items
                .iter()
                .map(|item| match item {
                    Value::String(text) => text.clone(),
                    Value::Number(number) => number.to_string(),
                    Value::Bool(flag) => flag.to_string(),
                    other => panic!("service `{service_name}`: `{key}` element {other:?} is not a scalar"),
                })
                .collect(),
        ),
        other => {
            panic!("service `{service_name}`: `{key}` is neither a string nor a list but {other:?}")
        }
    }
}

/// The binaries that compose services built from the Dockerfile run, as (service, binary) pairs.
fn compose_binaries(compose: &Value) -> Vec<(String, String)> {
    named_services(compose)
        .into_iter()
        .filter(|(_, service)| service.get("build").is_some())
        .map(|(name, service)| {
            let command = arguments(&name, "command", service.get("command")).unwrap_or_else(|| {
                panic!("service `{name}` is built from the Dockerfile but has no `command` naming its binary")
            });
            let binary = command
                .first()
                .unwrap_or_else(|| {
                    panic!("service `{name}` has an empty `command`; its first element must be a binary")
                })
                .clone();
            (name, binary)
        })
        .collect()
}

/// The Dockerfile as instructions: continuation lines joined, comments and blank lines dropped.
fn dockerfile_instructions() -> Vec<String> {
    let text = read("Dockerfile");
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(continued) => {
                current.push_str(continued);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        instructions.push(current);
    }
    instructions
}

/// The keyword of an instruction, upper case (`FROM`, `RUN`, `USER`...).
fn keyword(instruction: &str) -> String {
    instruction.split_whitespace().next().unwrap_or_default().to_ascii_uppercase()
}

/// The binaries of the packages the Dockerfile's `cargo build --bins` steps name with `-p X` (the image copies
/// them all).
fn dockerfile_binaries() -> BTreeSet<String> {
    let builds: Vec<String> = dockerfile_instructions()
        .into_iter()
        .filter(|instruction| keyword(instruction) == "RUN" && instruction.contains("cargo build"))
        .collect();
    assert!(!builds.is_empty(), "Dockerfile has no `RUN ... cargo build` step");

    let packages = workspace_packages();
    let mut binaries = BTreeSet::new();
    let commands = builds.iter().flat_map(|build| build.split("&&")).filter(|command| command.contains("cargo build"));
    for build in commands {
        let mut words = build.split_whitespace();
        while let Some(word) = words.next() {
            if word == "-p" || word == "--package" {
                let name = words.next().unwrap_or_else(|| panic!("Dockerfile: `-p` without a name in `{build}`"));
                let bins = packages.get(name).unwrap_or_else(|| {
                    panic!("Dockerfile builds package `{name}`, which is not a workspace member ({packages:?})")
                });
                binaries.extend(bins.iter().cloned());
            }
        }
    }
    assert!(!binaries.is_empty(), "Dockerfile: `cargo build` names no package (`-p X`) with binaries");
    binaries
}

#[test]
fn built_services_run_a_workspace_binary() {
    let binaries = workspace_binaries();
    let compose = compose();
    let built = compose_binaries(&compose);
    assert!(!built.is_empty(), "no compose service has `build`; courier services must be built from the Dockerfile");
    for (service, binary) in built {
        assert!(
            binaries.contains(&binary),
            "service `{service}` runs `{binary}`, which is not a [[bin]] of any workspace member (known: {binaries:?})"
        );
    }
}

#[test]
fn required_services_exist() {
    let compose = compose();
    let services = services(&compose);
    for name in REQUIRED_SERVICES.iter().copied().chain(consumer_services()) {
        assert!(services.contains_key(name), "docker-compose.yml has no service `{name}`");
    }
}

#[test]
fn consumers_can_scale() {
    let compose = compose();
    for name in consumer_services() {
        let consumer = service(&compose, name);
        assert!(
            consumer.get("container_name").is_none(),
            "service `{name}` sets `container_name`, so `docker compose up --scale {name}=3` fails: remove it"
        );
        let ports = consumer.get("ports");
        let publishes = match ports {
            None | Some(Value::Null) => false,
            Some(Value::Sequence(ports)) => !ports.is_empty(),
            Some(_) => true,
        };
        assert!(
            !publishes,
            "service `{name}` publishes host ports {ports:?}, so its replicas collide on them when scaled: remove `ports`"
        );
    }
}

#[test]
fn consumers_have_a_healthcheck() {
    let compose = compose();
    for name in consumer_services() {
        let consumer = service(&compose, name);
        let healthcheck = consumer
            .get("healthcheck")
            .unwrap_or_else(|| panic!("service `{name}` has no `healthcheck`; its health server is on port 8081"));
        let healthcheck = healthcheck
            .as_mapping()
            .unwrap_or_else(|| panic!("service `{name}`: `healthcheck` is not a mapping but {healthcheck:?}"));
        assert_ne!(
            healthcheck.get("disable").and_then(Value::as_bool),
            Some(true),
            "service `{name}` disables its `healthcheck`"
        );
        let test = arguments(name, "healthcheck.test", healthcheck.get("test"))
            .unwrap_or_else(|| panic!("service `{name}`: `healthcheck` has no `test`"));
        assert!(
            !matches!(test.first().map(String::as_str), None | Some("NONE")),
            "service `{name}`: `healthcheck.test` {test:?} checks nothing"
        );
    }
}

#[test]
fn kafka_init_creates_the_topics() {
    let compose = compose();
    let init = service(&compose, "kafka-init");
    let mut script = arguments("kafka-init", "entrypoint", init.get("entrypoint")).unwrap_or_default();
    script.extend(arguments("kafka-init", "command", init.get("command")).unwrap_or_default());
    let script = script.join(" ");
    assert!(
        script.contains("kafka-topics.sh") && script.contains("--create"),
        "service `kafka-init` does not run `kafka-topics.sh --create`: {script:?}"
    );
    // Whole names only: `orders.created` must not be satisfied by `orders.created.inventory.dlq`.
    let words: BTreeSet<&str> = script
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .filter(|word| !word.is_empty())
        .collect();
    for topic in topics() {
        assert!(words.contains(topic.as_str()), "service `kafka-init` does not create topic `{topic}`");
    }
}

#[test]
fn depends_on_names_defined_services() {
    let compose = compose();
    let defined: BTreeSet<String> = named_services(&compose).into_iter().map(|(name, _)| name).collect();
    for (name, service) in named_services(&compose) {
        let dependencies: Vec<String> = match service.get("depends_on") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .unwrap_or_else(|| {
                            panic!("service `{name}`: `depends_on` entry {item:?} is not a service name")
                        })
                        .to_owned()
                })
                .collect(),
            Some(Value::Mapping(items)) => items
                .keys()
                .map(|key| {
                    key.as_str()
                        .unwrap_or_else(|| panic!("service `{name}`: `depends_on` key {key:?} is not a service name"))
                        .to_owned()
                })
                .collect(),
            Some(other) => panic!("service `{name}`: `depends_on` is neither a list nor a mapping but {other:?}"),
        };
        for dependency in dependencies {
            assert!(
                defined.contains(&dependency),
                "service `{name}` depends on `{dependency}`, which docker-compose.yml does not define"
            );
            assert_ne!(dependency, name, "service `{name}` depends on itself");
        }
    }
}

#[test]
fn image_holds_the_services_and_every_registered_consumer() {
    let built = dockerfile_binaries();
    for binary in ["producer", "mock-apis", "forward"].into_iter().chain(consumer_services()) {
        assert!(built.contains(binary), "the Dockerfile's packages build no `{binary}` binary (built: {built:?})");
    }
}

#[test]
fn image_contains_every_binary_compose_runs() {
    let built = dockerfile_binaries();
    let compose = compose();
    for (service, binary) in compose_binaries(&compose) {
        assert!(
            built.contains(&binary),
            "service `{service}` runs `{binary}`, but the Dockerfile's `cargo build` does not build it (build its package with `-p`)"
        );
    }
}

#[test]
fn dockerfile_runtime_stage_is_non_root_and_runs_a_built_binary() {
    let instructions = dockerfile_instructions();
    let last_from =
        instructions.iter().rposition(|instruction| keyword(instruction) == "FROM").expect("Dockerfile has no FROM");
    let runtime = &instructions[last_from..];
    assert!(last_from > 0, "Dockerfile has a single stage; build and runtime must be separate stages");

    let user = runtime
        .iter()
        .rev()
        .find(|instruction| keyword(instruction) == "USER")
        .expect("Dockerfile: the runtime (last) stage sets no USER, so the binaries run as root");
    let account = user.split_whitespace().nth(1).expect("Dockerfile: USER without a user");
    let name = account.split(':').next().unwrap_or_default();
    assert!(
        !matches!(name, "root" | "0" | ""),
        "Dockerfile: the runtime stage runs as `{account}` (root); use an unprivileged user"
    );

    let built = dockerfile_binaries();
    if let Some(cmd) = runtime.iter().rev().find(|instruction| keyword(instruction) == "CMD") {
        let form = cmd.trim_start()[3..].trim();
        let first = if form.starts_with('[') {
            let argv: Vec<String> = serde_json::from_str(form)
                .unwrap_or_else(|error| panic!("Dockerfile: CMD {form} is not a JSON array of strings: {error}"));
            argv.into_iter().next()
        } else {
            form.split_whitespace().next().map(str::to_owned)
        };
        let first = first.unwrap_or_else(|| panic!("Dockerfile: CMD is empty"));
        assert!(built.contains(&first), "Dockerfile: default CMD runs `{first}`, which `cargo build` does not build");
    }
}

#[test]
fn the_image_holds_the_event_schemas_the_default_settings_name_where_their_paths_resolve() {
    let instructions = dockerfile_instructions();
    let last_from = instructions.iter().rposition(|i| keyword(i) == "FROM").expect("Dockerfile has no FROM");
    let runtime = &instructions[last_from..];
    let workdir = runtime.iter().rev().find(|i| keyword(i) == "WORKDIR").map_or("/", |i| i[7..].trim());
    assert!(workdir.starts_with('/'), "Dockerfile: the runtime stage's WORKDIR {workdir} is not absolute");
    // The build context's files the runtime stage copies in: (source in the context, destination in the image).
    let copies: Vec<(&str, PathBuf)> = runtime
        .iter()
        .filter(|i| keyword(i) == "COPY" && !i.contains("--from"))
        .filter_map(|i| {
            let words: Vec<&str> = i.split_whitespace().skip(1).filter(|w| !w.starts_with("--")).collect();
            let [source, destination] = words.as_slice() else { return None };
            Some((*source, Path::new(workdir).join(destination)))
        })
        .collect();
    let settings = Settings::load_with_env(None, Some(HashMap::new())).expect("the default settings load");
    let relative: Vec<&str> = settings
        .producer
        .events
        .values()
        .map(|route| route.schema.as_str())
        .filter(|schema| !schema.is_empty() && Path::new(schema).is_relative())
        .collect();
    assert!(!relative.is_empty(), "the default settings name no event schema by a relative path");
    for schema in relative {
        let in_image = Path::new(workdir).join(schema);
        let copied = copies.iter().find_map(|(source, destination)| {
            in_image.strip_prefix(destination).ok().map(|rest| workspace_root().join(source).join(rest))
        });
        let copied = copied.unwrap_or_else(|| panic!("Dockerfile: nothing copies {schema} to {}", in_image.display()));
        assert!(copied.is_file(), "Dockerfile: {} (for {schema}) is not a file", copied.display());
    }
}
