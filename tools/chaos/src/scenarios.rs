//! The scenarios, each on a stage of its own, each ending in an [`Outcome`] with its figures.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use courier::health::Health;
use courier::kafka::headers::RawHeader;
use mock_apis::{Api, Faults};
use rand::Rng;

use crate::audit::{self, APIS, ApiAudit};
use crate::load::{Accepted, Load};
use crate::stage::{Options, Stage};
use courier_tests::app::registry;

/// How long the system may take to deliver everything once the chaos stopped.
const SETTLE: Duration = Duration::from_secs(600);

/// What one scenario did and found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The scenario's name.
    pub name: &'static str,
    /// What was done to the system, in words.
    pub chaos: String,
    /// Orders the order API accepted (202).
    pub accepted: usize,
    /// 503 answers (with Retry-After) the clients retried.
    pub unavailable: u64,
    /// Other failed requests.
    pub client_errors: u64,
    /// Per API: expected, delivered, lost, doubled, raw calls, duplicates absorbed.
    pub apis: Vec<(Api, ApiAudit)>,
    /// Dead letters per dead-letter topic (distinct source records).
    pub dead_letters: BTreeMap<String, usize>,
    /// Dead letters expected in every `orders.created` dead-letter topic (the poison records).
    pub expected_dead_letters: usize,
    /// From the end of the chaos until every effect was there.
    pub recovered: Option<Duration>,
    /// Whether every process exited 0 on SIGTERM at the end.
    pub clean_exit: bool,
    /// A count the scenario observed on the way (e.g. releases that came before their reservation).
    pub observed: usize,
}

impl Outcome {
    /// Effects lost over every API.
    pub fn lost(&self) -> usize {
        self.apis.iter().map(|(_, a)| a.lost).sum()
    }

    /// Effects doubled over every API.
    pub fn doubled(&self) -> usize {
        self.apis.iter().map(|(_, a)| a.doubled).sum()
    }

    /// Calls that overlapped an earlier call with their idempotency key, over every API.
    pub fn overlapping(&self) -> usize {
        self.apis.iter().map(|(_, a)| a.overlapping).sum()
    }

    /// Whether the dead letters are exactly the poison records.
    pub fn dead_letters_exact(&self) -> bool {
        self.dead_letters.iter().all(|(topic, n)| {
            let expected = if topic.starts_with("orders.created.") { self.expected_dead_letters } else { 0 };
            *n == expected
        })
    }

    /// Whether the scenario kept every promise.
    pub fn passed(&self) -> bool {
        self.lost() == 0
            && self.doubled() == 0
            && self.overlapping() == 0
            && self.dead_letters_exact()
            && self.recovered.is_some()
            && self.accepted > 0
    }
}

/// The scenarios, by name.
pub const NAMES: [&str; 8] = [
    "kill-consumers",
    "kill-broker",
    "scale-group",
    "api-faults",
    "poison",
    "saga-race",
    "panicking-handler",
    "batch-rebalance",
];

/// Runs scenario `name`.
pub async fn run(name: &str, options: &Options) -> anyhow::Result<Outcome> {
    let q = options.quick;
    match name {
        "kill-consumers" => {
            kill_consumers(options, if q { load(3_000, 100) } else { load(8_000, 40) }, if q { 3 } else { 20 }).await
        }
        "kill-broker" => kill_broker(options, if q { load(2_000, 100) } else { load(5_000, 100) }).await,
        "scale-group" => scale_group(options, if q { load(2_000, 100) } else { load(5_000, 100) }).await,
        "api-faults" => api_faults(options, if q { load(2_000, 200) } else { load(5_000, 100) }).await,
        "poison" => poison(options, if q { load(1_000, 200) } else { load(5_000, 100) }, if q { 3 } else { 25 }).await,
        "saga-race" => saga_race(options, if q { 600 } else { 3_000 }).await,
        "panicking-handler" => panicking_handler(options, if q { load(1_500, 150) } else { load(5_000, 100) }).await,
        "batch-rebalance" => batch_rebalance(options, if q { load(2_000, 100) } else { load(5_000, 100) }).await,
        other => anyhow::bail!("unknown scenario {other:?}; one of {NAMES:?}"),
    }
}

