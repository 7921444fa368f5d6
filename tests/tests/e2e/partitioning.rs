//! Keys land where the Java client puts them: every courier producer uses librdkafka's `murmur2_random`
//! partitioner, so an order keyed by its id shares a partition (and so its order) with events other teams'
//! Java producers write for the same id.

use std::time::Duration;

use courier::settings::TopicSettings;
use courier_consumers::order_topics::OrderTopics;
use courier_tests::java_partitioner::{JAVA_MURMUR2_VECTORS, java_partition};
use courier_tests::kafka_probe::read_all;
use courier_tests::{app::sample_order, spawn_app};
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_courier_producer_puts_every_key_on_the_java_clients_partition() {
    let app = spawn_app().await;
    let mut keys: Vec<String> = JAVA_MURMUR2_VECTORS.iter().map(|(key, _)| (*key).to_owned()).collect();
    keys.extend((0..200).map(|i| format!("order-{i}-{}", uuid::Uuid::new_v4())));
    for partitions in [16, 7] {
        let topic = format!("{}.p{partitions}", app.settings.topics.orders_created());
        let topics = TopicSettings { partitions, ..app.settings.topics.clone() };
        courier::kafka::ensure_topics(&app.settings.kafka, &topics, &[&topic]).await.expect("topic created");
        let producer: FutureProducer =
            courier::kafka::producer_config(&app.settings.kafka, "partitioning", Duration::from_secs(30))
                .create()
                .expect("producer");
        let mut misplaced = Vec::new();
        for key in &keys {
            let record = FutureRecord::to(&topic).key(key).payload("{}");
            let delivery = producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("acked");
            let java = java_partition(key.as_bytes(), partitions);
            if delivery.partition != java {
                misplaced.push(format!("{key}: courier {}, Java {java}", delivery.partition));
            }
        }
        assert!(
            misplaced.is_empty(),
            "{partitions} partitions: {} of {} keys misplaced: {misplaced:?}",
            misplaced.len(),
            keys.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_api_publishes_each_order_on_the_java_clients_partition_for_its_id() {
    let app = spawn_app().await;
    for i in 0..40 {
        let response = app.post_order(&sample_order(i), None).await;
        assert_eq!(response.status(), 202);
    }
    let records = read_all(&app.bootstrap, app.settings.topics.orders_created(), 40, Duration::from_secs(30))
        .await
        .expect("records read");
    assert_eq!(records.len(), 40);
    let partitions = app.settings.topics.partitions;
    let used: std::collections::HashSet<i32> = records.iter().map(|r| r.partition).collect();
    assert!(used.len() > 1, "40 random ids spread over several of {partitions} partitions: {used:?}");
    for record in &records {
        let key = record.key.as_deref().expect("orders are keyed");
        assert_eq!(record.partition, java_partition(key, partitions), "order {}", String::from_utf8_lossy(key));
    }
}
