//! `dcr-shim store copy`: every live record of one store into another, for moving from sled to
//! PostgreSQL and back (a backup). Offline: neither store may be in use by a server, since a
//! record written meanwhile could be missed. Idempotent: a record already in the target with
//! the same contents is counted and left; one with other contents is reported and left too,
//! never overwritten.

use super::{Durability, Store, StoreError};

/// What a copy did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Written to the target.
    pub copied: u64,
    /// Already in the target, identical.
    pub present: u64,
    /// In the target with other contents: left as they were, keys listed (at most 20).
    pub differing: u64,
    pub differing_keys: Vec<String>,
}

/// Copies every record of `from` that is live at `now` into `to`.
pub async fn copy(from: &dyn Store, to: &dyn Store, now: u64) -> Result<Copied, StoreError> {
    const PAGE: usize = 1000;
    let mut done = Copied::default();
    let mut after = Vec::new();
    loop {
        let page = from.scan_after(&after, now, PAGE).await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = last.clone();
        for (key, entry) in page {
            if to
                .insert_new(&key, entry.clone(), now, Durability::Deferred)
                .await?
            {
                done.copied += 1;
            } else if to.get(&key, now).await?.as_ref() == Some(&entry) {
                done.present += 1;
            } else {
                done.differing += 1;
                if done.differing_keys.len() < 20 {
                    done.differing_keys
                        .push(String::from_utf8_lossy(&key).into_owned());
                }
            }
        }
    }
    to.flush().await?;
    Ok(done)
}