/// Waits for every effect, audits, stops everything.
async fn finish(
    stage: Stage,
    name: &'static str,
    chaos: String,
    orders: Vec<Accepted>,
    expected_dead_letters: usize,
) -> anyhow::Result<Outcome> {
    let mut outcome = finish_keeping(stage, name, orders, expected_dead_letters, |_| 0).await?;
    outcome.chaos = chaos;
    Ok(outcome)
}

/// Like [`finish`], with `observe` counting something on the stage once everything was delivered.
async fn finish_keeping(
    stage: Stage,
    name: &'static str,
    orders: Vec<Accepted>,
    expected_dead_letters: usize,
    observe: impl Fn(&Stage) -> usize,
) -> anyhow::Result<Outcome> {
    let settle = if stage.quick { Duration::from_secs(180) } else { SETTLE };
    let recovered = audit::wait_until_complete(&stage.mock, &orders, settle).await;
    let apis = APIS.iter().map(|api| (*api, audit::audit(&stage.mock, *api, &orders))).collect();
    let dead_letters = stage.dead_letters().await?;
    let observed = observe(&stage);
    let answers = &stage.answers;
    let (unavailable, client_errors) = (
        answers.unavailable.load(std::sync::atomic::Ordering::Relaxed),
        answers.errors.load(std::sync::atomic::Ordering::Relaxed),
    );
    let clean_exit = stage.down().await?;
    Ok(Outcome {
        name,
        chaos: String::new(),
        observed,
        accepted: orders.len(),
        unavailable,
        client_errors,
        apis,
        dead_letters,
        expected_dead_letters,
        recovered,
        clean_exit,
    })
}

/// `count` orders at `rate` per second, every 10th declined, each given up after a minute of 503s (the
/// client then knows it was not taken).
fn load(count: usize, rate: u32) -> Load {
    Load { count, rate, decline_every: 10, give_up: Duration::from_secs(60) }
}

/// (a) `kills` × SIGKILL of a random consumer process during the run, each restarted once the dead member's
/// session has expired.
///
/// On Tansu 0.6.0 a member that joins while a killed member is still in the group (its session not yet
/// expired) can end the rebalance with the dead member's partitions assigned to nobody, for good (defect B of
/// scripts/tansu-defects, of which this is the general case; RELIABILITY.md). So the killed process comes back
/// after the session timeout, as a container restart with back-off would, and kills are 10 s apart. Apache
/// Kafka has no such limit; `kafka.rejoin_unassigned_after_ms` covers the case where the restarted member is
/// the only one.
async fn kill_consumers(options: &Options, load: Load, kills: usize) -> anyhow::Result<Outcome> {
    let mut stage = Stage::up(options, 2, &[]).await?;
    let posting = stage.post(load);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let victim = rand::rng().random_range(0..stage.members.len());
        let member = stage.members.swap_remove(victim);
        let consumer = member.consumer;
        member.kill().await?;
        // Back after the session timeout (6 s), and the group given time to settle before the next kill.
        tokio::time::sleep(Duration::from_secs(7)).await;
        stage.members.push(stage.fleet.start(consumer)?);
    }
    let orders = posting.await?;
    let chaos = format!("{kills} × kill -9 of a random consumer process (2 per group), restarted 7 s later");
    finish(stage, "kill-consumers", chaos, orders, 0).await
}

