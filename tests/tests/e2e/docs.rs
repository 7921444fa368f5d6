//! Checks that the documents under `docs/` say what the code and its files say, without a broker.
//!
//! * `docs/configuration.md` has a row for every key of `config/default.toml`, with that file's default
//!   (`[apis.defaults]` keys stand as `apis.<name>.…`), and every key it documents is one courier accepts;
//! * README and `docs/forward.md` show the routes of `config/examples/user-registration.toml` as that file has
//!   them, and README's signed webhook recipe the partner route and API of `config/examples/signed-webhooks.toml`
//!   (which `signatures.rs` runs), and the recipe of `config/examples/status-rules.toml` as that file has it;
//! * `docs/operations.md` names the consumer services Prometheus scrapes as `deploy/prometheus/prometheus.yml`
//!   does.
//!
//! (`docs/operations.md`'s metric table and histogram buckets are checked next to the metrics' catalogue, in
//! `shared/src/telemetry/metrics.rs`.)

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use courier::settings::Settings;

/// Reads a file of the workspace, `relative` to its root (this crate lives in `tests/`).
fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Every key of `table` as a dotted name (`kafka.sasl.mechanism`), with its value; tables are walked into,
/// arrays are values.
fn flatten(prefix: &str, table: &toml::Table, keys: &mut BTreeMap<String, toml::Value>) {
    for (key, value) in table {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Table(inner) => flatten(&name, inner, keys),
            value => {
                keys.insert(name, value.clone());
            }
        }
    }
}

/// The rows of the reference tables in `page`: each key (the first cell, one dotted name in backticks) with
/// its default cell.
fn documented(page: &str) -> BTreeMap<String, String> {
    let mut rows = BTreeMap::new();
    for line in page.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, key, default, ..] = cells.as_slice() else { continue };
        let Some(key) = key.strip_prefix('`').and_then(|key| key.strip_suffix('`')) else { continue };
        if key.contains('.') && !key.contains([' ', '`', '=']) {
            assert!(rows.insert(key.to_owned(), (*default).to_owned()).is_none(), "`{key}` is documented twice");
        }
    }
    rows
}

/// The error settings give when `key` (placeholders such as `<name>` replaced by a name) is set in the
/// environment, if any.
fn load_with(key: &str) -> Option<String> {
    let key: Vec<String> = key
        .split('.')
        .map(|segment| if segment.starts_with('<') { "docs".to_owned() } else { segment.to_uppercase() })
        .collect();
    let env = HashMap::from([(format!("COURIER__{}", key.join("__")), "1".to_owned())]);
    Settings::load_with_env(None, Some(env)).err().map(|error| error.to_string())
}

#[test]
fn the_configuration_reference_has_every_key_of_default_toml_with_its_default_and_only_real_keys() {
    let defaults: toml::Table = toml::from_str(&read("config/default.toml")).expect("default.toml parses");
    let mut keys = BTreeMap::new();
    flatten("", &defaults, &mut keys);
    let page = read("docs/configuration.md");
    let mut rows = documented(&page);
    assert!(rows.len() > 50, "the reference tables were not found: {rows:?}");

    let mut wrong = Vec::new();
    for (key, value) in &keys {
        let documented_as = match key.strip_prefix("apis.defaults.") {
            Some(api_key) => format!("apis.<name>.{api_key}"),
            None => key.clone(),
        };
        let expected = format!("`{value}`");
        match rows.remove(&documented_as) {
            None => wrong.push(format!("`{documented_as}` (from default.toml's `{key}`) has no row")),
            Some(default) if default != expected => {
                wrong.push(format!("`{documented_as}`: the page says {default}, default.toml {expected}"))
            }
            Some(_) => {}
        }
    }
    assert!(load_with("consumer.no_such_key").is_some_and(|error| error.contains("unknown field")));
    for (key, default) in rows {
        if default.starts_with('`') {
            wrong.push(format!("`{key}` is not in default.toml, so its default cell may not be a value: {default}"));
        }
        if let Some(error) = load_with(&key).filter(|error| error.contains("unknown field")) {
            wrong.push(format!("`{key}` is not a setting: {error}"));
        }
    }
    assert!(wrong.is_empty(), "docs/configuration.md disagrees with config/default.toml:\n{}", wrong.join("\n"));
}

#[test]
fn the_readme_and_the_forward_page_show_the_example_routes_as_they_are() {
    let example: toml::Table =
        toml::from_str(&read("config/examples/user-registration.toml")).expect("the example parses");
    for page in ["README.md", "docs/forward.md"] {
        let text = read(page);
        let block = text
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap_or_else(|| panic!("{page} shows no toml block"));
        let shown: toml::Table = toml::from_str(block).unwrap_or_else(|error| panic!("{page}'s toml block: {error}"));
        assert_eq!(shown, example, "{page} shows other routes than config/examples/user-registration.toml");
    }
}

#[test]
fn the_readmes_signed_webhook_recipe_is_the_partner_route_and_api_of_its_example() {
    let example: toml::Table =
        toml::from_str(&read("config/examples/signed-webhooks.toml")).expect("the example parses");
    let readme = read("README.md");
    let block = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("[apis.partner.signing]"))
        .expect("README shows the signed webhook recipe");
    let shown: toml::Table = toml::from_str(block).unwrap_or_else(|error| panic!("README's recipe: {error}"));
    let mut expected: toml::Table = toml::from_str("[forward.routes]\n[apis]\n").expect("two tables");
    expected["forward"]["routes"]
        .as_table_mut()
        .expect("a table")
        .insert("partner".into(), example["forward"]["routes"]["partner"].clone());
    expected["apis"].as_table_mut().expect("a table").insert("partner".into(), example["apis"]["partner"].clone());
    assert_eq!(shown, expected, "README shows another partner route or API than config/examples/signed-webhooks.toml");
}

#[test]
fn the_readme_shows_the_status_rules_recipe_as_its_file_has_it() {
    let example: toml::Table = toml::from_str(&read("config/examples/status-rules.toml")).expect("the example parses");
    let readme = read("README.md");
    let block = readme
        .split("```toml\n")
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("[forward.routes.contacts]"))
        .expect("README shows the status rules recipe");
    let shown: toml::Table = toml::from_str(block).expect("README's status rules block parses");
    assert_eq!(shown, example, "README shows other settings than config/examples/status-rules.toml");
}

#[test]
fn the_operations_page_names_the_consumer_services_prometheus_scrapes() {
    let config: serde_norway::Value =
        serde_norway::from_str(&read("deploy/prometheus/prometheus.yml")).expect("prometheus.yml parses");
    let mut services: Vec<String> = Vec::new();
    for job in config["scrape_configs"].as_sequence().expect("scrape_configs") {
        for discovery in job["dns_sd_configs"].as_sequence().into_iter().flatten() {
            let names = discovery["names"].as_sequence().expect("dns_sd_configs names");
            services.extend(names.iter().map(|name| format!("`{}`", name.as_str().expect("a service name"))));
        }
    }
    let (last, others) = services.split_last().expect("prometheus.yml scrapes consumer services");
    let listed = if others.is_empty() { last.clone() } else { format!("{} and {last}", others.join(", ")) };
    let claim = format!("every replica of the consumer services {listed}");
    let page = read("docs/operations.md").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(page.contains(&claim), "docs/operations.md should say that Prometheus scrapes {claim}");
}
