//! Bounds on fetches in flight: a stranger's URLs must not make the shim open thousands of
//! connections to one host (a flood it would be blamed for) or exhaust its own sockets. Beyond
//! a bound a fetch is refused at once rather than queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Fetches in flight, in total and per host.
pub(crate) struct FetchBounds {
    total: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Held while one fetch is in flight.
pub(crate) struct FetchPermit {
    _total: OwnedSemaphorePermit,
    _host: OwnedSemaphorePermit,
}

/// Which bound a refused fetch hit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Exceeded {
    Host,
    Total,
}

impl FetchBounds {
    pub(crate) fn new(total: usize, per_host: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            per_host,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// A permit for one fetch from `host`, or the bound that is full.
    pub(crate) fn try_acquire(&self, host: &str) -> Result<FetchPermit, Exceeded> {
        let host_semaphore = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            // A host's semaphore is kept only while a permit of it is out: the map holds at
            // most one entry per fetch in flight.
            hosts.retain(|_, s| Arc::strong_count(s) > 1);
            hosts
                .entry(host.to_ascii_lowercase())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        let host_permit = host_semaphore
            .try_acquire_owned()
            .map_err(|_| Exceeded::Host)?;
        let total_permit = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Exceeded::Total)?;
        Ok(FetchPermit {
            _total: total_permit,
            _host: host_permit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_per_host_and_in_total_and_released_on_drop() {
        let b = FetchBounds::new(3, 2);
        let a1 = b.try_acquire("a.example").unwrap();
        let _a2 = b.try_acquire("A.example").unwrap();
        assert_eq!(b.try_acquire("a.example").err(), Some(Exceeded::Host));
        let _b1 = b.try_acquire("b.example").unwrap();
        assert_eq!(b.try_acquire("c.example").err(), Some(Exceeded::Total));
        drop(a1);
        assert!(b.try_acquire("a.example").is_ok());
        assert!(b.hosts.lock().unwrap().len() <= 3);
    }
}
