//! The refresh families (grants) of one user and of one client, found without reading every
//! family: two index records per family, `{tenant}/fam-user/{user}:{family}` and
//! `{tenant}/fam-client/{client}:{family}` (user and client as a digest, so that neither a `/`
//! nor a long URL reaches the key), written in the same write group as the family and before
//! it, so that a crash between them leaves at most an index entry without its family, which a
//! lookup skips and removes.
//!
//! Stores written before the index existed hold families without entries. Until the store is
//! marked indexed (`_server/families-indexed`, written by `dcr-shim store reindex` once every
//! replica runs a release that writes the index, or at the start of a server on a fresh or a
//! sled store, which no other server writes), every lookup reads every family of the tenant: a
//! replica of an older release may still be writing unindexed families, and revocation must
//! not miss them. Neither kind of lookup ever stops early.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::records::{Family, FamilyId};
use crate::domain::{ClientId, TenantId};
use crate::store::{
    Durability, Entry, GroupWrite, Namespace, Record, Records, Store, StoreError, Versioned,
    WriteGroup, store_key,
};

/// The marker of a store whose every family is indexed.
const INDEXED: &[u8] = b"_server/families-indexed";
/// How long an index entry lives: past the longest a family can (a grant's absolute lifetime
/// is at most 400 days), so that an entry never expires before its family.
const ENTRY_SECONDS: u64 = 401 * 24 * 3600;
/// Records read per page of a scan.
const PAGE: usize = 1000;
/// What a family without a recorded user is indexed under.
const NO_USER: &str = "\u{0}no user";

/// An index entry: the family is in its key.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct UserFamily {}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ClientFamily {}

impl Record for UserFamily {
    const NAMESPACE: Namespace = Namespace::FamilyByUser;
    const SCHEMA: u16 = 1;
    type Id = str;
}

impl Record for ClientFamily {
    const NAMESPACE: Namespace = Namespace::FamilyByClient;
    const SCHEMA: u16 = 1;
    type Id = str;
}

/// What an index entry of `value` (a subject or a client id) is keyed under.
fn digest(value: &str) -> String {
    crate::crypto::sha256_hex(value)[..32].to_owned()
}

fn user_key(subject: Option<&str>) -> String {
    digest(subject.unwrap_or(NO_USER))
}

/// The two indexes.
#[derive(Clone, Copy, Debug)]
enum Index {
    User,
    Client,
}

/// Which families a lookup is about.
#[derive(Clone, Debug)]
pub(crate) enum GrantFilter {
    All,
    Client(ClientId),
    /// The user's subject at the IdP.
    User(String),
    /// Families that record no user (from before users were recorded, or an IdP without ID
    /// tokens): revocation by user cannot reach them.
    WithoutUser,
}

impl GrantFilter {
    fn matches(&self, family: &Family) -> bool {
        match self {
            Self::All => true,
            Self::Client(id) => family.client_id == *id,
            Self::User(subject) => family.subject.as_deref() == Some(subject.as_str()),
            Self::WithoutUser => family.subject.is_none(),
        }
    }

    /// The index, and the id prefix in it, that holds this filter's families.
    fn index(&self) -> Option<(Index, String)> {
        match self {
            Self::All => None,
            Self::Client(id) => Some((Index::Client, format!("{}:", digest(id.as_str())))),
            Self::User(s) => Some((Index::User, format!("{}:", user_key(Some(s))))),
            Self::WithoutUser => Some((Index::User, format!("{}:", user_key(None)))),
        }
    }
}

/// Adds a new family and its index entries to `group`, the entries first.
pub(crate) fn insert_family(
    group: &mut WriteGroup,
    tenant: &TenantId,
    id: &FamilyId,
    family: &Family,
    expires_at: Option<u64>,
) -> Result<(), StoreError> {
    for (key, entry) in index_entries(tenant, id, family, expires_at) {
        group.insert_entry(key, entry);
    }
    group.insert_new(tenant, id, family, expires_at)?;
    Ok(())
}

/// The ids of a family's two index records.
fn index_ids(id: &FamilyId, family: &Family) -> (String, String) {
    (
        format!("{}:{id}", user_key(family.subject.as_deref())),
        format!("{}:{id}", digest(family.client_id.as_str())),
    )
}

/// Calls `visit` with every live family of `tenant` that `filter` matches: through the index
/// where the store is marked indexed, else by reading every family of the tenant, page by
/// page. Never stops early; an error of the store ends the walk with that error.
pub(crate) async fn visit_families(
    records: &Records,
    tenant: &TenantId,
    filter: &GrantFilter,
    now: u64,
    mut visit: impl FnMut(FamilyId, Versioned<Family>),
) -> Result<(), StoreError> {
    let indexed = is_indexed(records.backend().as_ref(), now).await?;
    match filter.index().filter(|_| indexed) {
        Some((by, key)) => {
            let mut ids = Vec::new();
            let mut take = |id: &str| {
                let family = id.split_once(':').map_or(id, |(_, f)| f);
                ids.push(FamilyId::from_admin(family));
                Ok(true)
            };
            match by {
                Index::User => {
                    records
                        .walk::<UserFamily>(tenant, &key, now, |id, _| take(id))
                        .await?
                }
                Index::Client => {
                    records
                        .walk::<ClientFamily>(tenant, &key, now, |id, _| take(id))
                        .await?
                }
            }
            for id in ids {
                match records.get::<Family>(tenant, &id, now).await? {
                    Some(f) if filter.matches(&f.value) => visit(id, f),
                    Some(_) => {}
                    // The family expired, or a crash kept only its index entries.
                    None => forget(records, tenant, &id, filter).await?,
                }
            }
        }
        None => {
            records
                .walk::<Family>(tenant, "", now, |id, family| {
                    if filter.matches(&family.value) {
                        visit(FamilyId::from_admin(id), family);
                    }
                    Ok(true)
                })
                .await?;
        }
    }
    Ok(())
}

