//! The coarse clock deadlines are measured on: milliseconds since the first engine started,
//! advanced by every engine's epoch ticker (`crate::engine`). Reading it costs one atomic
//! load; reading the system clock on every call was 4% of an invoke, and deadlines are checked
//! at tick granularity anyway. And the wall clock ([`unix_ms`]), for records of when.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

static COARSE_CLOCK_MS: AtomicU64 = AtomicU64::new(0);
static CLOCK_START: OnceLock<Instant> = OnceLock::new();

/// The coarse clock, milliseconds; it moves only while an engine's ticker runs, which is
/// whenever guest code can run.
pub(crate) fn now_ms() -> u64 {
    COARSE_CLOCK_MS.load(Ordering::Relaxed)
}

/// Moves the clock to now; called by each engine's ticker at every tick.
pub(crate) fn advance() {
    let start = CLOCK_START.get_or_init(Instant::now);
    let now = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    COARSE_CLOCK_MS.fetch_max(now, Ordering::Relaxed);
}

/// The wall clock, Unix milliseconds: for what records when something happened (events,
/// health), never for deadlines.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
