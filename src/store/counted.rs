//! A `Store` that counts its backend's failures (`dcr_shim_store_errors_total{kind}`) on their
//! way to the caller: every failure is also a log line or an answer somewhere, but only the
//! counter lets an alert see a store that has started to fail.

use async_trait::async_trait;

use super::{Durability, Entry, GroupWrite, Store, StoreError, Sweep};

/// `inner`, its failures counted.
pub struct Counted<S>(pub S);

fn counted<T>(result: Result<T, StoreError>) -> Result<T, StoreError> {
    if let Err(e) = &result {
        let kind = match e {
            StoreError::Backend(_) => "backend",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Corrupt { .. } => "corrupt",
        };
        crate::metrics::metrics()
            .store
            .errors
            .with_label_values(&[kind])
            .inc();
    }
    result
}

#[async_trait]
impl<S: Store> Store for Counted<S> {
    async fn insert_new(
        &self,
        key: &[u8],
        entry: Entry,
        now: u64,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        counted(self.0.insert_new(key, entry, now, durability).await)
    }
    async fn compare_and_swap(
        &self,
        key: &[u8],
        expected_revision: u64,
        entry: Entry,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        counted(
            self.0
                .compare_and_swap(key, expected_revision, entry, durability)
                .await,
        )
    }
    async fn write_all(
        &self,
        writes: Vec<GroupWrite>,
        now: u64,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        counted(self.0.write_all(writes, now, durability).await)
    }
    async fn get(&self, key: &[u8], now: u64) -> Result<Option<Entry>, StoreError> {
        counted(self.0.get(key, now).await)
    }
    async fn take(
        &self,
        key: &[u8],
        now: u64,
        durability: Durability,
    ) -> Result<Option<Entry>, StoreError> {
        counted(self.0.take(key, now, durability).await)
    }
    async fn remove(&self, key: &[u8], durability: Durability) -> Result<bool, StoreError> {
        counted(self.0.remove(key, durability).await)
    }
    async fn flush(&self) -> Result<(), StoreError> {
        counted(self.0.flush().await)
    }
    async fn scan(
        &self,
        prefix: &[u8],
        now: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        counted(self.0.scan(prefix, now, limit).await)
    }
    async fn scan_after(
        &self,
        after: &[u8],
        now: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        counted(self.0.scan_after(after, now, limit).await)
    }
    async fn sweep_expired(&self, now: u64, limit: usize) -> Result<Sweep, StoreError> {
        counted(self.0.sweep_expired(now, limit).await)
    }
    async fn check_health(&self) -> Result<(), StoreError> {
        counted(self.0.check_health().await)
    }
    async fn size_on_disk(&self) -> Result<u64, StoreError> {
        counted(self.0.size_on_disk().await)
    }
    fn is_shared(&self) -> bool {
        self.0.is_shared()
    }
}
