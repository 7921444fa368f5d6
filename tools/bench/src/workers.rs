//! The two references the benchmark compares courier with, each run in its own process until killed
//! (`bench worker --mode baseline|ceiling`); courier itself runs as its real `inventory` binary.
//!
//! Both references make the cheapest call that delivers a record: its value, as it is, POSTed with an
//! idempotency key made of its coordinates. No parsing, no mapping: what they spend per record is the floor
//! of what any consumer spends, so courier's CPU per event is compared with the least it could be.

use std::collections::HashMap;
use std::sync::Arc;

use clap::Args;
use courier::settings::Settings;
use courier_producer::order::orders_topic;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::Semaphore;

/// Worker command line.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// `baseline` or `ceiling`.
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
    match args.mode.as_str() {
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
        .set("session.timeout.ms", settings.kafka.session_timeout_ms.as_millis().to_string())
        .set("heartbeat.interval.ms", settings.kafka.heartbeat_interval_ms.as_millis().to_string());
    if store_after_call {
        config.set("enable.auto.offset.store", "false");
    }
    Ok(config.create()?)
}

/// The call both references make for one record: its value as the body, its coordinates as the key.
async fn call(http: &reqwest::Client, url: &str, key: String, payload: Vec<u8>) {
    let request = http
        .post(url)
        .header("Idempotency-Key", key)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(payload);
    let _ = request.send().await.and_then(|r| r.error_for_status());
}

/// `<partition>:<offset>` of `message`: unique per record of the topic, the same on every redelivery.
fn key(message: &impl Message) -> String {
    format!("{}:{}", message.partition(), message.offset())
}

/// One sequential consumer per partition in one group: recv → call → store the offset (committed every 5 s).
///
/// Each consumer is assigned its partition rather than subscribing, so the measurement sees the steady state
/// of such a deployment and not the group's rebalancing as its members join one by one.
async fn baseline(settings: &Settings, group: &str) -> anyhow::Result<()> {
    let url = format!("{}/reservations", settings.apis.get("inventory")?.base_url.as_str());
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for partition in 0..settings.topics.partitions {
        let consumer = consumer(settings, group, true)?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(orders_topic(&settings.topics), partition, Offset::Stored)?;
        consumer.assign(&assignment)?;
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok(message) = consumer.recv().await else { continue };
                call(&http, &url, key(&message), message.payload().unwrap_or_default().to_vec()).await;
                let _ = consumer.store_offset_from_message(&message);
            }
        }));
    }
    futures::future::join_all(tasks).await;
    Ok(())
}

/// One consumer handing every record to its own task, `max_in_flight` at once, no order, no offsets.
async fn ceiling(settings: &Settings, group: &str) -> anyhow::Result<()> {
    let url = Arc::new(format!("{}/reservations", settings.apis.get("inventory")?.base_url.as_str()));
    let http = reqwest::Client::new();
    let slots = Arc::new(Semaphore::new(settings.consumer.max_in_flight));
    let consumer = consumer(settings, group, false)?;
    consumer.subscribe(&[orders_topic(&settings.topics)])?;
    loop {
        let Ok(message) = consumer.recv().await else { continue };
        let (key, payload) = (key(&message), message.payload().unwrap_or_default().to_vec());
        let permit = Arc::clone(&slots).acquire_owned().await?;
        let (http, url) = (http.clone(), Arc::clone(&url));
        tokio::spawn(async move {
            call(&http, &url, key, payload).await;
            drop(permit);
        });
    }
}
