//! The wall clock, read in one place: handlers read it once per request and pass the time
//! down (`now: u64`); only what must know the time later (a lease waiting, a webhook retried)
//! reads it again.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 for a clock set before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
