//! The wall clock, read in one place: the HTTP layer reads it once per request and passes the
//! time down (`RequestCtx::now`); only what must know the time later (a refresh lease, which
//! other servers judge by their own clocks; a webhook retried; the sweeper) reads it again.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 for a clock set before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
