//! Counting what reached each API against what the accepted orders call for: effects (distinct idempotency
//! keys that took effect), raw calls (every request, duplicates and failures included), lost and doubled.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mock_apis::{Api, MockApis};

use crate::load::Accepted;

/// The APIs and what each accepted order calls for there.
pub const APIS: [Api; 5] = [Api::Inventory, Api::Payment, Api::Email, Api::Sms, Api::InventoryRelease];

/// One API's figures.
#[derive(Debug, Clone, Default)]
pub struct ApiAudit {
    /// Effects the accepted orders call for.
    pub expected: usize,
    /// Of those, present exactly once.
    pub delivered: usize,
    /// Of those, missing.
    pub lost: usize,
    /// Of those, present more than once (different idempotency keys for one order).
    pub doubled: usize,
    /// Every request the API received.
    pub raw_calls: u64,
    /// Requests whose idempotency key had taken effect already (absorbed).
    pub duplicates: u64,
    /// Calls that arrived while an earlier call with their idempotency key still ran (two owners of one event
    /// calling at once, or a call not dropped when its partition moved).
    pub overlapping: usize,
    /// A few of the overlapping calls' keys, each with its calls' times and statuses.
    pub overlapping_examples: Vec<String>,
}

/// The business key of an effect at `api`, and of what an order expects there.
fn effect_key(api: Api, effect: &mock_apis::Effect) -> String {
    match api {
        // Messages are told apart by their idempotency key (`notification-email:<event id>`).
        Api::Email | Api::Sms => effect.idempotency_key.rsplit(':').next().unwrap_or("").to_owned(),
        _ => effect.body["order_id"].as_str().unwrap_or("").to_owned(),
    }
}

fn expected_key(api: Api, order: &Accepted) -> Option<String> {
    let id = match api {
        Api::Inventory | Api::Payment => &order.order_id,
        Api::Email => &order.event_id,
        Api::Sms if order.phone => &order.event_id,
        Api::InventoryRelease if order.declined => &order.order_id,
        _ => return None,
    };
    Some(id.clone())
}

/// The keys of the effects `orders` call for at `api` that are missing.
pub fn lost_keys(mock: &MockApis, api: Api, orders: &[Accepted]) -> Vec<String> {
    let mut effects = mock.effects(api);
    if api == Api::Payment {
        effects.extend(mock.declines(api));
    }
    let seen: std::collections::HashSet<String> = effects.iter().map(|e| effect_key(api, e)).collect();
    orders.iter().filter_map(|o| expected_key(api, o)).filter(|k| !seen.contains(k)).collect()
}

/// Audits `api` against `orders`.
pub fn audit(mock: &MockApis, api: Api, orders: &[Accepted]) -> ApiAudit {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut effects = mock.effects(api);
    if api == Api::Payment {
        // A declined charge is the payment API's answer to it: it counts as the order's effect there.
        effects.extend(mock.declines(api));
    }
    for effect in &effects {
        *seen.entry(effect_key(api, effect)).or_default() += 1;
    }
    let stats = mock.stats(api);
    let calls = mock.calls(api);
    let overlapped = overlaps(&calls);
    let mut audit = ApiAudit {
        raw_calls: stats.calls,
        duplicates: stats.duplicates,
        overlapping: overlapped.len(),
        overlapping_examples: overlapping_examples(&calls, overlapped, 5),
        ..ApiAudit::default()
    };
    for key in orders.iter().filter_map(|o| expected_key(api, o)) {
        audit.expected += 1;
        match seen.get(&key).copied().unwrap_or(0) {
            0 => audit.lost += 1,
            1 => audit.delivered += 1,
            _ => audit.doubled += 1,
        }
    }
    audit
}

/// Up to `limit` of the keys of `overlapped` (from [`overlaps`]), each with its calls (`received..answered` in
/// milliseconds since the first, and the status), for a report to show what overlapped and the logs to be
/// searched for when.
fn overlapping_examples(calls: &[mock_apis::Call], mut keys: Vec<&str>, limit: usize) -> Vec<String> {
    keys.dedup();
    keys.truncate(limit);
    keys.into_iter()
        .map(|key| {
            let mut of_key: Vec<&mock_apis::Call> =
                calls.iter().filter(|c| c.idempotency_key.as_deref() == Some(key)).collect();
            of_key.sort_by_key(|c| c.received_at_unix_ms);
            let first = of_key.first().map_or(0, |c| c.received_at_unix_ms);
            let spans: Vec<String> = of_key
                .iter()
                .map(|c| {
                    let (from, to) = (c.received_at_unix_ms - first, c.answered_at_unix_ms.saturating_sub(first));
                    format!("{from}..{to} ms {}", c.status)
                })
                .collect();
            format!("{key} (first at {first} Unix ms): {}", spans.join(", "))
        })
        .collect()
}

/// The key of each call that arrived while an earlier call with its idempotency key had not ended yet.
fn overlaps(calls: &[mock_apis::Call]) -> Vec<&str> {
    let mut by_key: HashMap<&str, Vec<&mock_apis::Call>> = HashMap::new();
    for call in calls {
        if let Some(key) = call.idempotency_key.as_deref() {
            by_key.entry(key).or_default().push(call);
        }
    }
    let mut overlapping = Vec::new();
    for (key, calls) in &mut by_key {
        calls.sort_by_key(|c| c.received_at_unix_ms);
        let mut running_until = 0;
        for call in calls.iter() {
            if call.received_at_unix_ms < running_until {
                overlapping.push(*key);
            }
            running_until = running_until.max(call.answered_at_unix_ms);
        }
    }
    overlapping.sort_unstable();
    overlapping
}

/// Waits until every API has every effect `orders` call for, or `limit` passes; returns how long it took
/// (`None`: not complete in time).
pub async fn wait_until_complete(mock: &MockApis, orders: &[Accepted], limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    while started.elapsed() < limit {
        let missing: Vec<(Api, usize)> =
            APIS.iter().map(|api| (*api, audit(mock, *api, orders).lost)).filter(|(_, lost)| *lost > 0).collect();
        if missing.is_empty() {
            return Some(started.elapsed());
        }
        if last_report.elapsed() >= Duration::from_secs(15) {
            eprintln!("chaos: still waiting after {:.0} s for {missing:?}", started.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        // Auditing reads every effect: once a second is plenty.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for api in APIS {
        let lost = lost_keys(mock, api, orders);
        if !lost.is_empty() {
            eprintln!("chaos: {api} never got {} effects, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
        }
    }
    None
}
