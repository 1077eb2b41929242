//! The store remembers which server secret wrote it: keyed fingerprints of the current secret
//! and, during a rotation, the previous one (`ServerKeys::fingerprints`). A server whose secret
//! matches neither refuses to start, with a message that says what to do: on a shared store a
//! replica with another secret would seal what the others cannot open, and tell a share of the
//! users to sign in again; on sled, a `--secret-file` that is not the one the data was written
//! with would do the same to everyone.
//!
//! A rotation is started by a server whose previous secret is the stored current one (the
//! store then records the new one as current and the old as previous); servers still on the old
//! secret keep starting while it is the stored previous one; a server started without a
//! previous secret ends the rotation. `--new-secret` replaces the fingerprint on purpose.

use serde::{Deserialize, Serialize};

use crate::crypto::ServerKeys;
use crate::store::{Durability, Entry, Store, StoreError};

/// Where the fingerprints live: outside every tenant (tenant ids cannot start with `_`).
const KEY: &[u8] = b"_server/secret-fingerprint";
const SCHEMA: u16 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprints {
    current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
}

/// Why the server may not use this store with its secret.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error(
        "the server secret (fingerprint {ours}) is not the one this store was written with (fingerprint {stored}{}): every replica on one store must be started with the same --secret-file; during a rotation, give the old secret as --previous-secret-file. Start with --new-secret only to replace the secret on purpose (every client then signs in again)",
        .stored_previous.as_ref().map(|p| format!(", or {p} while rotating")).unwrap_or_default()
    )]
    Mismatch {
        ours: String,
        stored: String,
        stored_previous: Option<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `keys` against the fingerprints in `store`, records them on a first start, and
/// follows a rotation. `replace` (`--new-secret`) records this server's secret whatever was
/// stored.
pub(crate) async fn check(
    store: &dyn Store,
    keys: &ServerKeys,
    replace: bool,
    now: u64,
) -> Result<(), FingerprintError> {
    let (ours, our_previous) = keys.fingerprints();
    let wanted = Fingerprints {
        current: ours.clone(),
        previous: our_previous.clone(),
    };
    // A lost compare-and-swap means another replica wrote at the same moment: read again.
    for _ in 0..8 {
        let Some(entry) = store.get(KEY, now).await? else {
            if store
                .insert_new(KEY, entry_of(&wanted)?, now, Durability::OnReturn)
                .await?
            {
                tracing::info!(fingerprint = %ours, "the store records this server secret's fingerprint");
                return Ok(());
            }
            continue;
        };
        let stored: Fingerprints =
            serde_json::from_slice(&entry.payload).map_err(|e| StoreError::Corrupt {
                key: String::from_utf8_lossy(KEY).into_owned(),
                reason: e.to_string(),
            })?;
        let next = if ours == stored.current {
            // The same secret; the previous one it names (or none: a rotation is over).
            wanted.clone()
        } else if stored.previous.as_deref() == Some(ours.as_str()) {
            // A server still on the old secret while others rotate: nothing changes.
            return Ok(());
        } else if our_previous.as_deref() == Some(stored.current.as_str()) {
            tracing::warn!(fingerprint = %ours, previous = %stored.current, "server secret rotation: the store now records the new secret, and the old one while the rotation lasts");
            wanted.clone()
        } else if replace {
            tracing::warn!(fingerprint = %ours, replaced = %stored.current, "--new-secret: the store now records this server's new secret");
            wanted.clone()
        } else {
            return Err(FingerprintError::Mismatch {
                ours,
                stored: stored.current,
                stored_previous: stored.previous,
            });
        };
        if next == stored {
            return Ok(());
        }
        if store
            .compare_and_swap(KEY, entry.revision, entry_of(&next)?, Durability::OnReturn)
            .await?
        {
            return Ok(());
        }
    }
    Err(StoreError::Backend("the secret fingerprint kept changing under this server".into()).into())
}

fn entry_of(f: &Fingerprints) -> Result<Entry, StoreError> {
    Ok(Entry {
        schema: SCHEMA,
        revision: 1,
        expires_at: None,
        payload: serde_json::to_vec(f)
            .map_err(|e| StoreError::Backend(format!("cannot encode the fingerprint: {e}")))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn keys(current: u8, previous: Option<u8>) -> ServerKeys {
        ServerKeys::from_bytes([current; 32], previous.map(|p| [p; 32]))
    }

    #[tokio::test]
    async fn a_replica_with_another_secret_is_refused_and_a_rotation_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).await.unwrap();
        check(&store, &keys(1, None), false, 0).await.unwrap();
        check(&store, &keys(1, None), false, 0).await.unwrap();
        let refused = check(&store, &keys(2, None), false, 0).await;
        assert!(
            matches!(refused, Err(FingerprintError::Mismatch { .. })),
            "{refused:?}"
        );
        assert!(refused.unwrap_err().to_string().contains("--secret-file"));
        // A rotation: new secret with the old as previous; old replicas still start.
        check(&store, &keys(2, Some(1)), false, 0).await.unwrap();
        check(&store, &keys(1, None), false, 0).await.unwrap();
        check(&store, &keys(2, None), false, 0).await.unwrap();
        // The rotation is over: the old secret is refused.
        assert!(check(&store, &keys(1, None), false, 0).await.is_err());
        // --new-secret replaces it on purpose.
        check(&store, &keys(3, None), true, 0).await.unwrap();
        assert!(check(&store, &keys(2, None), false, 0).await.is_err());
    }
}
