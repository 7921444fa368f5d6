//! Per-partition offset tracking: which offsets were started and which finished, and the contiguous finished
//! prefix (the watermark) that may be committed.
//!
//! Events of one partition finish out of order (different keys run concurrently), but a commit says "every
//! record before this offset is done". So the offset committed is always the lowest unfinished one — or, when
//! nothing is unfinished, one past the highest started. Later events that finished first are not lost: they
//! are redelivered after a crash and absorbed by the idempotency key.

use std::collections::BTreeSet;

/// Started-but-unfinished offsets of one partition.
#[derive(Debug, Clone, Default)]
pub struct OffsetTracker {
    /// Offsets started and not finished yet.
    unfinished: BTreeSet<i64>,
    /// One past the highest offset started; `None` before the first.
    next: Option<i64>,
    /// The last watermark handed out for committing.
    committed: Option<i64>,
}

impl OffsetTracker {
    /// Records that `offset` was handed to the runtime. Returns `false` (and changes nothing) for an offset at
    /// or below one already started: a redelivered record that is, or was, being handled.
    pub fn start(&mut self, offset: i64) -> bool {
        if self.next.is_some_and(|next| offset < next) {
            return false;
        }
        self.unfinished.insert(offset);
        self.next = Some(offset + 1);
        true
    }

    /// Records that `offset` was handled (delivered or routed as failed).
    pub fn finish(&mut self, offset: i64) {
        self.unfinished.remove(&offset);
    }

    /// The offset to commit: every record below it is finished. `None` before anything was started.
    pub fn watermark(&self) -> Option<i64> {
        self.unfinished.first().copied().or(self.next)
    }

    /// Started events not finished yet.
    pub fn unfinished(&self) -> usize {
        self.unfinished.len()
    }

    /// The commit of the last watermark taken failed: the next [`OffsetTracker::take_commit`] hands it out again.
    pub fn commit_failed(&mut self) {
        self.committed = None;
    }

    /// The watermark, when it moved past the last one taken; marks it taken.
    pub fn take_commit(&mut self) -> Option<i64> {
        let watermark = self.watermark()?;
        if self.committed.is_some_and(|c| c >= watermark) {
            return None;
        }
        self.committed = Some(watermark);
        Some(watermark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commits_only_the_contiguous_prefix() {
        let mut t = OffsetTracker::default();
        assert_eq!(t.watermark(), None);
        for o in 10..15 {
            assert!(t.start(o));
        }
        assert_eq!(t.watermark(), Some(10));
        t.finish(12);
        t.finish(11);
        assert_eq!(t.watermark(), Some(10), "10 is unfinished: nothing past it may be committed");
        t.finish(10);
        assert_eq!(t.watermark(), Some(13));
        assert_eq!(t.take_commit(), Some(13));
        assert_eq!(t.take_commit(), None, "no change, no commit");
        t.finish(13);
        t.finish(14);
        assert_eq!(t.take_commit(), Some(15));
        assert!(!t.start(14), "a redelivered offset is not started twice");
        assert!(t.start(20), "gaps (compacted offsets) are fine");
        assert_eq!(t.watermark(), Some(20));
    }

    proptest! {
        /// Whatever order events finish in, the watermark is the lowest unfinished offset (or one past the
        /// highest started when all finished), and it never moves backwards.
        #[test]
        fn watermark_is_the_lowest_unfinished(
            start in 0i64..1_000_000,
            gaps in proptest::collection::vec(1i64..4, 1..200),
            seed in any::<u64>(),
        ) {
            let mut offsets = Vec::with_capacity(gaps.len());
            let mut o = start;
            for g in &gaps {
                offsets.push(o);
                o += g;
            }
            let mut tracker = OffsetTracker::default();
            for &o in &offsets {
                prop_assert!(tracker.start(o));
            }
            // A deterministic shuffle from the seed.
            let mut finish_order = offsets.clone();
            let mut state = seed | 1;
            for i in (1..finish_order.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                finish_order.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut finished = std::collections::BTreeSet::new();
            let mut last = None;
            for &o in &finish_order {
                tracker.finish(o);
                finished.insert(o);
                let expected = offsets.iter().copied().find(|x| !finished.contains(x)).unwrap_or(*offsets.last().unwrap_or(&start) + 1);
                prop_assert_eq!(tracker.watermark(), Some(expected));
                if let Some(c) = tracker.take_commit() {
                    prop_assert!(last.is_none_or(|l| c > l), "commit went backwards");
                    last = Some(c);
                }
            }
            prop_assert_eq!(tracker.unfinished(), 0);
        }
    }
}