/// Removes an index entry whose family is gone.
async fn forget(
    records: &Records,
    tenant: &TenantId,
    id: &FamilyId,
    filter: &GrantFilter,
) -> Result<(), StoreError> {
    if let Some((by, key)) = filter.index() {
        let ns = match by {
            Index::User => Namespace::FamilyByUser,
            Index::Client => Namespace::FamilyByClient,
        };
        let entry = format!("{key}{id}");
        records
            .backend()
            .remove(&store_key(tenant, ns, entry.as_str()), Durability::Deferred)
            .await?;
    }
    Ok(())
}

/// What `reindex` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reindexed {
    /// Families examined.
    pub families: u64,
    /// Index entries written (those already there are not counted).
    pub entries_written: u64,
    /// The tenants whose families were indexed.
    pub tenants: BTreeSet<String>,
}

/// Indexes every live family of every tenant in `store`, then marks the store indexed.
/// Idempotent, and safe while servers of this release use the store (it only adds entries).
/// Run it once no server of an older release writes to the store.
pub async fn reindex(store: &dyn Store, now: u64) -> Result<Reindexed, StoreError> {
    let mut done = Reindexed::default();
    let mut after = Vec::new();
    let family_ns = format!("/{}/", Namespace::Family.as_str());
    loop {
        let page = store.scan_after(&after, now, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        let mut entries = Vec::new();
        for (key, entry) in page {
            let text = String::from_utf8_lossy(&key).into_owned();
            let Some((tenant, id)) = text.split_once(&family_ns) else {
                continue;
            };
            let Ok(tenant) = TenantId::parse(tenant) else {
                continue;
            };
            let expires_at = entry.expires_at;
            let family = Records::decode::<Family>(&key, entry)?.value;
            done.families += 1;
            done.tenants.insert(tenant.to_string());
            entries.extend(index_entries(
                &tenant,
                &FamilyId::from_admin(id),
                &family,
                expires_at,
            ));
        }
        done.entries_written += write_missing(store, entries, now).await?;
    }
    store.flush().await?;
    mark_indexed(store, now).await?;
    Ok(done)
}

/// Writes the index entries that are not there yet; returns how many it wrote. A page at once
/// where none is (the usual first run), else one by one.
async fn write_missing(
    store: &dyn Store,
    entries: Vec<(Vec<u8>, Entry)>,
    now: u64,
) -> Result<u64, StoreError> {
    if entries.is_empty() {
        return Ok(0);
    }
    let group: Vec<GroupWrite> = entries
        .iter()
        .map(|(key, entry)| GroupWrite {
            key: key.clone(),
            expected_revision: None,
            entry: entry.clone(),
        })
        .collect();
    if store.write_all(group, now, Durability::Deferred).await? {
        return Ok(entries.len() as u64);
    }
    let mut written = 0;
    for (key, entry) in entries {
        if store
            .insert_new(&key, entry, now, Durability::Deferred)
            .await?
        {
            written += 1;
        }
    }
    Ok(written)
}

/// The two index records of a family (which expires at `family_expires_at`), as keys and
/// entries: they outlive it, also a family of an older release whose expiry slid past the
/// longest lifetime this release gives.
fn index_entries(
    tenant: &TenantId,
    id: &FamilyId,
    family: &Family,
    family_expires_at: Option<u64>,
) -> [(Vec<u8>, Entry); 2] {
    let until = family
        .created_at
        .saturating_add(ENTRY_SECONDS)
        .max(family_expires_at.unwrap_or(0));
    let entry = || Entry {
        schema: 1,
        revision: 1,
        expires_at: Some(until),
        payload: b"{}".to_vec(),
    };
    let (by_user, by_client) = index_ids(id, family);
    [
        (
            store_key(tenant, Namespace::FamilyByUser, by_user.as_str()),
            entry(),
        ),
        (
            store_key(tenant, Namespace::FamilyByClient, by_client.as_str()),
            entry(),
        ),
    ]
}

/// Marks the store indexed (durably).
pub async fn mark_indexed(store: &dyn Store, now: u64) -> Result<(), StoreError> {
    let entry = Entry {
        schema: 1,
        revision: 1,
        expires_at: None,
        payload: b"{}".to_vec(),
    };
    store
        .insert_new(INDEXED, entry, now, Durability::OnReturn)
        .await?;
    Ok(())
}

/// Whether the store is marked indexed.
pub async fn is_indexed(store: &dyn Store, now: u64) -> Result<bool, StoreError> {
    Ok(store.get(INDEXED, now).await?.is_some())
}
