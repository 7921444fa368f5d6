//! Checks the Kubernetes manifests (`deploy/kubernetes`) and the compose file against what only courier knows,
//! without a cluster: the registry of consumers (`courier_consumers::registry`), `forward`'s routes and the
//! settings each pod would load.
//!
//! Every kustomization of [`KUSTOMIZATIONS`] is rendered with `kubectl kustomize` and
//!
//! * validated against the Kubernetes schemas and the vendored CRD schemas by an independent validator
//!   (`tests/independent/validate_kubernetes.py`: the `kubernetes-validate` package and `jsonschema`);
//! * held to the invariants: each workload's settings are loaded as its pod loads them (the ConfigMap's
//!   `courier.toml` as `--config`, its ConfigMaps' variables and literal `env` as the environment), and then
//!   every registered consumer and `forward` has a Deployment running its binary and a ScaledObject (or, with
//!   the `hpa` component, a HorizontalPodAutoscaler) whose Kafka triggers name its real consumer groups (after
//!   `kafka.group_id_prefix`) and topics, at most `topics.partitions` replicas; its grace period is above
//!   `consumer.drain_timeout_ms`; its probes reach the health port of `consumer.health_listen` (the producer's,
//!   `producer.listen`); its pods run restricted; no ConfigMap and no literal variable holds a secret (a
//!   setting of type `SecretString`); Prometheus scrapes every consumer and `CourierConsumerMissing` watches
//!   each, with the other rules as `deploy/prometheus/alerts.yml` has them.
//!
//! The compose file's consumers get a `stop_grace_period` above their drain timeout.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use courier::delivery::Consumer;
use courier::settings::Settings;
use courier_consumers::forward::{self, Forward};
use courier_consumers::registry::CONSUMERS;
use serde::Deserialize;
use serde_norway::Value;

use super::compose::{compose, read};

/// What CI renders: the two overlays, and the example overlay with the optional components.
const KUSTOMIZATIONS: [&str; 3] = [
    "deploy/kubernetes/overlays/example",
    "deploy/kubernetes/overlays/production",
    "tests/fixtures/kubernetes-components",
];

/// The workspace root (this crate lives in `tests/`).
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The objects `kubectl kustomize` renders from `kustomization` (relative to the workspace root).
fn render(kustomization: &str) -> Vec<Value> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(root().join(kustomization))
        .output()
        .expect("kubectl runs (its built-in kustomize renders deploy/kubernetes)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl kustomize {kustomization} failed: {stderr}");
    let text = String::from_utf8(output.stdout).expect("kustomize writes UTF-8");
    let objects: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("kustomize writes YAML"))
        .filter(|object| !object.is_null())
        .collect();
    assert!(!objects.is_empty(), "{kustomization} renders nothing");
    objects
}

/// The rendered objects of one kustomization.
struct Rendered {
    /// Which kustomization, for messages.
    name: &'static str,
    /// Every object it renders.
    objects: Vec<Value>,
}

impl Rendered {
    /// Every object of `kind`.
    fn all<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> {
        self.objects.iter().filter(move |object| object["kind"] == kind)
    }

    /// The object of `kind` called `name`, if any.
    fn find<'a>(&'a self, kind: &'a str, name: &str) -> Option<&'a Value> {
        self.all(kind).find(|object| object["metadata"]["name"] == name)
    }

    /// The object of `kind` called `name`.
    fn get<'a>(&'a self, kind: &'a str, name: &str) -> &'a Value {
        self.find(kind, name).unwrap_or_else(|| panic!("{}: no {kind} `{name}`", self.name))
    }

    /// The `courier` container of Deployment `name`.
    fn container(&self, name: &str) -> &Value {
        let containers = self.get("Deployment", name)["spec"]["template"]["spec"]["containers"].as_sequence();
        containers
            .into_iter()
            .flatten()
            .find(|container| container["name"] == "courier")
            .unwrap_or_else(|| panic!("{}: Deployment `{name}` has no container `courier`", self.name))
    }

