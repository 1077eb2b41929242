//! The embedded store on sled: one `records` tree, and an `expiry` index tree whose keys are
//! `expires_at (u64 big-endian) ++ record key`, so the sweeper reads only what is due.
//! Records change by single-key compare-and-swap (atomic take-once and versioned updates);
//! every write is flushed to disk before it returns.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use sled::Tree;

use super::group_commit::GroupCommit;
use super::{Entry, Store, StoreError};

const FORMAT: u8 = 1;
/// sled page cache size.
pub const CACHE_BYTES: u64 = 64 * 1024 * 1024;
const HEADER_LEN: usize = 1 + 2 + 8 + 8;

pub struct SledStore {
    records: Tree,
    expiry: Tree,
    commit: Arc<GroupCommit>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            // sled's default page cache is 1 GiB; the working set (clients in use, short-lived
            // codes and transactions) is far smaller.
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| {
                StoreError::Backend(format!("cannot open the store in {}: {e}", dir.display()))
            })?;
        let records = db.open_tree("records").map_err(backend)?;
        let expiry = db.open_tree("expiry").map_err(backend)?;
        // sled's `flush_async` runs on sled's own small thread pool and deadlocks under
        // concurrent callers, so the blocking flush runs on tokio's blocking threads, one at a
        // time, shared by every writer waiting for it.
        let commit = GroupCommit::new(move || db.flush().map(|_| ()).map_err(|e| e.to_string()));
        Ok(Self {
            records,
            expiry,
            commit,
        })
    }

    /// Makes every write so far durable.
    async fn flush(&self) -> Result<(), StoreError> {
        self.commit.durable().await
    }
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

fn decode(key: &[u8], bytes: &[u8]) -> Result<Entry, StoreError> {
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
    Ok(Entry {
        schema: u16::from_be_bytes([bytes[1], bytes[2]]),
        revision: u64_at(3),
        expires_at: (expires != 0).then_some(expires),
        payload: bytes[HEADER_LEN..].to_vec(),
    })
}