/// (b) The broker killed with SIGKILL and restarted on the same storage three times, orders flowing.
///
/// It is restarted at once (down about a second, its start-up): on Tansu 0.6.0 an outage long enough for
/// the producers' records to time out (`producer.publish_timeout_ms`) makes librdkafka bump an idempotent
/// producer's epoch, on which Tansu's storage task panics and dies, leaving the broker unable to serve anyone
/// until it is restarted (defect C, scripts/tansu-defects/repro-c.sh; RELIABILITY.md).
async fn kill_broker(options: &Options, load: Load) -> anyhow::Result<Outcome> {
    let mut stage = Stage::up(options, 1, &[]).await?;
    let posting = stage.post(load);
    let interval = if options.quick { Duration::from_secs(2) } else { Duration::from_secs(6) };
    for _ in 0..3 {
        tokio::time::sleep(interval).await;
        stage.broker.kill().await?;
        stage.broker.restart().await?;
    }
    let orders = posting.await?;
    finish(stage, "kill-broker", "3 × kill -9 of the broker, restarted at once on its storage".into(), orders, 0).await
}

/// (c) The inventory group scaled 1 → 3 → 1 under load; the survivor must end with every partition.
async fn scale_group(options: &Options, load: Load) -> anyhow::Result<Outcome> {
    let stage = Stage::up(options, 1, &[]).await?;
    let posting = stage.post(load);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let added = [stage.fleet.start(registry::INVENTORY)?, stage.fleet.start(registry::INVENTORY)?];
    // Scaled back down 3 s later, as in the report.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for member in added {
        member.stop().await?;
    }
    let scaled_down = Instant::now();
    let survivor = stage.members.iter().find(|m| m.consumer == registry::INVENTORY).expect("inventory runs");
    let mut all = None;
    while scaled_down.elapsed() < Duration::from_secs(120) {
        if survivor.assigned().await == Some(16) {
            all = Some(scaled_down.elapsed());
            break;
        }
        // Another process: ask its health server again shortly.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let orders = posting.await?;
    let got = all.map_or("never (within 120 s)".to_owned(), |d| format!("after {:.1} s", d.as_secs_f64()));
    let chaos = format!("inventory scaled 1 → 3 → 1 (SIGTERM 3 s later); the survivor had all 16 partitions {got}");
    let mut outcome = finish(stage, "scale-group", chaos, orders, 0).await?;
    if all.is_none() {
        outcome.recovered = None;
    }
    Ok(outcome)
}

