//! One trace per order, across the broker: the spans exported over OTLP to an in-process collector (a real
//! OTLP/gRPC server) form one connected tree, from the client's request through the order API, the publish,
//! each consumer's processing, every HTTP call, the `order.payment_failed` publish and the release it causes.
//!
//! One test in this file: the tracing subscriber and its exporter are the process's.

use courier_tests::WAIT;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use courier::settings::{LogFormat, TelemetrySettings};
use courier_consumers::order_topics::OrderTopics;
use courier_tests::app::{registry, spawn_app};
use mock_apis::Api;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value;
use serde_json::json;

/// One exported span, as the collector received it.
#[derive(Debug, Clone)]
struct Span {
    /// 32 hex digits.
    trace_id: String,
    /// 16 hex digits.
    span_id: String,
    /// 16 hex digits; empty for a root.
    parent: String,
    /// The span's name.
    name: String,
    /// OTLP span kind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    kind: i32,
    /// String attributes.
    attributes: HashMap<String, String>,
    /// The resource's `service.name`.
    service: String,
}

/// An OTLP trace collector keeping what it is sent.
#[derive(Default, Clone)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let text = |value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match value
            .as_ref()
            .and_then(|v| v.value.as_ref())
        {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            Some(any_value::Value::IntValue(i)) => i.to_string(),
            Some(other) => format!("{other:?}"),
            None => String::new(),
        };
        let mut spans = self.0.lock().expect("collector lock");
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| text(&kv.value))
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Span {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    name: span.name.clone(),
                    kind: span.kind,
                    attributes: span.attributes.iter().map(|kv| (kv.key.clone(), text(&kv.value))).collect(),
                    service: service.clone(),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// Starts the collector on a free port of loopback (the exporter connects, and reconnects, when it exports).
async fn start_collector() -> (Collector, SocketAddr) {
    let port = courier_tests::broker::free_port().expect("a free port");
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let collector = Collector::default();
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(tonic::transport::Server::builder().add_service(service).serve(address));
    (collector, address)
}

/// The span with `name` whose parent is `parent`, within `spans` (panics naming what is missing).
fn child<'s>(spans: &'s [Span], parent: &Span, name: &str, also: impl Fn(&Span) -> bool) -> &'s Span {
    spans.iter().find(|s| s.parent == parent.span_id && s.name == name && also(s)).unwrap_or_else(|| {
        let children: Vec<_> =
            spans.iter().filter(|s| s.parent == parent.span_id).map(|s| (&s.name, &s.attributes)).collect();
        panic!("no {name:?} span under {:?} {:?}; its children: {children:?}", parent.name, parent.attributes)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_order_is_one_connected_trace_across_the_broker() {
    let (collector, address) = start_collector().await;
    // Before the test kit installs its subscriber: this one exports to the collector.
    let telemetry = TelemetrySettings {
        log_level: "off".into(),
        log_format: LogFormat::Pretty,
        otlp_endpoint: format!("http://{address}"),
        statistics_interval_ms: None,
    };
    courier::telemetry::init(&telemetry, "courier-trace-test");
    let app = spawn_app().await;

    // The client's own trace: the order API continues it.
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    // A total ending in 13 is declined by the mock payment API: payment publishes order.payment_failed and
    // inventory releases the reservation.
    let declined = json!({"customer": {"id": "c-trace", "email": "trace@example.com"},
                          "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 1313}], "currency": "EUR"});
    let response = app
        .http
        .post(format!("{}/v1/orders", app.address))
        .header("traceparent", format!("00-{client_trace}-{client_span}-01"))
        .json(&declined)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 202);
    assert!(response.headers().contains_key("x-request-id"), "the answer carries its request id");

    let inventory = app.start(registry::INVENTORY, &app.settings);
    let reservation = app.mock.wait_for_effects(Api::Inventory, 1, WAIT).await.expect("reserved");
    let payment = app.start(registry::PAYMENT, &app.settings);
    let release = app.mock.wait_for_effects(Api::InventoryRelease, 1, WAIT).await.expect("released");
    payment.stop().await.expect("payment stops");
    inventory.stop().await.expect("inventory stops");
    courier::telemetry::shutdown();

    let spans: Vec<Span> =
        collector.0.lock().expect("lock").iter().filter(|s| s.trace_id == client_trace).cloned().collect();
    assert!(spans.len() >= 9, "the order's trace has its spans: {spans:#?}");
    assert!(spans.iter().all(|s| s.service == "courier-trace-test"), "service.name is the binary's");

    // The order API: a server span under the client's span, the publish under it.
    let request = spans.iter().find(|s| s.parent == client_span).expect("the request span continues the client's");
    assert_eq!((request.name.as_str(), request.kind), ("POST /v1/orders", 2));
    let order = child(&spans, request, "order", |_| true);
    let created = app.settings.topics.orders_created();
    let publish = child(&spans, order, &format!("publish {created}"), |s| s.kind == 4);

    // Across the broker: each consumer's span is a child of the publish span, and its HTTP call a child of it.
    let consumer_span = |parent: &Span, consumer: &str| {
        let span =
            child(&spans, parent, "event", |s| s.attributes.get("consumer").map(String::as_str) == Some(consumer));
        assert_eq!(span.kind, 5, "a consumer span");
        span
    };
    let reserving = consumer_span(publish, "inventory");
    let reserve_call = child(&spans, reserving, "POST", |s| s.kind == 3);
    let charging = consumer_span(publish, "payment");
    let charge_call = child(&spans, charging, "POST", |s| s.kind == 3);
    assert_eq!(charge_call.attributes.get("http.response.status_code").map(String::as_str), Some("402"));
    // The API received the call span's context.
    let sent = |span: &Span| format!("00-{client_trace}-{}-01", span.span_id);
    assert_eq!(reservation[0].traceparent.as_deref(), Some(sent(reserve_call).as_str()));

    // The decline: payment publishes order.payment_failed under its event span; inventory releases under that.
    let failed_topic = app.settings.topics.payment_failed();
    let failed = child(&spans, charging, &format!("publish {failed_topic}"), |s| s.kind == 4);
    let releasing = consumer_span(failed, "inventory");
    let release_call = child(&spans, releasing, "POST", |s| s.kind == 3);
    assert_eq!(release[0].traceparent.as_deref(), Some(sent(release_call).as_str()));

    // Every span of the trace hangs from the client's span: one connected tree.
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    for span in &spans {
        let mut at = span;
        while at.parent != client_span {
            at = by_id
                .get(at.parent.as_str())
                .unwrap_or_else(|| panic!("{:?} has a parent outside the trace", span.name));
        }
    }
    app.shutdown().await;
}
