//! Storage: a small key-value trait with expiry and take-once, and a typed layer over it.
//!
//! Every key is `{tenant}/{namespace}/{id}`; every record carries its schema version, a revision
//! (bumped by each write, for compare-and-swap) and its expiry time. Writes and takes are durable
//! when they return, or, for a request that writes several records, at its one flush before it
//! answers: a success answer goes out only after the records it depends on are on disk.

mod copy;
mod counted;
mod group_commit;
mod open;
pub mod postgres;
pub(crate) mod sled_store;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crypto::HandleKey;
use crate::domain::{ClientId, TenantId};

pub use copy::{Copied, copy};
pub use counted::Counted;
pub use open::open_spec;
pub use postgres::{PostgresLocation, PostgresStore};
pub use sled_store::SledStore;

/// The kinds of record, each its own key space within a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Namespace {
    Client,
    Code,
    Transaction,
    Refresh,
    Family,
    /// Spent client assertion ids.
    Assertion,
    /// A tenant's keys for signing minted tokens.
    Keys,
    /// The families of a user, and of a client (`oauth/family_index.rs`).
    FamilyByUser,
    FamilyByClient,
    /// Administrators' decisions on the document clients of one CIMD host (`oauth/approval/`).
    CimdDecision,
    /// Requests for an administrator's approval, one per registered client or CIMD host.
    ApprovalRequest,
    /// What denied registered clients looked like, so that the same one cannot register again.
    DeniedLikeness,
}

impl Namespace {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Code => "code",
            Self::Transaction => "txn",
            Self::Refresh => "refresh",
            Self::Family => "family",
            Self::Assertion => "jti",
            Self::Keys => "keys",
            Self::FamilyByUser => "fam-user",
            Self::FamilyByClient => "fam-client",
            Self::CimdDecision => "cimd-decision",
            Self::ApprovalRequest => "approval",
            Self::DeniedLikeness => "denied-likeness",
        }
    }
}

/// `{tenant}/{namespace}/{id}`: tenant ids cannot contain '/', so tenants never overlap.
pub(crate) fn store_key(
    tenant: &TenantId,
    ns: Namespace,
    id: &(impl RecordId + ?Sized),
) -> Vec<u8> {
    let id = id.as_id();
    format!("{}/{}/{}", tenant, ns.as_str(), id).into_bytes()
}

/// The prefix of every key of one namespace of one tenant.
pub(crate) fn namespace_prefix(tenant: &TenantId, ns: Namespace) -> Vec<u8> {
    format!("{}/{}/", tenant, ns.as_str()).into_bytes()
}

/// A stored record as the backend sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Version of the payload's schema, set by the typed layer.
    pub schema: u16,
    /// Bumped by every write; compare-and-swap checks it.
    pub revision: u64,
    /// Unix seconds after which the record is gone; `None` never expires.
    pub expires_at: Option<u64>,
    pub payload: Vec<u8>,
}

impl Entry {
    pub fn is_live(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

/// One write of a group that [`Store::write_all`] applies all together or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupWrite {
    pub key: Vec<u8>,
    /// `None`: the key must hold no live record (an insert); `Some(r)`: the record must be at
    /// revision `r` (a compare-and-swap).
    pub expected_revision: Option<u64>,
    pub entry: Entry,
}

/// What one call of [`Store::sweep_expired`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub examined: usize,
    pub removed: usize,
    /// The call reached the end of the store; the next one starts over from the beginning.
    pub pass_complete: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// The backend cannot be reached now (a database down or unreachable): worth a retry.
    #[error("the store is not reachable: {0}")]
    Unavailable(String),
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

/// When a write reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Before the write returns.
    OnReturn,
    /// With the next flush or durable write, for a request that makes several writes and
    /// flushes once before it answers. A crash before that flush may keep any of them, so
    /// every combination must be safe.
    Deferred,
}

