//! courier's end-to-end tests, one module per concern, linked into one binary (one build, one shared test
//! broker). Each test spawns what it needs (`spawn_app()`: mock APIs, the producer, consumers in-process) over
//! topics and consumer groups of its own, so the tests run side by side.
//!
//! Three suites keep binaries of their own because each installs something process-wide that the others
//! would disturb: `metrics` (counts in the global metrics recorder), `traces` (the exporting tracing
//! subscriber) and `personal_data` (a subscriber capturing every log line).

mod adaptive_concurrency;
mod asyncapi;
mod broker_faults;
mod compose;
mod delivery;
mod deploy;
mod dlq_tool;
mod docs;
mod downstream_auth;
mod events_api;
mod failure_routing;
mod formats;
mod forward;
mod openapi_fuzz;
mod order_api;
mod order_flow;
mod order_saga;
mod partitioning;
mod registry;
mod request_mapping;
mod secured_cluster;
mod signatures;
mod status_policy;
