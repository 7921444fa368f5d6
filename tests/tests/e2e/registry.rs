//! Checks what follows from the registry of consumers (`courier_consumers::registry`), without Docker or a
//! broker.
//!
//! In the code, a consumer is its file, its binary and one registry entry; the test kit and `tools/chaos`
//! start consumers from the registry, the Docker image holds every binary of `consumers/src/bin/`, the test
//! kit points every API of the mock APIs' table at them, and `scripts/run-local.sh` starts every binary with
//! every `[apis.<name>]` of `config/`. The files that cannot read Rust list consumers or their APIs by hand ([`HAND_KEPT`]); these
//! tests hold each to the registry, so a new consumer missing from one fails here, naming it.

use std::collections::BTreeSet;

use courier_consumers::registry::CONSUMERS;
use mock_apis::Api;

use super::compose::{compose, read};

/// The files outside the code that list consumers or their APIs by hand, and what a new consumer adds to
/// each (`docs/writing-a-consumer.md` names them all).
const HAND_KEPT: [(&str, &str); 7] = [
    ("docker-compose.yml", "a service, the topics `kafka-init` creates, the base URL of each API"),
    ("deploy/prometheus/prometheus.yml", "its service among the scraped names"),
    ("deploy/prometheus/alerts.yml", "its service in `CourierConsumerMissing`"),
    (
        "deploy/kubernetes/base",
        "its `<name>.yaml` (Deployment, PodDisruptionBudget, ScaledObject on its groups and topics) in \
         `kustomization.yaml`, its service in `CourierConsumerMissing` of `prometheus-rule.yaml`",
    ),
    ("config/default.toml", "an `[apis.<name>]` block per API it calls"),
    ("tools/mock-apis", "an entry in the table of APIs (`src/api.rs`) for a new API"),
    ("tools/demo", "what arrives at a new API"),
];

/// The names of the registered consumers.
fn consumer_names() -> BTreeSet<&'static str> {
    CONSUMERS.iter().map(|consumer| consumer.name).collect()
}

/// The APIs the registered consumers call.
fn consumer_apis() -> BTreeSet<&'static str> {
    CONSUMERS.iter().flat_map(|consumer| consumer.apis.iter().copied()).collect()
}

#[test]
fn compose_prometheus_the_configuration_the_mock_apis_and_the_demo_follow_the_registry() {
    let apis = consumer_apis();
    let compose = compose();
    let env = compose["x-courier-env"].as_mapping().expect("docker-compose.yml has x-courier-env");
    let base_urls: BTreeSet<String> = env
        .iter()
        .filter_map(|(key, value)| {
            let api = key.as_str()?.strip_prefix("COURIER__APIS__")?.strip_suffix("__BASE_URL")?.to_lowercase();
            assert_eq!(value.as_str(), Some(format!("http://mock-apis:8090/{api}").as_str()), "compose's {api} URL");
            Some(api)
        })
        .collect();
    assert_eq!(base_urls.iter().map(String::as_str).collect::<BTreeSet<_>>(), apis, "compose's base URLs");

    let prometheus: serde_norway::Value =
        serde_norway::from_str(&read("deploy/prometheus/prometheus.yml")).expect("prometheus.yml parses");
    let jobs = prometheus["scrape_configs"].as_sequence().expect("scrape_configs");
    let consumers_job = jobs.iter().find(|job| job["job_name"] == "consumers").expect("a `consumers` job");
    let scraped: BTreeSet<&str> = consumers_job["dns_sd_configs"][0]["names"]
        .as_sequence()
        .expect("the consumers job's DNS names")
        .iter()
        .filter_map(serde_norway::Value::as_str)
        .collect();
    assert_eq!(scraped, consumer_names(), "the services prometheus.yml scrapes");
    let alerts = read("deploy/prometheus/alerts.yml");
    let missing: BTreeSet<&str> = alerts
        .split("absent(up{job=\"consumers\", service=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(missing, consumer_names(), "the services CourierConsumerMissing watches (alerts.yml)");

    let defaults: toml::Table = toml::from_str(&read("config/default.toml")).expect("default.toml parses");
    let blocks: BTreeSet<&str> = defaults["apis"].as_table().expect("[apis]").keys().map(String::as_str).collect();
    assert_eq!(&blocks - &BTreeSet::from(["defaults"]), apis, "the [apis.<name>] blocks of config/default.toml");

    let demo = read("tools/demo/src/main.rs");
    for api in &apis {
        let served = Api::ALL.into_iter().find(|served| served.as_str() == *api);
        assert_eq!(served.map(Api::base_path), Some(format!("/{api}").as_str()), "the mock APIs serve `{api}`");
        assert!(demo.contains(&format!("\"{api}/effects\"")), "the demo shows what arrives at `{api}`");
    }
}

#[test]
fn a_consumer_is_its_file_its_binary_and_one_registry_entry() {
    let lib = read("consumers/src/lib.rs");
    for consumer in CONSUMERS {
        let name = consumer.name;
        assert!(lib.contains(&format!("\npub mod {name};")), "consumers/src/lib.rs declares `{name}`");
        let binary = read(&format!("consumers/src/bin/{name}.rs"));
        assert!(
            binary.contains(&format!("courier_consumers::main(courier_consumers::registry::{},", name.to_uppercase())),
            "{name}'s binary is one call of the generic main"
        );
    }
    // Every binary of consumers/src/bin/ is a registered consumer, but `forward` (its routes are settings).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../consumers/src/bin");
    let binaries: BTreeSet<String> = std::fs::read_dir(root)
        .expect("consumers/src/bin")
        .map(|entry| entry.expect("an entry").path().file_stem().expect("a file").to_string_lossy().into_owned())
        .filter(|name| name != "forward")
        .collect();
    assert_eq!(binaries.iter().map(String::as_str).collect::<BTreeSet<_>>(), consumer_names());
    // What follows from the entry with no list to edit.
    assert!(read("Dockerfile").contains("consumers/src/bin/*.rs"), "the image copies every consumer binary");
    assert!(read("tools/chaos/src/stage.rs").contains("registry::CONSUMERS"), "chaos starts the registered");
    assert!(read("tests/src/app.rs").contains("Api::ALL"), "the test kit points the mock APIs' table at them");
    let run_local = read("scripts/run-local.sh");
    assert!(run_local.contains("config/default.toml"), "run-local.sh reads the API blocks");
    assert!(run_local.contains("cd consumers/src/bin && ls"), "run-local.sh starts every consumer binary");
    // What the documents say it costs: these three, and the files kept by hand.
    let page = read("docs/writing-a-consumer.md").split_whitespace().collect::<Vec<_>>().join(" ");
    for (file, what) in HAND_KEPT {
        assert!(page.contains(&format!("`{file}` ({what})")), "docs/writing-a-consumer.md names `{file}` ({what})");
    }
    let readme = read("README.md").split_whitespace().collect::<Vec<_>>().join(" ");
    let claim = "a new consumer is its file, its binary and one entry in `consumers/src/registry.rs`";
    assert!(readme.contains(claim) && readme.contains("tests/tests/e2e/registry.rs"), "README: {claim}");
}
