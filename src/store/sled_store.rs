//! The embedded store on sled: one `records` tree. Records change by single-key compare-and-swap
//! (atomic take-once and versioned updates). A durable write is flushed before it returns; a
//! deferred one with the next flush, which concurrent writers share (group commit).
//!
//! There is no expiry index: reads treat expired records as absent, and the sweeper walks the
//! tree in batches to reclaim them. An index tree doubled the writes and, through sled's log
//! amplification on its append-only keys, more than doubled the data directory.

use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sled::Tree;

use super::group_commit::GroupCommit;
use super::{Durability, Entry, GroupWrite, Store, StoreError, Sweep};

const FORMAT: u8 = 1;
/// sled page cache size.
pub(crate) const CACHE_BYTES: u64 = 64 * 1024 * 1024;
const HEADER_LEN: usize = 1 + 2 + 8 + 8;

pub struct SledStore {
    db: sled::Db,
    records: Tree,
    commit: Arc<GroupCommit>,
    /// The last key the sweeper examined; the next sweep continues after it.
    sweep_cursor: Arc<Mutex<Option<sled::IVec>>>,
    /// Held while a group of writes is checked and applied (`write_all`).
    group_lock: Mutex<()>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            // sled's default page cache is 1 GiB; the working set (clients in use, short-lived
            // codes and transactions) is far smaller.
            .cache_capacity(CACHE_BYTES);
        // The store is locked while open. A previous holder in this process (actix worker
        // threads still winding down after a stop) lets go within moments: wait up to 2 s.
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                // sled reports a held lock only in the message of an `Other` I/O error.
                Err(sled::Error::Io(e))
                    if attempts < 40 && e.to_string().contains("could not acquire lock") =>
                {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => {
                    return Err(StoreError::Backend(format!(
                        "cannot open the store in {}: {e}",
                        dir.display()
                    )));
                }
            }
        };
        let records = db.open_tree("records").map_err(backend)?;
        // Stores written before the expiry index was dropped still have it.
        db.drop_tree("expiry").map_err(backend)?;
        // sled's `flush_async` runs on sled's own small thread pool and deadlocks under
        // concurrent callers, so the blocking flush runs on tokio's blocking threads, one at a
        // time, shared by every writer waiting for it.
        let flushed = db.clone();
        let commit =
            GroupCommit::new(move || flushed.flush().map(|_| ()).map_err(|e| e.to_string()));
        Ok(Self {
            db,
            records,
            commit,
            sweep_cursor: Arc::default(),
            group_lock: Mutex::new(()),
        })
    }

    /// Opens the store and closes it again, to be called after a graceful shutdown. sled
    /// writes a snapshot of its page table only when it opens, and otherwise replays its whole
    /// log written since then at the next start (about 2 s after a million writes); this moves
    /// that replay to the shutdown. Fails if the store is still open.
    pub async fn checkpoint(dir: &Path) -> Result<(), StoreError> {
        Self::open(dir).await.map(drop)
    }

    /// Returns once the writes so far are on disk, if `durability` asks for that now.
    async fn settle(&self, durability: Durability) -> Result<(), StoreError> {
        match durability {
            Durability::OnReturn => self.commit.durable().await,
            Durability::Deferred => Ok(()),
        }
    }
}

/// One batch of the sweeper: examines up to `limit` records after the cursor and deletes the
/// expired ones, each by compare-and-swap so that a record rewritten meanwhile stays.
fn sweep_batch(
    records: &Tree,
    cursor: &Mutex<Option<sled::IVec>>,
    now: u64,
    limit: usize,
) -> Result<Sweep, StoreError> {
    let mut cursor = cursor
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let start = match cursor.take() {
        Some(after) => Bound::Excluded(after),
        None => Bound::Unbounded,
    };
    let mut sweep = Sweep::default();
    for item in records.range::<sled::IVec, _>((start, Bound::Unbounded)) {
        if sweep.examined == limit {
            return Ok(sweep);
        }
        let (key, value) = item.map_err(backend)?;
        sweep.examined += 1;
        // An unreadable record is left for an operator to look at, never deleted blindly.
        let expired = header(&key, &value).is_ok_and(|h| !h.is_live(now));
        if expired
            && records
                .compare_and_swap(&key, Some(&value), None::<&[u8]>)
                .map_err(backend)?
                .is_ok()
        {
            sweep.removed += 1;
        }
        *cursor = Some(key);
    }
    *cursor = None;
    sweep.pass_complete = true;
    Ok(sweep)
}