/// (d) Every API: 30 % 503, 5 % calls hanging past the request timeout, 5 % connections reset after the
/// effect, bursts of 429 with Retry-After.
async fn api_faults(options: &Options, load: Load) -> anyhow::Result<Outcome> {
    let timeouts: Vec<(String, String)> = ["INVENTORY", "PAYMENT", "EMAIL", "SMS"]
        .iter()
        .map(|api| (format!("COURIER__APIS__{api}__REQUEST_TIMEOUT_MS"), "2000".to_owned()))
        .collect();
    let extra: Vec<(&str, &str)> = timeouts.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let stage = Stage::up(options, 1, &extra).await?;
    let faults = Faults {
        error_rate: 0.3,
        hang_rate: 0.05,
        hang_ms: 3000,
        reset_rate: 0.05,
        retry_after_secs: 1,
        ..Faults::default()
    };
    stage.mock.set_all_faults(faults.clone());
    let posting = stage.post(load);
    let mut burst = false;
    while !posting.is_finished() {
        // 429 bursts: half the calls throttled for 2 s, then 2 s without.
        burst = !burst;
        stage.mock.set_all_faults(Faults { throttle_rate: if burst { 0.5 } else { 0.0 }, ..faults.clone() });
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let orders = posting.await?;
    stage.mock.set_all_faults(Faults::default());
    let resets = |stage: &Stage| Api::ALL.iter().map(|api| stage.mock.stats(*api).resets as usize).sum();
    let mut outcome = finish_keeping(stage, "api-faults", orders, 0, resets).await?;
    outcome.chaos = format!(
        "every API: 30 % 503, 5 % hang 3 s (request timeout 2 s), 5 % connection reset after the effect ({} resets), \
         429 bursts (50 %, 2 s on / 2 s off)",
        outcome.observed
    );
    Ok(outcome)
}

/// (e) Poison records of every class produced among the orders: not JSON, a header key that is not UTF-8,
/// 1 MB, an unknown event type.
async fn poison(options: &Options, load: Load, per_class: usize) -> anyhow::Result<Outcome> {
    let stage = Stage::up(options, 1, &[]).await?;
    let posting = stage.post(load);
    let bad_key: RawHeader = (vec![0xff, 0xfe, b'k'], Some(b"v".to_vec()));
    let unknown = serde_json::json!({"specversion": "1.0", "id": "x", "source": "/chaos", "type": "order.shipped",
        "time": "2026-01-01T00:00:00Z", "datacontenttype": "application/json", "data": {}});
    let mut records = Vec::new();
    for i in 0..per_class {
        records.push((format!("poison-text-{i}"), b"not json at all".to_vec(), vec![]));
        records.push((format!("poison-header-{i}"), b"\xff also not json".to_vec(), vec![bad_key.clone()]));
        records.push((format!("poison-large-{i}"), vec![b'x'; 999_000], vec![]));
        let mut event = unknown.clone();
        event["id"] = serde_json::json!(format!("poison-type-{i}"));
        records.push((format!("poison-type-{i}"), serde_json::to_vec(&event)?, vec![]));
    }
    produce_raw(&stage.broker.bootstrap, &records).await?;
    let orders = posting.await?;
    let chaos = format!("{} poison records ({per_class} per class) among the orders", records.len());
    finish(stage, "poison", chaos, orders, records.len()).await
}

/// Produces `(key, value, headers)` records to `orders.created`, up to 2 MB each.
async fn produce_raw(bootstrap: &str, records: &[(String, Vec<u8>, Vec<RawHeader>)]) -> anyhow::Result<()> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.max.bytes", "2000000")
        .create()?;
    for (key, value, headers) in records {
        let headers = courier::kafka::headers::to_owned(headers.iter().map(|(k, v)| (k, v.as_ref())));
        let record = FutureRecord::to("orders.created").key(key).payload(value).headers(headers);
        producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// (f) The saga race at scale: reservations are slow and 30 % of their calls fail (retried, so many land
/// late) while every 2nd order's payment is declined at once, so many releases reach the inventory API
/// before their reservation.
async fn saga_race(options: &Options, count: usize) -> anyhow::Result<Outcome> {
    let stage = Stage::up(options, 1, &[]).await?;
    stage.mock.set_faults(Api::Inventory, Faults { latency_ms: 100, error_rate: 0.3, ..Faults::default() });
    let orders = stage.post(Load { count, rate: 0, decline_every: 2, give_up: Duration::from_secs(60) }).await?;
    let early = |stage: &Stage| stage.mock.calls(Api::InventoryRelease).iter().filter(|c| c.status == 404).count();
    let mut outcome = finish_keeping(stage, "saga-race", orders, 0, early).await?;
    outcome.chaos = format!(
        "reservations: 100 ms, 30 % 503; every 2nd order declined; {} release calls found no reservation yet",
        outcome.observed
    );
    Ok(outcome)
}

/// (g) A handler that panics: the inventory group's handler (the real inventory consumer, run in-process, see
/// [`crate::in_process`]) panics on the first two attempts at every seventh event. Each panic must fail only its
/// attempt: the event is tried again and delivered, its key and its partition's commits go on, the process
/// stays up.
async fn panicking_handler(options: &Options, load: Load) -> anyhow::Result<Outcome> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::in_process::{InProcess, Panicking, QuietPanics};

    let _quiet = QuietPanics::install();
    let stage = Stage::up_but(options, 1, &[], Some(registry::INVENTORY)).await?;
    let settings = stage.settings()?;
    let panics = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&panics);
    let member = InProcess::inventory(&settings, move |inventory| Panicking::new(inventory, Arc::clone(&counted)));
    let orders = stage.post(load).await?;
    let recovered = audit::wait_until_complete(&stage.mock, &orders, Duration::from_secs(180)).await;
    let stopped = member.stop().await;
    let mut outcome = finish(stage, "panicking-handler", String::new(), orders, 0).await?;
    outcome.recovered = outcome.recovered.and(recovered);
    outcome.clean_exit &= stopped;
    outcome.observed = panics.load(Ordering::SeqCst);
    outcome.chaos = format!(
        "the inventory handler panics on the first two attempts at every 7th event ({} panics, contained)",
        outcome.observed
    );
    if outcome.observed == 0 {
        // Nothing panicked: the scenario showed nothing.
        outcome.recovered = None;
    }
    Ok(outcome)
}