fn expiry_key(expires_at: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&expires_at.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Writes the index entry for a record that is about to carry `entry`. Index entries are
/// written before the record and removed after it, so a crash can leave only a stale entry
/// (which the sweeper skips), never a record the sweeper cannot find.
fn index(expiry: &Tree, key: &[u8], entry: &Entry) -> Result<(), StoreError> {
    if let Some(t) = entry.expires_at {
        expiry
            .insert(expiry_key(t, key), &[][..])
            .map_err(backend)?;
    }
    Ok(())
}

fn unindex(expiry: &Tree, key: &[u8], old: &Entry) -> Result<(), StoreError> {
    if let Some(t) = old.expires_at {
        expiry.remove(expiry_key(t, key)).map_err(backend)?;
    }
    Ok(())
}

impl SledStore {
    /// Replaces `old` (as read) by `new` atomically; `false` if the record changed meanwhile.
    /// Single-key compare-and-swap only: sled 0.34's multi-tree transactions can deadlock with
    /// concurrent flushes, so the expiry index is kept consistent by write order instead.
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
    async fn insert_new(&self, key: &[u8], entry: Entry, now: u64) -> Result<bool, StoreError> {
        let bytes = encode(&entry);
        loop {
            let current = self.records.get(key).map_err(backend)?;
            let old = match &current {
                Some(raw) => {
                    let old = decode(key, raw)?;
                    if old.is_live(now) {
                        return Ok(false);
                    }
                    Some(old)
                }
                None => None,
            };
            index(&self.expiry, key, &entry)?;
            if self.swap(key, current.as_ref(), Some(bytes.clone()))? {
                if let Some(old) = old.filter(|o| o.expires_at != entry.expires_at) {
                    unindex(&self.expiry, key, &old)?;
                }
                self.flush().await?;
                return Ok(true);
            }
        }
    }

    async fn compare_and_swap(
        &self,
        key: &[u8],
        expected_revision: u64,
        entry: Entry,
    ) -> Result<bool, StoreError> {
        let Some(current) = self.records.get(key).map_err(backend)? else {
            return Ok(false);
        };
        let old = decode(key, &current)?;
        if old.revision != expected_revision {
            return Ok(false);
        }
        index(&self.expiry, key, &entry)?;
        if !self.swap(key, Some(&current), Some(encode(&entry)))? {
            return Ok(false);
        }
        if old.expires_at != entry.expires_at {
            unindex(&self.expiry, key, &old)?;
        }
        self.flush().await?;
        Ok(true)
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

    async fn take(&self, key: &[u8], now: u64) -> Result<Option<Entry>, StoreError> {
        loop {
            let Some(current) = self.records.get(key).map_err(backend)? else {
                return Ok(None);
            };
            if self.swap(key, Some(&current), None)? {
                let old = decode(key, &current)?;
                unindex(&self.expiry, key, &old)?;
                self.flush().await?;
                return Ok(old.is_live(now).then_some(old));
            }
        }
    }

    async fn remove(&self, key: &[u8]) -> Result<bool, StoreError> {
        let Some(old) = self.records.remove(key).map_err(backend)? else {
            return Ok(false);
        };
        if let Ok(old) = decode(key, &old) {
            unindex(&self.expiry, key, &old)?;
        }
        self.flush().await?;
        Ok(true)
    }

    async fn scan(
        &self,
        prefix: &[u8],
        now: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        let mut out = Vec::new();
        for item in self.records.scan_prefix(prefix) {
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

    async fn sweep_expired(&self, now: u64, limit: usize) -> Result<usize, StoreError> {
        let due: Vec<sled::IVec> = self
            .expiry
            .range(..now.saturating_add(1).to_be_bytes().to_vec())
            .keys()
            .take(limit)
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        let mut removed = 0;
        for index_key in &due {
            let key = &index_key[8..];
            let mut due_at = [0u8; 8];
            due_at.copy_from_slice(&index_key[..8]);
            let due_at = u64::from_be_bytes(due_at);
            // A record rewritten with a later expiry keeps living; its index entry is elsewhere.
            // The index entry goes only once its record is gone or has another expiry; if a
            // concurrent write won the swap, the entry stays for the next sweep.
            let settled = match self.records.get(key).map_err(backend)? {
                Some(current) => {
                    let still_due = decode(key, &current)
                        .map(|e| e.expires_at == Some(due_at))
                        .unwrap_or(false);
                    if !still_due {
                        true
                    } else if self.swap(key, Some(&current), None)? {
                        removed += 1;
                        true
                    } else {
                        false
                    }
                }
                None => true,
            };
            if settled {
                self.expiry.remove(index_key).map_err(backend)?;
            }
        }
        if !due.is_empty() {
            self.flush().await?;
        }
        Ok(removed)
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        self.records.get(b"\0health").map(|_| ()).map_err(backend)
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
        let s = SledStore::open(dir.path()).unwrap();
        assert!(
            s.insert_new(b"t/code/a", entry(1, Some(100)), 10)
                .await
                .unwrap()
        );
        assert!(
            !s.insert_new(b"t/code/a", entry(1, Some(100)), 10)
                .await
                .unwrap()
        );
        assert!(s.take(b"t/code/a", 10).await.unwrap().is_some());
        assert!(s.take(b"t/code/a", 10).await.unwrap().is_none());

        assert!(
            s.insert_new(b"t/code/b", entry(1, Some(100)), 10)
                .await
                .unwrap()
        );
        assert!(
            s.get(b"t/code/b", 100).await.unwrap().is_none(),
            "expired at its time"
        );
        assert!(
            s.take(b"t/code/b", 100).await.unwrap().is_none(),
            "an expired record cannot be taken"
        );

        assert!(
            s.insert_new(b"t/client/c", entry(1, Some(50)), 10)
                .await
                .unwrap()
        );
        assert!(
            !s.compare_and_swap(b"t/client/c", 7, entry(8, Some(500)))
                .await
                .unwrap()
        );
        assert!(
            s.compare_and_swap(b"t/client/c", 1, entry(2, Some(500)))
                .await
                .unwrap()
        );
        assert_eq!(
            s.sweep_expired(60, 100).await.unwrap(),
            0,
            "extended record survives its old expiry"
        );
        assert!(s.get(b"t/client/c", 60).await.unwrap().is_some());
        assert_eq!(s.sweep_expired(500, 100).await.unwrap(), 1);
        assert!(s.records.is_empty() && s.expiry.is_empty());
    }

    /// Many concurrent durable writes must all complete (sled's flush_async deadlocked here).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_durable_writes_do_not_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    for i in 0..20 {
                        let key = format!("t/client/{t}-{i}");
                        assert!(
                            s.insert_new(key.as_bytes(), entry(1, Some(1000)), 0)
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
        let s = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
        s.insert_new(b"t/code/x", entry(1, None), 0).await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.take(b"t/code/x", 0).await.unwrap().is_some() })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1);
    }
}
