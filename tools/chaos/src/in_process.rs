//! A consumer group run inside the chaos process, with a handler that wraps the real consumer: for the faults
//! that cannot be put into a binary without a hook in the product (a handler that panics) and for a consumer
//! that batches (no coded consumer does). The rest of the stage stays real processes; the group's members are
//! the runtime a binary runs (`courier::delivery::Runner`), over the same broker, settings and APIs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use courier::delivery::{Batching, Handler, Incoming, Outcome, Runner};
use courier::health::Health;
use courier::settings::Settings;
use courier_consumers::inventory::{Inventory, InventoryHandler};
use courier_tests::wrapped::Wrapped;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One member of an in-process group.
pub struct InProcess {
    /// Cancelling it is the member's SIGTERM.
    stop: CancellationToken,
    /// The member's run.
    task: JoinHandle<anyhow::Result<()>>,
    /// Its health (assignment, problems).
    pub health: Health,
}

impl InProcess {
    /// Starts a member of the inventory group whose handler `wrap` makes of the real inventory consumer's.
    pub fn inventory<H: Handler>(
        settings: &Settings,
        wrap: impl Fn(InventoryHandler) -> H + Send + Sync + 'static,
    ) -> Self {
        let (stop, health) = (CancellationToken::new(), Health::default());
        let (settings, token, member_health) = (settings.clone(), stop.clone(), health.clone());
        let consumer = Wrapped::new(Inventory, wrap);
        let task = tokio::spawn(async move {
            Runner::new(&settings).health(&member_health).run(&consumer, token).await?;
            Ok(())
        });
        Self { stop, task, health }
    }

    /// Stops the member as SIGTERM would; `true` when it ended cleanly.
    pub async fn stop(self) -> bool {
        self.stop.cancel();
        matches!(self.task.await, Ok(Ok(())))
    }
}

/// Sends the logs of the members run in this process (JSON lines, filtered by `RUST_LOG`, `info` by default) to
/// `<dir>/in-process.log`, as the fleet's processes log to theirs. Only the first call in a process takes effect.
pub fn log_to(dir: &std::path::Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("in-process.log"))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Fails only when a subscriber is set already: the logs go where the first one sends them.
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(Mutex::new(file)).try_init();
    Ok(())
}

/// The message every panic of [`Panicking`] starts with.
const PANIC_MESSAGE: &str = "chaos: the handler panics";

/// A panic hook, as `std::panic::take_hook` returns it.
type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// While it lives, the panics of [`Panicking`] print nothing (the runtime contains them, and hundreds of
/// backtraces would bury the report); any other panic is printed as before.
pub struct QuietPanics {
    /// The hook in place before, which every other panic still goes to.
    previous: std::sync::Arc<PanicHook>,
}

impl QuietPanics {
    /// Silences [`Panicking`]'s panics.
    pub fn install() -> Self {
        let previous = std::sync::Arc::new(std::panic::take_hook());
        let others = std::sync::Arc::clone(&previous);
        std::panic::set_hook(Box::new(move |info| {
            let message = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or_default();
            if !message.starts_with(PANIC_MESSAGE) {
                others(info);
            }
        }));
        Self { previous }
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        let previous = std::sync::Arc::clone(&self.previous);
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}

/// The real inventory consumer's handler, whose first two attempts at every seventh event panic.
pub struct Panicking {
    /// The real handler.
    inner: InventoryHandler,
    /// Attempts that panicked, by event id.
    attempts: Mutex<HashMap<String, u32>>,
    /// Panics so far, over every member.
    panics: Arc<AtomicUsize>,
}

impl Panicking {
    /// `inner`, panicking; the panics are counted in `panics`.
    pub fn new(inner: InventoryHandler, panics: Arc<AtomicUsize>) -> Self {
        Self { inner, attempts: Mutex::default(), panics }
    }

    /// Whether this attempt at `incoming` panics: the first two at an event whose id's bytes sum to a
    /// multiple of seven.
    fn panics_now(&self, incoming: &Incoming) -> bool {
        let chosen = incoming.id().bytes().map(u32::from).sum::<u32>() % 7 == 0;
        if !chosen {
            return false;
        }
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let panicked = attempts.entry(incoming.id().to_owned()).or_default();
        *panicked += 1;
        *panicked <= 2
    }
}

impl Handler for Panicking {
    async fn handle(&self, incoming: &Incoming, channel: Option<&'static str>) -> Outcome {
        if self.panics_now(incoming) {
            self.panics.fetch_add(1, Ordering::SeqCst);
            panic!("{PANIC_MESSAGE} on event {}", incoming.id());
        }
        self.inner.handle(incoming, channel).await
    }
}

/// The real inventory consumer's handler, batching: up to 10 events of different keys in one attempt, whose
/// calls go out together (the inventory API takes one order a call), waiting at most 20 ms for the batch to fill.
pub struct Batched(pub InventoryHandler);

impl Handler for Batched {
    async fn handle(&self, incoming: &Incoming, channel: Option<&'static str>) -> Outcome {
        self.0.handle(incoming, channel).await
    }

    fn batching(&self) -> Option<Batching> {
        Some(Batching { max_events: 10, max_wait: Duration::from_millis(20) })
    }
}