/// Waits until the members whose health `members` is hold `partitions` together, or `timeout` passes; returns
/// whether they did.
async fn together_assigned(members: &[&Health], partitions: usize, timeout: Duration) -> bool {
    let mut changes: Vec<_> = members.iter().map(|h| h.subscribe()).collect();
    let held = || members.iter().map(|h| h.assigned()).sum::<usize>() == partitions;
    tokio::time::timeout(timeout, async {
        while !held() {
            let changed = changes.iter_mut().map(|c| Box::pin(c.changed()));
            if futures::future::select_all(changed).await.0.is_err() {
                // A member's health is gone: nothing will change any more.
                return false;
            }
        }
        true
    })
    .await
    .unwrap_or(false)
}

/// (h) Batches across rebalances: the inventory group batches (up to 10 events of different keys an attempt,
/// run in-process, see [`crate::in_process`]) against a slow inventory API, some calls outlasting the revoke's
/// 1 s, and is scaled 1 → 3 → 1 under load. A revoked partition's events must leave the batches of the
/// partitions that stay, or have their call dropped, before the revoke returns: no call of an event may overlap
/// its next owner's.
///
/// The added members are stopped one at a time, each once the group holds every partition again. With calls
/// of up to 1.6 s a member's stop takes seconds; on Tansu 0.6.0 a member that leaves while the group is
/// forming after another's leave can stay recorded as its leader, and the survivor then gets no partition,
/// for good (defect A of scripts/tansu-defects; RELIABILITY.md). Apache Kafka has no such limit.
async fn batch_rebalance(options: &Options, load: Load) -> anyhow::Result<Outcome> {
    use crate::in_process::{Batched, InProcess};

    /// The inventory group's partitions: `orders.created` and `orders.payment-failed`, 8 each.
    const PARTITIONS: usize = 16;
    /// The longest a rebalance is waited for.
    const SETTLE: Duration = Duration::from_secs(60);

    let stage = Stage::up_but(options, 1, &[], Some(registry::INVENTORY)).await?;
    stage.mock.set_faults(Api::Inventory, Faults { latency_ms: 100, latency_jitter_ms: 1500, ..Faults::default() });
    let settings = stage.settings()?;
    let first = InProcess::inventory(&settings, Batched);
    let posting = stage.post(load);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut added = vec![InProcess::inventory(&settings, Batched), InProcess::inventory(&settings, Batched)];
    // The first member's revoke (batches in flight) is the point: wait for it, then let the three deliver.
    let mut settled = true;
    for member in &added {
        settled &= member.health.wait_for_assigned(SETTLE, |n| n > 0).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut stopped = true;
    while let Some(member) = added.pop() {
        stopped &= member.stop().await;
        let staying: Vec<&Health> = added.iter().chain([&first]).map(|m| &m.health).collect();
        settled &= together_assigned(&staying, PARTITIONS, SETTLE).await;
    }
    let orders = posting.await?;
    stage.mock.set_faults(Api::Inventory, Faults::default());
    let recovered = audit::wait_until_complete(&stage.mock, &orders, Duration::from_secs(180)).await;
    stopped &= first.stop().await;
    let mut outcome = finish(stage, "batch-rebalance", String::new(), orders, 0).await?;
    outcome.recovered = outcome.recovered.and(recovered);
    if !settled {
        outcome.recovered = None;
    }
    outcome.clean_exit &= stopped;
    outcome.chaos = format!(
        "inventory batching (10 a batch), API 100–1600 ms, scaled 1 → 3 → 1 (stopped one at a time, each once \
         the group held every partition{})",
        if settled { "" } else { "; it did not settle within 60 s" }
    );
    Ok(outcome)
}