/// The live records of `records` (in key order), up to `limit`.
fn live(records: sled::Iter, now: u64, limit: usize) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
    let mut out = Vec::new();
    for item in records {
        let (k, v) = item.map_err(backend)?;
        let entry = decode(&k, &v)?;
        if entry.is_live(now) {
            out.push((k.to_vec(), entry));
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn encode(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + entry.payload.len());
    out.push(FORMAT);
    out.extend_from_slice(&entry.schema.to_be_bytes());
    out.extend_from_slice(&entry.revision.to_be_bytes());
    out.extend_from_slice(&entry.expires_at.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&entry.payload);
    out
}

/// A stored record's header: schema, revision and expiry.
struct Header {
    schema: u16,
    revision: u64,
    expires_at: Option<u64>,
}

impl Header {
    fn is_live(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

/// Reads the header without copying the payload.
fn header(key: &[u8], bytes: &[u8]) -> Result<Header, StoreError> {
    if bytes.len() < HEADER_LEN || bytes[0] != FORMAT {
        return Err(StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: "unknown envelope format".into(),
        });
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_be_bytes(b)
    };
    let expires = u64_at(11);
    Ok(Header {
        schema: u16::from_be_bytes([bytes[1], bytes[2]]),
        revision: u64_at(3),
        expires_at: (expires != 0).then_some(expires),
    })
}

fn decode(key: &[u8], bytes: &[u8]) -> Result<Entry, StoreError> {
    let h = header(key, bytes)?;
    Ok(Entry {
        schema: h.schema,
        revision: h.revision,
        expires_at: h.expires_at,
        payload: bytes[HEADER_LEN..].to_vec(),
    })
}

impl SledStore {
    /// `write_all` under the group lock: every condition is checked on the records as read,
    /// then each write replaces exactly what was read (a compare-and-swap of the bytes). A
    /// write outside any group that lands in between makes its swap fail, and the swaps made
    /// before it are undone. sled's own transactions are not used: the first one switches every
    /// later operation on the database to a process-wide lock that a flush holds while it waits
    /// for the disk.
    fn apply_group(&self, writes: &[GroupWrite], now: u64) -> Result<bool, StoreError> {
        let mut read = Vec::with_capacity(writes.len());
        for write in writes {
            let current = self.records.get(&write.key).map_err(backend)?;
            let holds = match (write.expected_revision, &current) {
                (None, None) => true,
                (None, Some(raw)) => !header(&write.key, raw)?.is_live(now),
                (Some(_), None) => false,
                (Some(expected), Some(raw)) => header(&write.key, raw)?.revision == expected,
            };
            if !holds {
                return Ok(false);
            }
            read.push(current);
        }
        let mut done: Vec<(&[u8], &Option<sled::IVec>, Vec<u8>)> = Vec::new();
        for (write, current) in writes.iter().zip(&read) {
            let bytes = encode(&write.entry);
            let swapped = self.swap(&write.key, current.as_ref(), Some(bytes.clone()));
            if !matches!(swapped, Ok(true)) {
                for (key, before, written) in done.into_iter().rev() {
                    let undone = self.records.compare_and_swap(
                        key,
                        Some(written.as_slice()),
                        before.as_ref().map(|b| b.to_vec()),
                    );
                    if !matches!(undone, Ok(Ok(()))) {
                        tracing::warn!(key = %String::from_utf8_lossy(key),
                            "a write of a refused group was changed before it could be undone");
                    }
                }
                return swapped.map(|_| false);
            }
            done.push((&write.key, current, bytes));
        }
        Ok(true)
    }

    /// Replaces `old` (as read) by `new` atomically; `false` if the record changed meanwhile.
    fn swap(
        &self,
        key: &[u8],
        old: Option<&sled::IVec>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        match self
            .records
            .compare_and_swap(key, old, new)
            .map_err(backend)?
        {
            Ok(()) => Ok(true),
            Err(_) => Ok(false),
        }
    }
}

#[async_trait]
impl Store for SledStore {
    async fn insert_new(
        &self,
        key: &[u8],
        entry: Entry,
        now: u64,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        let bytes = encode(&entry);
        loop {
            let current = self.records.get(key).map_err(backend)?;
            if let Some(raw) = &current
                && header(key, raw)?.is_live(now)
            {
                return Ok(false);
            }
            if self.swap(key, current.as_ref(), Some(bytes.clone()))? {
                self.settle(durability).await?;
                return Ok(true);
            }
        }
    }

    async fn compare_and_swap(
        &self,
        key: &[u8],
        expected_revision: u64,
        entry: Entry,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        let Some(current) = self.records.get(key).map_err(backend)? else {
            return Ok(false);
        };
        if header(key, &current)?.revision != expected_revision {
            return Ok(false);
        }
        if !self.swap(key, Some(&current), Some(encode(&entry)))? {
            return Ok(false);
        }
        self.settle(durability).await?;
        Ok(true)
    }

    async fn write_all(
        &self,
        writes: Vec<GroupWrite>,
        now: u64,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        let written = {
            let _one_group_at_a_time = self
                .group_lock
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            self.apply_group(&writes, now)?
        };
        if written {
            self.settle(durability).await?;
        }
        Ok(written)
    }

    async fn get(&self, key: &[u8], now: u64) -> Result<Option<Entry>, StoreError> {
        match self.records.get(key).map_err(backend)? {
            Some(bytes) => {
                let entry = decode(key, &bytes)?;
                Ok(entry.is_live(now).then_some(entry))
            }
            None => Ok(None),
        }
    }

    async fn take(
        &self,
        key: &[u8],
        now: u64,
        durability: Durability,
    ) -> Result<Option<Entry>, StoreError> {
        loop {
            let Some(current) = self.records.get(key).map_err(backend)? else {
                return Ok(None);
            };
            if self.swap(key, Some(&current), None)? {
                let old = decode(key, &current)?;
                // Removing an expired record changes nothing a reader could see.
                if !old.is_live(now) {
                    return Ok(None);
                }
                self.settle(durability).await?;
                return Ok(Some(old));
            }
        }
    }

    async fn remove(&self, key: &[u8], durability: Durability) -> Result<bool, StoreError> {
        if self.records.remove(key).map_err(backend)?.is_none() {
            return Ok(false);
        }
        self.settle(durability).await?;
        Ok(true)
    }

    async fn scan(
        &self,
        prefix: &[u8],
        now: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        live(self.records.scan_prefix(prefix), now, limit)
    }

    async fn scan_after(
        &self,
        after: &[u8],
        now: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        let range = self
            .records
            .range::<&[u8], _>((Bound::Excluded(after), Bound::Unbounded));
        live(range, now, limit)
    }

    async fn sweep_expired(&self, now: u64, limit: usize) -> Result<Sweep, StoreError> {
        let (records, cursor) = (self.records.clone(), self.sweep_cursor.clone());
        // No flush: the records it deletes are already invisible to reads, and a deletion a
        // crash loses is simply made again by a later sweep.
        tokio::task::spawn_blocking(move || sweep_batch(&records, &cursor, now, limit))
            .await
            .map_err(|e| StoreError::Backend(format!("sweep task failed: {e}")))?
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.commit.durable().await
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        self.records.get(b"\0health").map(|_| ()).map_err(backend)
    }

    async fn size_on_disk(&self) -> Result<u64, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.size_on_disk())
            .await
            .map_err(|e| StoreError::Backend(format!("size task failed: {e}")))?
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rev: u64, expires_at: Option<u64>) -> Entry {
        Entry {
            schema: 1,
            revision: rev,
            expires_at,
            payload: b"{}".to_vec(),
        }
    }

    #[tokio::test]
    async fn take_once_expiry_and_cas() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).await.unwrap();
        assert!(
            s.insert_new(b"t/code/a", entry(1, Some(100)), 10, Durability::OnReturn)
                .await
                .unwrap()
        );
        assert!(
            !s.insert_new(b"t/code/a", entry(1, Some(100)), 10, Durability::OnReturn)
                .await
                .unwrap()
        );
        assert!(
            s.take(b"t/code/a", 10, Durability::OnReturn)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            s.take(b"t/code/a", 10, Durability::OnReturn)
                .await
                .unwrap()
                .is_none()
        );

        assert!(
            s.insert_new(b"t/code/b", entry(1, Some(100)), 10, Durability::OnReturn)
                .await
                .unwrap()
        );
        assert!(
            s.get(b"t/code/b", 100).await.unwrap().is_none(),
            "expired at its time"
        );
        assert!(
            s.take(b"t/code/b", 100, Durability::OnReturn)
                .await
                .unwrap()
                .is_none(),
            "an expired record cannot be taken"
        );

        assert!(
            s.insert_new(b"t/client/c", entry(1, Some(50)), 10, Durability::OnReturn)
                .await
                .unwrap()
        );
        assert!(
            !s.compare_and_swap(b"t/client/c", 7, entry(8, Some(500)), Durability::OnReturn)
                .await
                .unwrap()
        );
        assert!(
            s.compare_and_swap(b"t/client/c", 1, entry(2, Some(500)), Durability::OnReturn)
                .await
                .unwrap()
        );
        assert_eq!(
            s.sweep_expired(60, 100).await.unwrap().removed,
            0,
            "extended record survives its old expiry"
        );
        assert!(s.get(b"t/client/c", 60).await.unwrap().is_some());
        assert_eq!(s.sweep_expired(500, 100).await.unwrap().removed, 1);
        assert!(s.records.is_empty());
    }

    #[tokio::test]
    async fn sweeps_continue_where_the_last_one_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).await.unwrap();
        for (i, expires_at) in [Some(50), None, Some(50), Some(900), Some(50)]
            .iter()
            .enumerate()
        {
            let key = format!("t/code/{i}");
            assert!(
                s.insert_new(
                    key.as_bytes(),
                    entry(1, *expires_at),
                    10,
                    Durability::OnReturn
                )
                .await
                .unwrap()
            );
        }
        let first = s.sweep_expired(100, 2).await.unwrap();
        assert_eq!(
            (first.examined, first.removed, first.pass_complete),
            (2, 1, false)
        );
        let second = s.sweep_expired(100, 2).await.unwrap();
        assert_eq!(
            (second.examined, second.removed, second.pass_complete),
            (2, 1, false)
        );
        let third = s.sweep_expired(100, 2).await.unwrap();
        assert_eq!(
            (third.examined, third.removed, third.pass_complete),
            (1, 1, true)
        );
        assert_eq!(
            s.records.len(),
            2,
            "the record without expiry and the later one stay"
        );
        let again = s.sweep_expired(100, 10).await.unwrap();
        assert_eq!(
            (again.examined, again.removed, again.pass_complete),
            (2, 0, true)
        );
    }

    /// Many concurrent durable writes must all complete (sled's flush_async deadlocked here).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_durable_writes_do_not_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(SledStore::open(dir.path()).await.unwrap());
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    for i in 0..20 {
                        let key = format!("t/client/{t}-{i}");
                        assert!(
                            s.insert_new(
                                key.as_bytes(),
                                entry(1, Some(1000)),
                                0,
                                Durability::OnReturn
                            )
                            .await
                            .unwrap()
                        );
                    }
                })
            })
            .collect();
        let all = futures_util::future::join_all(tasks);
        let done = tokio::time::timeout(std::time::Duration::from_secs(120), all).await;
        assert!(done.is_ok(), "durable writes hung");
        assert_eq!(s.records.len(), 64 * 20);
    }

    #[tokio::test]
    async fn concurrent_takes_yield_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(SledStore::open(dir.path()).await.unwrap());
        s.insert_new(b"t/code/x", entry(1, None), 0, Durability::OnReturn)
            .await
            .unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.take(b"t/code/x", 0, Durability::OnReturn)
                        .await
                        .unwrap()
                        .is_some()
                })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1);
    }
}
