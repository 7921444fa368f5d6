//! The rules that relate two settings, in one place; each section checks its own fields first
//! ([`Settings::validate`]). An error names the setting to change.

use super::{BodyMode, ForwardRoute, Settings, SettingsError, check};
use crate::formats::{Format, IdFrom};
use crate::mapping::has_expressions;

/// Checks every rule between two settings of `s`.
pub(super) fn check_all(s: &Settings) -> Result<(), SettingsError> {
    let (k, p, c) = (&s.kafka, &s.producer, &s.consumer);
    check(
        k.heartbeat_interval_ms * 3 <= k.session_timeout_ms,
        "kafka.heartbeat_interval_ms",
        "must be at most a third of kafka.session_timeout_ms (a member must get several heartbeats through before \
         its session expires)",
    )?;
    check(
        k.max_poll_interval_ms >= k.session_timeout_ms,
        "kafka.max_poll_interval_ms",
        "must be at least kafka.session_timeout_ms",
    )?;
    check(
        k.rejoin_unassigned_after_ms.is_none_or(|after| after >= 2 * k.session_timeout_ms),
        "kafka.rejoin_unassigned_after_ms",
        "must be 0 (never) or at least twice kafka.session_timeout_ms (a new member's first assignment can take \
         that long)",
    )?;
    check(
        p.request_timeout_ms > p.publish_timeout_ms,
        "producer.request_timeout_ms",
        "must be above producer.publish_timeout_ms (a request waits for the broker's acknowledgement)",
    )?;
    check(
        c.max_buffered_total >= c.max_buffered_per_partition,
        "consumer.max_buffered_total",
        "must be at least consumer.max_buffered_per_partition",
    )?;
    check(
        c.rebalance_timeout_ms < k.max_poll_interval_ms,
        "consumer.rebalance_timeout_ms",
        "must be below kafka.max_poll_interval_ms: the revoke waits on the poll thread, and a member that does not \
         poll within max_poll_interval_ms is thrown out of its group",
    )?;
    check(
        c.retry_max_backoff_ms >= c.retry_initial_backoff_ms,
        "consumer.retry_max_backoff_ms",
        "must be at least consumer.retry_initial_backoff_ms",
    )?;
    for (name, route) in &s.forward.routes {
        check(
            route.format.schema_format().is_none() || s.schema_registry.is_configured(),
            "schema_registry.url",
            &format!(
                "forward.routes.{name}.format = \"{}\" reads schemas from a schema registry: set its URL",
                route.format
            ),
        )?;
        check(
            !matches!(route.format, Format::Cloudevents | Format::CloudeventsBinary) || route.id_from == IdFrom::Offset,
            &format!("forward.routes.{name}.id_from"),
            "a CloudEvent is identified by its source and id: id_from applies to formats json, bytes and auto",
        )?;
        check(
            route.format != Format::Bytes || !matches!(route.id_from, IdFrom::Value(_)),
            &format!("forward.routes.{name}.id_from"),
            "a value read as bytes has no members: use \"offset\" or \"key\" with format = \"bytes\"",
        )?;
        let field = format!("forward.routes.{name}.batch_max_events");
        check(
            route.batch_max_events == 1 || route.format != Format::Bytes,
            &field,
            "a batch is a JSON array: batching needs a format whose records are JSON (not bytes)",
        )?;
        check(
            route.batch_max_events == 1 || route.mode == BodyMode::Structured,
            &field,
            "a batch is a JSON array of structured CloudEvents: batching needs mode = \"structured\"",
        )?;
        let dependent = event_dependent_keys(route);
        check(
            route.batch_max_events == 1 || dependent.is_empty(),
            &field,
            &format!(
                "a batch is one call: its path, query and headers cannot depend on the event ({}); use \
                 batch_max_events = 1, or static values",
                dependent.iter().map(|key| format!("forward.routes.{name}.{key}")).collect::<Vec<_>>().join(", ")
            ),
        )?;
        check(
            route.batch_max_events <= c.max_in_flight,
            &field,
            &format!(
                "must be at most consumer.max_in_flight ({}): each event of a batch holds one of its slots, so a \
                 larger batch never fills and every call waits its whole batch_max_wait_ms",
                c.max_in_flight
            ),
        )?;
    }
    for (name, api) in s.apis.iter() {
        let field = |key: &str| format!("apis.{name}.{key}");
        check(
            api.tls_certificate_location.is_empty() == api.tls_key_location.is_empty(),
            &field("tls_key_location"),
            "a client certificate needs both tls_certificate_location and tls_key_location",
        )?;
        if api.breaker_failure_rate_percent > 0 {
            let why = "must be positive while the breaker is on (breaker_failure_rate_percent > 0)";
            check(!api.breaker_cooldown_ms.is_zero(), &field("breaker_cooldown_ms"), why)?;
            check(!api.breaker_window_ms.is_zero(), &field("breaker_window_ms"), why)?;
            check(api.breaker_minimum_calls > 0, &field("breaker_minimum_calls"), why)?;
            check(api.breaker_minimum_failing_keys > 0, &field("breaker_minimum_failing_keys"), why)?;
        }
        check(
            api.max_backoff_ms.is_none_or(|most| most >= c.retry_initial_backoff_ms),
            &field("max_backoff_ms"),
            "must be 0 (consumer.retry_max_backoff_ms) or at least consumer.retry_initial_backoff_ms",
        )?;
    }
    Ok(())
}