    /// The environment the `courier` container of Deployment `name` starts with: its ConfigMaps' entries
    /// (`envFrom`), the keys other objects read from its Secrets (which are created by hand, never rendered)
    /// standing in as `from-a-secret`, then its literal `env` (a value from the pod's fields stands in as `pod-0`).
    fn environment(&self, name: &str) -> HashMap<String, String> {
        let container = self.container(name);
        let mut env = HashMap::new();
        for source in container["envFrom"].as_sequence().into_iter().flatten() {
            if let Some(config_map) = source["configMapRef"]["name"].as_str() {
                env.extend(self.config_map_data(config_map));
            }
            if let Some(secret) = source["secretRef"]["name"].as_str() {
                env.extend(self.secret_keys(secret).into_iter().map(|key| (key, "from-a-secret".to_owned())));
            }
        }
        for variable in container["env"].as_sequence().into_iter().flatten() {
            let key = variable["name"].as_str().expect("an env name").to_owned();
            if let Some(value) = variable["value"].as_str() {
                env.insert(key, value.to_owned());
            } else if !variable["valueFrom"]["fieldRef"].is_null() {
                env.insert(key, "pod-0".to_owned());
            }
        }
        env
    }

    /// The keys of Secret `name` that a KEDA TriggerAuthentication reads (so the pods find them there too).
    fn secret_keys(&self, name: &str) -> Vec<String> {
        let references = self
            .all("TriggerAuthentication")
            .flat_map(|auth| auth["spec"]["secretTargetRef"].as_sequence().cloned().unwrap_or_default());
        references
            .filter(|reference| reference["name"] == name)
            .filter_map(|reference| reference["key"].as_str().map(str::to_owned))
            .collect()
    }