/// The backend interface; `SledStore` is the embedded implementation. Every change is visible
/// to other callers at once; `durability` says when it is also on disk.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes a new record if no live record has this key; returns whether it wrote.
    async fn insert_new(
        &self,
        key: &[u8],
        entry: Entry,
        now: u64,
        durability: Durability,
    ) -> Result<bool, StoreError>;
    /// Replaces the record if its revision is `expected_revision`; returns whether it wrote.
    async fn compare_and_swap(
        &self,
        key: &[u8],
        expected_revision: u64,
        entry: Entry,
        durability: Durability,
    ) -> Result<bool, StoreError>;
    /// Applies every write of `writes` (each to a different key) if each one's condition
    /// holds, else none of them (on sled, another thread may see part of a group while it is
    /// applied or undone, and a crash may keep its first writes: every caller's writes are
    /// ordered so that any prefix is safe);
    /// returns whether it wrote. One round trip to a database: a request's several writes
    /// commit together.
    async fn write_all(
        &self,
        writes: Vec<GroupWrite>,
        now: u64,
        durability: Durability,
    ) -> Result<bool, StoreError>;
    /// Reads a live record.
    async fn get(&self, key: &[u8], now: u64) -> Result<Option<Entry>, StoreError>;
    /// Removes and returns a live record; of concurrent callers at most one gets it.
    async fn take(
        &self,
        key: &[u8],
        now: u64,
        durability: Durability,
    ) -> Result<Option<Entry>, StoreError>;
    /// Removes a record; returns whether one was there.
    async fn remove(&self, key: &[u8], durability: Durability) -> Result<bool, StoreError>;
    /// Makes every write so far durable.
    async fn flush(&self) -> Result<(), StoreError>;
    /// Live records whose key starts with `prefix`, up to `limit`.
    async fn scan(
        &self,
        prefix: &[u8],
        now: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError>;
    /// Live records whose key is after `after` (all when it is empty), in key order, up to
    /// `limit`: a walk over the whole store in pages (`store copy`).
    async fn scan_after(
        &self,
        after: &[u8],
        now: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError>;
    /// Examines up to `limit` records, continuing where the previous call stopped, and deletes
    /// those whose expiry is at or before `now`. Reads already treat expired records as absent;
    /// this reclaims their space.
    async fn sweep_expired(&self, now: u64, limit: usize) -> Result<Sweep, StoreError>;
    /// A cheap check that the backend answers.
    async fn check_health(&self) -> Result<(), StoreError>;

    /// Bytes the store takes on disk.
    async fn size_on_disk(&self) -> Result<u64, StoreError>;

    /// Whether other servers may use this store at the same time (then what one server
    /// serializes in memory must also be serialized in the store).
    fn is_shared(&self) -> bool {
        false
    }
}

/// A typed record: its namespace, schema version, and the type of its id, so that a record can
/// be looked up only by the right kind of value (a code by the `HandleKey` of a code, a client
/// by its `ClientId`).
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    const NAMESPACE: Namespace;
    const SCHEMA: u16;
    type Id: RecordId + ?Sized;
}

/// A value that identifies one record within its tenant and namespace.
pub trait RecordId: Sync {
    /// The id as it appears in the store key; never contains '/'.
    fn as_id(&self) -> &str;
}

/// Records behind handed-out values are keyed by the value's hash (`crate::crypto::Handle::key`).
impl RecordId for str {
    fn as_id(&self) -> &str {
        self
    }
}

impl RecordId for HandleKey {
    fn as_id(&self) -> &str {
        self.as_str()
    }
}

impl RecordId for ClientId {
    fn as_id(&self) -> &str {
        self.as_str()
    }
}

/// A record read back with the revision to use for a later compare-and-swap.
#[derive(Clone, Debug)]
pub struct Versioned<R> {
    pub value: R,
    pub revision: u64,
    pub(crate) expires_at: Option<u64>,
}

/// The typed layer the protocol code uses.
#[derive(Clone)]
pub struct Records {
    store: Arc<dyn Store>,
    durability: Durability,
}

