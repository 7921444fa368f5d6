//! [`Doorbell`]: how the poll thread, with nothing it may take, sleeps until there may be something again.
//!
//! Two kinds of events ring it: librdkafka, from its own threads, when a partition's queue of fetched records
//! goes from empty to non-empty; and the dispatcher, when enough events finished since the poll thread last
//! looked that a partition held back by its share (or the whole consumer, by its budget) may take more. The
//! bell holds its ring until the poll thread waits, so a ring between the poll thread's last look and its wait
//! is not lost. Ringing takes only the bell's own lock, never the dispatcher's, so librdkafka's threads never
//! wait on the runtime.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A wake-up for one waiting thread that remembers a ring until it is waited for.
#[derive(Debug, Default)]
pub struct Doorbell {
    /// Whether it rang since the last wait returned.
    rung: Mutex<bool>,
    /// Signalled on each ring.
    bell: Condvar,
}

impl Doorbell {
    /// Rings: the waiting thread (or the next one to wait) returns at once.
    pub fn ring(&self) {
        let mut rung = self.rung.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *rung = true;
        self.bell.notify_one();
    }

    /// Waits until it rings, at most `limit`; `true` when it rang. Clears the ring.
    pub fn wait(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut rung = self.rung.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while !*rung {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            rung = self.bell.wait_timeout(rung, deadline - now).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
        *rung = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_ring_before_the_wait_is_kept_and_a_wait_without_one_times_out() {
        let bell = Doorbell::default();
        bell.ring();
        assert!(bell.wait(Duration::ZERO), "the ring was kept until the wait");
        assert!(!bell.wait(Duration::from_millis(20)), "the ring was cleared by the wait");
    }

    #[test]
    fn a_ring_from_another_thread_wakes_the_waiter() {
        let bell = Arc::new(Doorbell::default());
        let ringer = Arc::clone(&bell);
        let thread = std::thread::spawn(move || ringer.ring());
        assert!(bell.wait(Duration::from_secs(10)), "woken by the other thread");
        thread.join().expect("the ringer ends");
    }
}