    /// The data of ConfigMap `name`.
    fn config_map_data(&self, name: &str) -> BTreeMap<String, String> {
        let data = self.get("ConfigMap", name)["data"].as_mapping().cloned().unwrap_or_default();
        data.into_iter()
            .map(|(key, value)| {
                (key.as_str().expect("a key").to_owned(), value.as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }

    /// The settings the pods of Deployment `name` load: `--config` is the file its ConfigMap volume holds.
    fn settings(&self, name: &str) -> Settings {
        let container = self.container(name);
        let args: Vec<&str> = container["args"].as_sequence().into_iter().flatten().filter_map(Value::as_str).collect();
        let config = args
            .windows(2)
            .find(|pair| pair[0] == "--config")
            .map(|pair| Path::new(pair[1]))
            .unwrap_or_else(|| panic!("{}: `{name}` runs without --config", self.name));
        let (directory, file) = (config.parent().expect("a directory"), config.file_name().expect("a file"));
        let mount = container["volumeMounts"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|mount| mount["mountPath"].as_str().map(Path::new) == Some(directory))
            .unwrap_or_else(|| panic!("{}: `{name}` mounts nothing at {}", self.name, directory.display()));
        let volumes = self.get("Deployment", name)["spec"]["template"]["spec"]["volumes"].as_sequence();
        let volume = volumes.into_iter().flatten().find(|volume| volume["name"] == mount["name"]).expect("its volume");
        let config_map = volume["configMap"]["name"].as_str().expect("the configuration is a ConfigMap");
        let text = &self.config_map_data(config_map)[file.to_str().expect("a file name")];
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join(file);
        std::fs::write(&path, text).expect("the settings file is written");
        Settings::load_with_env(Some(&path), Some(self.environment(name)))
            .unwrap_or_else(|error| panic!("{}: the settings of `{name}` do not load: {error}", self.name))
    }

    /// The port number the `courier` container of Deployment `name` calls `port` (a name or a number).
    fn port(&self, name: &str, port: &Value) -> u16 {
        if let Some(number) = port.as_u64() {
            return u16::try_from(number).expect("a port");
        }
        let ports = self.container(name)["ports"].as_sequence();
        let found = ports.into_iter().flatten().find(|candidate| candidate["name"] == *port);
        let number = found.and_then(|found| found["containerPort"].as_u64());
        u16::try_from(number.unwrap_or_else(|| panic!("{}: `{name}` has no port {port:?}", self.name))).expect("a port")
    }
}

/// A workload that consumes: its Deployment, the binary it runs and the consumer groups and topics it reads.
struct ConsumerWorkload {
    /// The Deployment's (and its binary's) name.
    name: &'static str,
    /// Every (group id, topic) it reads, from its settings.
    reads: BTreeSet<(String, String)>,
}

/// The registered consumers and `forward`, with what they read under `settings`.
fn consumer_workloads(rendered: &Rendered) -> Vec<ConsumerWorkload> {
    let mut workloads: Vec<ConsumerWorkload> = CONSUMERS
        .iter()
        .map(|consumer| {
            let spec = (consumer.spec)(&rendered.settings(consumer.name));
            let reads = spec.topics.iter().map(|topic| (spec.group.clone(), topic.clone())).collect();
            ConsumerWorkload { name: consumer.name, reads }
        })
        .collect();
    let settings = rendered.settings(forward::NAME);
    assert!(!settings.forward.routes.is_empty(), "{}: forward runs without routes", rendered.name);
    let reads = settings
        .forward
        .routes
        .iter()
        .flat_map(|(name, route)| {
            let spec = Forward::new(name, route).spec(&settings);
            spec.topics.into_iter().map(move |topic| (spec.group.clone(), topic))
        })
        .collect();
    workloads.push(ConsumerWorkload { name: forward::NAME, reads });
    workloads
}

/// A grace period or drain timeout in whole seconds (Kubernetes' default grace period when absent).
fn grace_period(pod: &Value) -> Duration {
    Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30))
}

/// The names of the settings of type `SecretString` (`password`, `token`, `api_keys`, …), read from the
/// settings' sources, so that a new secret setting is covered as soon as it is declared.
fn secret_fields() -> BTreeSet<String> {
    let mut sources: Vec<String> = std::fs::read_dir(root().join("shared/src/settings"))
        .expect("shared/src/settings")
        .map(|entry| std::fs::read_to_string(entry.expect("an entry").path()).expect("a settings source"))
        .collect();
    sources.push(read("shared/src/kafka/security.rs"));
    let fields: BTreeSet<String> = sources
        .iter()
        .flat_map(|source| source.lines())
        .filter(|line| line.contains("SecretString>"))
        .filter_map(|line| line.trim().strip_prefix("pub ")?.split(':').next().map(str::to_owned))
        .collect();
    assert!(fields.contains("password") && fields.contains("api_keys"), "secret settings found: {fields:?}");
    fields
}

/// Whether the setting at `path` (its keys, lower case) holds a secret: a `SecretString` field, or a librdkafka
/// property whose name says it is one.
fn is_secret(path: &[String], secret_fields: &BTreeSet<String>) -> bool {
    let last = path.last().map(String::as_str).unwrap_or_default();
    let property = path.len() > 2 && path[0] == "kafka" && path[1] == "properties";
    secret_fields.contains(last)
        || (property && ["password", "secret", "token", "jaas", "credentials"].iter().any(|word| last.contains(word)))
}

/// Every key path of a TOML table.
fn toml_paths(table: &toml::Table, prefix: &[String], paths: &mut Vec<Vec<String>>) {
    for (key, value) in table {
        let mut path = prefix.to_vec();
        path.push(key.to_lowercase());
        match value {
            toml::Value::Table(inner) => toml_paths(inner, &path, paths),
            _ => paths.push(path),
        }
    }
}

/// The setting a `COURIER__…` variable sets, as its key path.
fn variable_path(name: &str) -> Option<Vec<String>> {
    Some(name.strip_prefix("COURIER__")?.split("__").map(str::to_lowercase).collect())
}

/// The services `CourierConsumerMissing` watches in a rule expression.
fn watched(expr: &str) -> BTreeSet<String> {
    expr.split("absent(up{job=\"consumers\", service=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// The rules of a `groups:` list, by alert name.
fn rules(groups: &Value) -> BTreeMap<String, Value> {
    let groups = groups.as_sequence().expect("rule groups");
    groups
        .iter()
        .flat_map(|group| group["rules"].as_sequence().cloned().unwrap_or_default())
        .map(|rule| (rule["alert"].as_str().expect("an alert name").to_owned(), rule))
        .collect()
}

/// Whether `selector` (`matchLabels`) selects pods labelled `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let wanted = selector["matchLabels"].as_mapping();
    !selector["matchLabels"].is_null() && wanted.into_iter().flatten().all(|(key, value)| labels[key] == *value)
}

/// The invariants of one rendered kustomization (see the module's documentation).
fn check_invariants(rendered: &Rendered) {
    let name = rendered.name;
    let secret_fields = secret_fields();
    let alerts: Value = serde_norway::from_str(&read("deploy/prometheus/alerts.yml")).expect("alerts.yml parses");
    let workloads = consumer_workloads(rendered);

    for workload in &workloads {
        let deployment = rendered.get("Deployment", workload.name);
        let pod = &deployment["spec"]["template"]["spec"];
        let labels = &deployment["spec"]["template"]["metadata"]["labels"];
        let container = rendered.container(workload.name);
        let settings = rendered.settings(workload.name);
        assert_eq!(container["command"][0], workload.name, "{name}: Deployment `{}` runs its binary", workload.name);

        // Scaled on its groups' lag, never beyond the partitions.
        let partitions = u64::try_from(settings.topics.partitions).expect("positive partitions");
        let scaled =
            rendered.all("ScaledObject").find(|object| object["spec"]["scaleTargetRef"]["name"] == workload.name);
        let hpa =
            rendered.all("HorizontalPodAutoscaler").find(|hpa| hpa["spec"]["scaleTargetRef"]["name"] == workload.name);
        match (scaled, hpa) {
            (Some(scaled), None) => {
                let spec = &scaled["spec"];
                let most = spec["maxReplicaCount"].as_u64().expect("maxReplicaCount");
                assert!(
                    most <= partitions,
                    "{name}: `{}` scales to {most} replicas, over {partitions} partitions",
                    workload.name
                );
                assert!(spec["minReplicaCount"].as_u64() >= Some(1), "{name}: `{}` scales to zero", workload.name);
                let env = rendered.environment(workload.name);
                let mut triggered = BTreeSet::new();
                for trigger in spec["triggers"].as_sequence().expect("triggers") {
                    assert_eq!(trigger["type"], "kafka", "{name}: `{}` scales on Kafka lag", workload.name);
                    let metadata = &trigger["metadata"];
                    let bootstrap = match metadata["bootstrapServersFromEnv"].as_str() {
                        Some(variable) => env.get(variable).cloned(),
                        None => metadata["bootstrapServers"].as_str().map(str::to_owned),
                    };
                    assert_eq!(
                        bootstrap.as_deref(),
                        Some(settings.kafka.bootstrap_servers.as_str()),
                        "{name}: `{}`'s brokers",
                        workload.name
                    );
                    assert_eq!(
                        metadata["offsetResetPolicy"],
                        settings.kafka.auto_offset_reset.as_str(),
                        "{name}: `{}`",
                        workload.name
                    );
                    let protocol = settings.kafka.security_protocol.as_str();
                    let sasl = metadata["sasl"].as_str().unwrap_or("none");
                    // KEDA's names of the SASL mechanisms.
                    let mechanism = match settings.kafka.sasl.mechanism.as_str() {
                        "PLAIN" => "plaintext",
                        "SCRAM-SHA-256" => "scram_sha256",
                        "SCRAM-SHA-512" => "scram_sha512",
                        "OAUTHBEARER" => "oauthbearer",
                        _ if !protocol.starts_with("sasl_") => "none",
                        other => panic!("{name}: no KEDA name for the SASL mechanism {other}"),
                    };
                    assert_eq!(sasl, mechanism, "{name}: `{}`'s trigger logs in as the pods do", workload.name);
                    let tls = metadata["tls"].as_str() == Some("enable");
                    assert_eq!(
                        tls,
                        protocol.ends_with("ssl"),
                        "{name}: `{}`'s trigger uses TLS as the pods do",
                        workload.name
                    );
                    let group = metadata["consumerGroup"].as_str().expect("consumerGroup").to_owned();
                    triggered.insert((group, metadata["topic"].as_str().expect("topic").to_owned()));
                }
                assert_eq!(triggered, workload.reads, "{name}: the (group, topic) lags `{}` scales on", workload.name);
            }
            (None, Some(hpa)) => {
                let most = hpa["spec"]["maxReplicas"].as_u64().expect("maxReplicas");
                assert!(
                    most <= partitions,
                    "{name}: `{}` scales to {most} replicas, over {partitions} partitions",
                    workload.name
                );
            }
            _ => panic!("{name}: `{}` needs one ScaledObject or one HorizontalPodAutoscaler", workload.name),
        }

        // Stops after its drain; probes on its health port.
        let drain = settings.consumer.drain_timeout_ms;
        assert!(
            grace_period(pod) > drain,
            "{name}: `{}`'s grace period is not above its drain of {drain:?}",
            workload.name
        );
        let health = settings.consumer.health_listen.port();
        for (probe, path) in
            [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]
        {
            let get = &container[probe]["httpGet"];
            assert_eq!(get["path"], path, "{name}: `{}`'s {probe}", workload.name);
            assert_eq!(
                rendered.port(workload.name, &get["port"]),
                health,
                "{name}: `{}`'s {probe} port",
                workload.name
            );
        }
        let budget = rendered.all("PodDisruptionBudget").any(|pdb| selects(&pdb["spec"]["selector"], labels));
        assert!(budget, "{name}: `{}` has no PodDisruptionBudget", workload.name);
        let monitored = rendered.all("PodMonitor").any(|monitor| {
            let endpoints = monitor["spec"]["podMetricsEndpoints"].as_sequence().cloned().unwrap_or_default();
            selects(&monitor["spec"]["selector"], labels)
                && endpoints.iter().any(|endpoint| {
                    let relabels = endpoint["relabelings"].as_sequence().cloned().unwrap_or_default();
                    endpoint["path"] == "/metrics"
                        && rendered.port(workload.name, &endpoint["port"]) == health
                        && relabels.iter().any(|r| r["targetLabel"] == "job" && r["replacement"] == "consumers")
                })
        });
        assert!(monitored, "{name}: no PodMonitor scrapes `{}`'s /metrics as job `consumers`", workload.name);
    }

    // The producer: probes on producer.listen, a grace period above its shutdown timeout, a Service.
    let settings = rendered.settings("producer");
    let container = rendered.container("producer");
    for (probe, path) in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{name}: the producer's {probe}");
        assert_eq!(
            rendered.port("producer", &get["port"]),
            settings.producer.listen.port(),
            "{name}: the producer's {probe}"
        );
    }
    let pod = &rendered.get("Deployment", "producer")["spec"]["template"]["spec"];
    assert!(grace_period(pod) > settings.producer.shutdown_timeout_ms, "{name}: the producer's grace period");
    let service = rendered.get("Service", "producer");
    let target = &service["spec"]["ports"][0]["targetPort"];
    assert_eq!(rendered.port("producer", target), settings.producer.listen.port(), "{name}: the producer's Service");
    // Its event schemas are found: a relative path in the image's working directory, which holds the
    // repository's schemas/ (compose.rs checks the Dockerfile), an absolute one in a mounted volume.
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|mount| mount["mountPath"].as_str())
        .collect();
    for (group, route) in settings.producer.events.iter().filter(|(_, route)| !route.schema.is_empty()) {
        let path = Path::new(&route.schema);
        let found = if path.is_relative() {
            container["workingDir"].is_null() && root().join(path).is_file()
        } else {
            mounts.iter().any(|mount| path.starts_with(mount))
        };
        assert!(
            found,
            "{name}: producer.events.{group}.schema = {} is not in the producer's image or volumes",
            route.schema
        );
    }

