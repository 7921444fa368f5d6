//! Broker faults Tansu cannot be made to show, on librdkafka's in-process mock cluster.

use courier_consumers::inventory::Inventory;
use courier_tests::WAIT;
use std::time::{Duration, Instant};

use courier::delivery::dlq::dlq_topic;
use courier::telemetry::metrics::COMMITTED_OFFSET as COMMITTED;
use courier_consumers::order_topics::OrderTopics;
use courier_tests::app::{sample_order, spawn_app_on};
use courier_tests::scrape::scrape;
use mock_apis::Api;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// The sum of the offsets `group` has committed on `topic`'s `partitions` (none counts 0).
fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let reader: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", group).create().expect("a reader");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = reader.committed_offsets(list, Duration::from_secs(10)).expect("committed offsets");
    committed.elements().iter().filter_map(|e| if let Offset::Offset(o) = e.offset() { Some(o) } else { None }).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_the_broker_refused_is_repaired_though_no_new_event_comes() {
    const N: usize = 20;
    let cluster = MockCluster::new(1).expect("a mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    // The mock cluster does not answer CreateTopics: the test creates the topics itself.
    let app = spawn_app_on(&bootstrap, &[("COURIER__TOPICS__CREATE", "false")]).await;
    let (topic, partitions) = (app.settings.topics.orders_created().to_owned(), app.settings.topics.partitions);
    let group = app.settings.kafka.group_id("inventory");
    for source in [topic.as_str(), app.settings.topics.payment_failed()] {
        for name in [source.to_owned(), dlq_topic(source, &group)] {
            cluster.create_topic(&name, partitions, 1).expect("a topic on the mock cluster");
        }
    }
    for i in 0..N {
        assert_eq!(app.post_order(&sample_order(i), None).await.status(), 202);
    }
    // Every offset commit is refused (a non-retriable error) until the errors are cleared. librdkafka reports
    // the result of an asynchronous manual commit to nobody here, so the consumer cannot see the refusals.
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE; 100_000],
    );
    let consumer = app.consumer(Inventory).start();
    app.mock.wait_for_effects(Api::Inventory, N, WAIT).await.expect("every order reserved");
    // The consumer has sent (to no avail) a commit of every watermark at the end: its gauge says so.
    let metrics_url = format!("{}/metrics", app.address);
    let deadline = Instant::now() + WAIT;
    loop {
        let sent = scrape(&metrics_url).await.expect("a scrape").sum(COMMITTED, &[("topic", &topic)]);
        if sent == N as f64 {
            break;
        }
        assert!(Instant::now() < deadline, "the consumer never sent a commit of all {N} events: {sent}");
        // Polling an HTTP endpoint: a commit has no event to await.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(committed(&bootstrap, &group, &topic, partitions) < N as i64, "the refused commits left the group behind");

    // The broker accepts commits again; every event is delivered, so no watermark moves any more: only the
    // periodic commit of every watermark can bring the group's offsets to the end.
    cluster.clear_request_errors(RDKafkaApiKey::OffsetCommit);
    let deadline = Instant::now() + courier::delivery::RECOMMIT_EVERY * 3;
    loop {
        let now = committed(&bootstrap, &group, &topic, partitions);
        if now == N as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "the group's offsets stayed at {now} of {N}");
        // Polling the broker's committed offsets: there is no event to await.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(app.mock.stats(Api::Inventory).effects, N as u64);
    consumer.stop().await.expect("the consumer stops cleanly");
    app.shutdown().await;
}
