//! The workers the benchmark compares; each runs in its own process until killed.

use std::collections::HashMap;
use std::sync::Arc;

use clap::Args;
use courier::settings::Settings;
use courier_consumers::inventory::Inventory;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Worker command line.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// `courier`, `baseline` or `ceiling`.
    #[arg(long)]
    mode: String,
    /// Consumer group.
    #[arg(long)]
    group: String,
}

/// Runs the worker until the process is killed.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let mut env: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("COURIER__")).collect();
    env.insert("COURIER__KAFKA__GROUP_ID_PREFIX".into(), format!("{}-", args.group));
    let settings = Settings::load_with_env(None, Some(env))?;
    courier::telemetry::init(&settings.telemetry, "bench");
    match args.mode.as_str() {
        "courier" => Ok(courier::delivery::run::<Inventory>(&settings, CancellationToken::new()).await?),
        "baseline" => baseline(&settings, &args.group).await,
        "ceiling" => ceiling(&settings, &args.group).await,
        other => anyhow::bail!("unknown worker mode {other:?}"),
    }
}

fn consumer(settings: &Settings, group: &str, store_after_call: bool) -> anyhow::Result<StreamConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.kafka.bootstrap_servers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("session.timeout.ms", settings.kafka.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", settings.kafka.heartbeat_interval_ms.to_string());
    if store_after_call {
        config.set("enable.auto.offset.store", "false");
    }
    Ok(config.create()?)
}

/// The reservation call every worker makes for one record.
async fn call(http: &reqwest::Client, url: &str, payload: Option<&[u8]>) {
    let event: Value = payload.and_then(|p| serde_json::from_slice(p).ok()).unwrap_or_default();
    let data = &event["data"];
    let items: Vec<Value> = data["items"]
        .as_array()
        .map(|items| items.iter().map(|i| json!({"sku": i["sku"], "quantity": i["quantity"]})).collect())
        .unwrap_or_default();
    let body = json!({"order_id": data["order_id"], "items": items});
    let key = format!("bench:{}", event["id"].as_str().unwrap_or(""));
    let _ = http.post(url).header("Idempotency-Key", key).json(&body).send().await.and_then(|r| r.error_for_status());
}

/// One sequential consumer per partition in one group: recv → call → store the offset (committed every 5 s).
///
/// Each consumer is assigned its partition rather than subscribing, so the measurement sees the steady state
/// of such a deployment and not the group's rebalancing as its members join one by one.
async fn baseline(settings: &Settings, group: &str) -> anyhow::Result<()> {
    let url = format!("{}/reservations", settings.apis.get("inventory")?.base_url);
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for partition in 0..settings.topics.partitions {
        let consumer = consumer(settings, group, true)?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&settings.topics.orders_created, partition, Offset::Stored)?;
        consumer.assign(&assignment)?;
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok(message) = consumer.recv().await else { continue };
                call(&http, &url, message.payload()).await;
                let _ = consumer.store_offset_from_message(&message);
            }
        }));
    }
    futures::future::join_all(tasks).await;
    Ok(())
}

/// One consumer handing every record to its own task, `max_in_flight` at once, no order, no offsets.
async fn ceiling(settings: &Settings, group: &str) -> anyhow::Result<()> {
    let url = Arc::new(format!("{}/reservations", settings.apis.get("inventory")?.base_url));
    let http = reqwest::Client::new();
    let slots = Arc::new(Semaphore::new(settings.consumer.max_in_flight));
    let consumer = consumer(settings, group, false)?;
    consumer.subscribe(&[&settings.topics.orders_created])?;
    loop {
        let Ok(message) = consumer.recv().await else { continue };
        let payload = message.payload().map(<[u8]>::to_vec);
        let permit = Arc::clone(&slots).acquire_owned().await?;
        let (http, url) = (http.clone(), Arc::clone(&url));
        tokio::spawn(async move {
            call(&http, &url, payload.as_deref()).await;
            drop(permit);
        });
    }
}