impl Records {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            durability: Durability::OnReturn,
        }
    }

    /// The same records, with writes that reach the disk only at the next [`Records::flush`]
    /// (or durable write): for a request that writes several records before it answers.
    pub fn deferred(&self) -> Records {
        Records {
            store: self.store.clone(),
            durability: Durability::Deferred,
        }
    }

    /// Makes every write so far durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.store.flush().await
    }

    pub fn backend(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn encode<R: Record>(
        value: &R,
        revision: u64,
        expires_at: Option<u64>,
    ) -> Result<Entry, StoreError> {
        let payload = serde_json::to_vec(value)
            .map_err(|e| StoreError::Backend(format!("cannot encode record: {e}")))?;
        Ok(Entry {
            schema: R::SCHEMA,
            revision,
            expires_at,
            payload,
        })
    }

    pub(crate) fn decode<R: Record>(key: &[u8], entry: Entry) -> Result<Versioned<R>, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason,
        };
        if entry.schema != R::SCHEMA {
            return Err(corrupt(format!(
                "schema version {} where {} was expected",
                entry.schema,
                R::SCHEMA
            )));
        }
        let value = serde_json::from_slice(&entry.payload).map_err(|e| corrupt(e.to_string()))?;
        Ok(Versioned {
            value,
            revision: entry.revision,
            expires_at: entry.expires_at,
        })
    }

    /// Stores a new record under an id nobody holds; `false` if the id is taken.
    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(otel.name = %format_args!("store insert {}", R::NAMESPACE.as_str())))]
    pub async fn insert_new<R: Record>(
        &self,
        tenant: &TenantId,
        id: &R::Id,
        value: &R,
        expires_at: Option<u64>,
        now: u64,
    ) -> Result<bool, StoreError> {
        let entry = Self::encode(value, 1, expires_at)?;
        self.store
            .insert_new(
                &store_key(tenant, R::NAMESPACE, id),
                entry,
                now,
                self.durability,
            )
            .await
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(otel.name = %format_args!("store get {}", R::NAMESPACE.as_str())))]
    pub(crate) async fn get<R: Record>(
        &self,
        tenant: &TenantId,
        id: &R::Id,
        now: u64,
    ) -> Result<Option<Versioned<R>>, StoreError> {
        let key = store_key(tenant, R::NAMESPACE, id);
        match self.store.get(&key, now).await? {
            Some(entry) => Ok(Some(Self::decode(&key, entry)?)),
            None => Ok(None),
        }
    }

    /// Reads and deletes in one step: at most one caller ever sees the record.
    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(otel.name = %format_args!("store take {}", R::NAMESPACE.as_str())))]
    pub(crate) async fn take<R: Record>(
        &self,
        tenant: &TenantId,
        id: &R::Id,
        now: u64,
    ) -> Result<Option<R>, StoreError> {
        let key = store_key(tenant, R::NAMESPACE, id);
        match self.store.take(&key, now, self.durability).await? {
            Some(entry) => Ok(Some(Self::decode(&key, entry)?.value)),
            None => Ok(None),
        }
    }

    /// Applies `group` all together or not at all; `false` (nothing written) if one of its
    /// conditions does not hold.
    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(otel.name = "store write"))]
    pub(crate) async fn write_all(&self, group: WriteGroup, now: u64) -> Result<bool, StoreError> {
        self.store
            .write_all(group.writes, now, self.durability)
            .await
    }

    /// Writes `value` if the record is still at `current.revision`; `false` if someone else wrote first.
    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(otel.name = %format_args!("store update {}", R::NAMESPACE.as_str())))]
    pub(crate) async fn update<R: Record>(
        &self,
        tenant: &TenantId,
        id: &R::Id,
        current_revision: u64,
        value: &R,
        expires_at: Option<u64>,
    ) -> Result<bool, StoreError> {
        let entry = Self::encode(value, current_revision + 1, expires_at)?;
        self.store
            .compare_and_swap(
                &store_key(tenant, R::NAMESPACE, id),
                current_revision,
                entry,
                self.durability,
            )
            .await
    }

    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(otel.name = %format_args!("store remove {}", R::NAMESPACE.as_str())))]
    pub(crate) async fn remove<R: Record>(
        &self,
        tenant: &TenantId,
        id: &R::Id,
    ) -> Result<bool, StoreError> {
        self.store
            .remove(&store_key(tenant, R::NAMESPACE, id), self.durability)
            .await
    }

    /// Calls `each` with every live record of one namespace of one tenant whose id starts with
    /// `id_prefix`, and its id, in id order and page by page, until `each` says to stop
    /// (`Ok(false)`) or fails.
    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(otel.name = %format_args!("store walk {}", R::NAMESPACE.as_str())))]
    pub(crate) async fn walk<R: Record>(
        &self,
        tenant: &TenantId,
        id_prefix: &str,
        now: u64,
        mut each: impl FnMut(&str, Versioned<R>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        const PAGE: usize = 1000;
        let prefix = [
            namespace_prefix(tenant, R::NAMESPACE),
            id_prefix.as_bytes().to_vec(),
        ]
        .concat();
        // The prefix sorts before every key that extends it.
        let mut after = prefix.clone();
        loop {
            let page = self.store.scan_after(&after, now, PAGE).await?;
            let full = page.len() == PAGE;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = last.clone();
            for (key, entry) in page {
                if !key.starts_with(&prefix) {
                    return Ok(());
                }
                let ns = namespace_prefix(tenant, R::NAMESPACE).len();
                let id = String::from_utf8_lossy(&key[ns..]).into_owned();
                if !each(&id, Self::decode(&key, entry)?)? {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Live records of one namespace of one tenant, up to `limit`.
    #[tracing::instrument(level = "debug", name = "store", skip_all, fields(otel.name = %format_args!("store list {}", R::NAMESPACE.as_str())))]
    pub async fn list<R: Record>(
        &self,
        tenant: &TenantId,
        now: u64,
        limit: usize,
    ) -> Result<Vec<Versioned<R>>, StoreError> {
        let rows = self
            .store
            .scan(&namespace_prefix(tenant, R::NAMESPACE), now, limit)
            .await?;
        rows.into_iter().map(|(k, e)| Self::decode(&k, e)).collect()
    }
}

/// Typed writes that [`Records::write_all`] applies together or not at all: the records one
/// request creates and the ones it moves on, committed at once.
#[derive(Default)]
pub(crate) struct WriteGroup {
    writes: Vec<GroupWrite>,
}

impl WriteGroup {
    /// A new record under an id nobody holds (the group fails if a live record has it).
    pub(crate) fn insert_new<R: Record>(
        &mut self,
        tenant: &TenantId,
        id: &R::Id,
        value: &R,
        expires_at: Option<u64>,
    ) -> Result<&mut Self, StoreError> {
        self.push(tenant, id, None, value, expires_at)
    }

    /// A new record given as its key and entry (the group fails if a live record has the key).
    pub(crate) fn insert_entry(&mut self, key: Vec<u8>, entry: Entry) -> &mut Self {
        self.writes.push(GroupWrite {
            key,
            expected_revision: None,
            entry,
        });
        self
    }

    /// `value` over the record at `current_revision` (the group fails if it moved on).
    pub(crate) fn update<R: Record>(
        &mut self,
        tenant: &TenantId,
        id: &R::Id,
        current_revision: u64,
        value: &R,
        expires_at: Option<u64>,
    ) -> Result<&mut Self, StoreError> {
        self.push(tenant, id, Some(current_revision), value, expires_at)
    }

    /// A write at revision 1 (an insert) or one after `expected_revision`.
    fn push<R: Record>(
        &mut self,
        tenant: &TenantId,
        id: &R::Id,
        expected_revision: Option<u64>,
        value: &R,
        expires_at: Option<u64>,
    ) -> Result<&mut Self, StoreError> {
        let revision = expected_revision.map_or(1, |r| r + 1);
        self.writes.push(GroupWrite {
            key: store_key(tenant, R::NAMESPACE, id),
            expected_revision,
            entry: Records::encode(value, revision, expires_at)?,
        });
        Ok(self)
    }
}