    // Every courier pod runs restricted.
    for deployment in rendered.all("Deployment") {
        let pod = &deployment["spec"]["template"]["spec"];
        let workload = deployment["metadata"]["name"].as_str().expect("a name");
        if deployment["metadata"]["labels"]["app.kubernetes.io/part-of"] != "courier" {
            continue;
        }
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}: `{workload}` runs as root");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{name}: `{workload}`'s seccomp"
        );
        let context = &rendered.container(workload)["securityContext"];
        assert_eq!(context["readOnlyRootFilesystem"], true, "{name}: `{workload}`'s root filesystem is writable");
        assert_eq!(context["allowPrivilegeEscalation"], false, "{name}: `{workload}` may escalate");
        assert_eq!(context["capabilities"]["drop"][0], "ALL", "{name}: `{workload}` keeps capabilities");
    }

    // No secret in a ConfigMap or a literal variable.
    for config_map in rendered.all("ConfigMap") {
        let map = config_map["metadata"]["name"].as_str().expect("a name");
        for (key, value) in rendered.config_map_data(map) {
            let mut paths = Vec::new();
            if key.ends_with(".toml") {
                let table: toml::Table = toml::from_str(&value).expect("the ConfigMap's TOML parses");
                toml_paths(&table, &[], &mut paths);
            }
            paths.extend(variable_path(&key));
            for path in paths {
                assert!(
                    !is_secret(&path, &secret_fields),
                    "{name}: ConfigMap `{map}` holds the secret {}",
                    path.join(".")
                );
            }
        }
    }
    for deployment in rendered.all("Deployment") {
        let workload = deployment["metadata"]["name"].as_str().expect("a name");
        for container in deployment["spec"]["template"]["spec"]["containers"].as_sequence().into_iter().flatten() {
            for variable in container["env"].as_sequence().into_iter().flatten() {
                let key = variable["name"].as_str().unwrap_or_default();
                let secret = variable_path(key).is_some_and(|path| is_secret(&path, &secret_fields));
                assert!(
                    !secret || variable["value"].is_null(),
                    "{name}: `{workload}` sets the secret {key} in plain text"
                );
            }
        }
    }

    // The alert rules are alerts.yml's, and CourierConsumerMissing watches every consumer workload.
    let rule = rendered.all("PrometheusRule").next().unwrap_or_else(|| panic!("{name}: no PrometheusRule"));
    let (ours, theirs) = (rules(&rule["spec"]["groups"]), rules(&alerts["groups"]));
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "{name}: the alerts of alerts.yml");
    for (alert, rule) in &ours {
        if alert == "CourierConsumerMissing" {
            let expected: BTreeSet<String> = workloads.iter().map(|workload| workload.name.to_owned()).collect();
            assert_eq!(watched(rule["expr"].as_str().expect("expr")), expected, "{name}: CourierConsumerMissing");
        } else {
            // kustomize re-folds the block scalars: the same expression up to white space.
            let words =
                |rule: &Value| rule["expr"].as_str().expect("expr").split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(words(rule), words(&theirs[alert]), "{name}: {alert}'s expression is alerts.yml's");
        }
        assert_eq!(
            (&rule["for"], &rule["labels"]),
            (&theirs[alert]["for"], &theirs[alert]["labels"]),
            "{name}: {alert}"
        );
    }
}