/// The keys of `route`'s path, query and headers that hold `{{ … }}` expressions (`path`, `query.page`,
/// `headers.x-user`).
fn event_dependent_keys(route: &ForwardRoute) -> Vec<String> {
    let path = has_expressions(&route.path).then(|| "path".to_owned());
    let query = route.query.iter().filter(|(_, v)| has_expressions(v)).map(|(name, _)| format!("query.{name}"));
    let headers = route.headers.iter().filter(|(_, v)| has_expressions(v)).map(|(name, _)| format!("headers.{name}"));
    path.into_iter().chain(query).chain(headers).collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::load;

    #[test]
    fn the_rules_allow_what_they_do_not_forbid() {
        let route = [
            ("COURIER__FORWARD__ROUTES__CRM__TOPICS", "users.registered"),
            ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", "50"),
            ("COURIER__CONSUMER__MAX_IN_FLIGHT", "50"),
        ];
        assert!(load(&route).is_ok(), "a batch of max_in_flight fills");
        let rejoin = [("COURIER__KAFKA__REJOIN_UNASSIGNED_AFTER_MS", "90000")];
        assert!(load(&rejoin).is_ok(), "twice the session timeout");
        let breaker_off =
            [("COURIER__APIS__SMS__BREAKER_FAILURE_RATE_PERCENT", "0"), ("COURIER__APIS__SMS__BREAKER_WINDOW_MS", "0")];
        assert!(load(&breaker_off).is_ok(), "no window is needed without a breaker");
        let heartbeat =
            [("COURIER__KAFKA__SESSION_TIMEOUT_MS", "6000"), ("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", "2000")];
        assert!(load(&heartbeat).is_ok(), "a third of the session timeout");
        let keyed_json = [
            ("COURIER__FORWARD__ROUTES__CRM__TOPICS", "users"),
            ("COURIER__FORWARD__ROUTES__CRM__FORMAT", "json"),
            ("COURIER__FORWARD__ROUTES__CRM__ID_FROM", "value.user_id"),
            ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", "10"),
        ];
        assert!(load(&keyed_json).is_ok(), "JSON records identified by a member, in batches");
    }

    #[test]
    fn an_identity_rule_must_fit_the_format() {
        let route = |format: &str, id_from: &str, batch: &str| {
            let pairs = [
                ("COURIER__FORWARD__ROUTES__CRM__TOPICS", "users".to_owned()),
                ("COURIER__FORWARD__ROUTES__CRM__FORMAT", format.to_owned()),
                ("COURIER__FORWARD__ROUTES__CRM__ID_FROM", id_from.to_owned()),
                ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", batch.to_owned()),
            ];
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match load(&pairs) {
                Ok(_) => String::new(),
                Err(super::SettingsError::Invalid { setting, .. }) => setting,
                Err(other) => panic!("{other}"),
            }
        };
        assert_eq!(route("cloudevents", "key", "1"), "forward.routes.crm.id_from");
        assert_eq!(route("cloudevents-binary", "value.id", "1"), "forward.routes.crm.id_from");
        assert_eq!(route("bytes", "value.id", "1"), "forward.routes.crm.id_from");
        for format in ["avro", "protobuf", "json-schema"] {
            assert_eq!(route(format, "offset", "1"), "schema_registry.url", "{format} without a registry");
        }
        assert_eq!(route("bytes", "key", "5"), "forward.routes.crm.batch_max_events");
        assert_eq!(route("bytes", "key", "1"), "", "bytes identified by their key");
        assert_eq!(
            route("auto", "value.id", "5"),
            "",
            "auto: the rule applies to the records that are not CloudEvents"
        );
    }

    #[test]
    fn a_batch_cannot_have_a_path_or_headers_that_depend_on_the_event() {
        let batched = |key: &str, value: &str| {
            let variable = format!("COURIER__FORWARD__ROUTES__CRM__{key}");
            let pairs = [
                ("COURIER__FORWARD__ROUTES__CRM__TOPICS", "users"),
                ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", "10"),
                (variable.as_str(), value),
            ];
            load(&pairs)
        };
        match batched("PATH", "users/{{ .data.user_id }}") {
            Err(super::SettingsError::Invalid { setting, reason }) => {
                assert_eq!(setting, "forward.routes.crm.batch_max_events");
                assert!(reason.contains("forward.routes.crm.path"), "names the key: {reason}");
            }
            other => panic!("a templated path in batches: {other:?}"),
        }
        assert!(batched("PATH", "users").is_ok(), "a static path");
        assert!(batched("BODY", "{email: .data.email}").is_ok(), "a body program runs per event of a batch");
        assert!(batched("FILTER", ".data.plan == \"pro\"").is_ok(), "and a filter");
    }
}
