//! The wall clock, read in one place: handlers read it once per request and pass the time
//! down (`now: u64`); what waits within a request times the wait from that `now` (`Since`),
//! and only what runs outside any request (a webhook retried, the sweeper) reads it again.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 for a clock set before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A request's `now` moved on by the time that has passed since it was taken (measured on the
/// monotonic clock): for a wait within a request, such as a lease held by another server.
#[derive(Clone, Copy, Debug)]
pub struct Since {
    at: u64,
    started: Instant,
}

impl Since {
    pub fn new(at: u64) -> Self {
        Self {
            at,
            started: Instant::now(),
        }
    }

    /// `at` plus the whole seconds elapsed.
    pub fn now(&self) -> u64 {
        self.at + self.started.elapsed().as_secs()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}