#[test]
fn the_kubernetes_manifests_hold_what_only_courier_knows() {
    for kustomization in KUSTOMIZATIONS {
        check_invariants(&Rendered { name: kustomization, objects: render(kustomization) });
    }
}

#[test]
fn the_kubernetes_manifests_validate_against_their_schemas() {
    let validator = root().join("tests/independent/validate_kubernetes.py");
    for kustomization in KUSTOMIZATIONS {
        let rendered = tempfile::NamedTempFile::new().expect("a temporary file");
        let output =
            Command::new("kubectl").arg("kustomize").arg(root().join(kustomization)).output().expect("kubectl runs");
        assert!(
            output.status.success(),
            "kubectl kustomize {kustomization}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(rendered.path(), &output.stdout).expect("the rendering is written");
        let checked = Command::new("python3")
            .arg(&validator)
            .arg(rendered.path())
            .output()
            .expect("python3 runs (scripts/test.sh installs kubernetes-validate)");
        let report = String::from_utf8_lossy(&checked.stdout);
        assert!(
            checked.status.success(),
            "{kustomization} does not validate:\n{report}{}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}

/// A compose duration (`30s`, `1m30s`, `1500ms`).
fn compose_duration(text: &str) -> Duration {
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let value: u64 = number.parse().unwrap_or_else(|_| panic!("compose duration {text:?}"));
        number.clear();
        total += match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                Duration::from_millis(value)
            }
            ('h', _) => Duration::from_secs(value * 3600),
            ('m', _) => Duration::from_secs(value * 60),
            ('s', _) => Duration::from_secs(value),
            _ => panic!("compose duration {text:?}"),
        };
    }
    assert!(number.is_empty(), "compose duration {text:?} has no unit");
    total
}

#[test]
fn compose_lets_every_consumer_drain_before_it_is_killed() {
    let compose = compose();
    let shared = compose["x-courier-env"].as_mapping().expect("x-courier-env");
    for consumer in CONSUMERS {
        let service = &compose["services"][consumer.name];
        let mut env: HashMap<String, String> = HashMap::new();
        for (key, value) in shared.iter().chain(service["environment"].as_mapping().into_iter().flatten()) {
            env.insert(key.as_str().expect("a name").to_owned(), value.as_str().unwrap_or_default().to_owned());
        }
        let settings = Settings::load_with_env(None, Some(env)).expect("the compose settings load");
        let grace = service["stop_grace_period"].as_str().map(compose_duration).unwrap_or(Duration::from_secs(10));
        let drain = settings.consumer.drain_timeout_ms;
        assert!(
            grace > drain,
            "compose's `{}` is killed after {grace:?}, within its drain of {drain:?}",
            consumer.name
        );
    }
}
