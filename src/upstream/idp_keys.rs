//! The keys each tenant's IdP signs its access tokens with, kept for passthrough gateway
//! resources (`access_token.rs`): no fetch on the hot path but the first. A set is kept for
//! `KEEP_FOR` and fetched again sooner when a token names a key it lacks (the IdP rotated),
//! at most once per `REFETCH_AFTER` per tenant, so that tokens with made-up key ids cannot
//! turn every call into a fetch. A failed fetch keeps the set already held for up to
//! `STALE_AT_MOST` (an IdP out of reach does not stop the gateway, but a key the IdP withdrew
//! is not trusted for ever), and is not tried again for `REFETCH_AFTER`. Each tenant's fetches
//! wait only for that tenant's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

use super::tokens::UpstreamClient;
use crate::config::Tenant;
use crate::domain::TenantId;

/// How long a key set is used before it is fetched again.
const KEEP_FOR: Duration = Duration::from_secs(3600);
/// The least time between two fetches of one tenant's keys.
const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// How long a set is still used after it should have been fetched again and could not be.
const STALE_AT_MOST: Duration = Duration::from_secs(24 * 3600);

struct Kept {
    uri: String,
    keys: Option<Arc<JwkSet>>,
    tried_at: Instant,
    fetched_at: Instant,
    error: Option<String>,
}

#[derive(Default)]
pub(crate) struct IdpKeys {
    kept: Mutex<HashMap<TenantId, Kept>>,
    /// One fetch at a time per tenant: calls that find the same set missing wait for it.
    fetching: Mutex<HashMap<TenantId, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

/// What `kept` says of a lookup.
enum Lookup {
    Use(Arc<JwkSet>),
    Fail(String),
    Fetch,
}

impl IdpKeys {
    /// `tenant`'s IdP keys at `jwks_uri`, such that one has `kid` when the IdP still has it.
    pub(crate) async fn keys(
        &self,
        client: &UpstreamClient,
        tenant: &Tenant,
        jwks_uri: &str,
        kid: Option<&str>,
    ) -> Result<Arc<JwkSet>, String> {
        if let Lookup::Use(keys) = self.lookup(&tenant.id, jwks_uri, kid) {
            return Ok(keys);
        }
        let gate = {
            let mut gates = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
            gates.entry(tenant.id.clone()).or_default().clone()
        };
        let _one = gate.lock().await;
        match self.lookup(&tenant.id, jwks_uri, kid) {
            Lookup::Use(keys) => return Ok(keys),
            Lookup::Fail(why) => return Err(why),
            Lookup::Fetch => {}
        }
        let fetched = client.key_set(tenant, jwks_uri).await;
        let now = Instant::now();
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let entry = kept.entry(tenant.id.clone()).or_insert_with(|| Kept {
            uri: jwks_uri.to_owned(),
            keys: None,
            tried_at: now,
            fetched_at: now,
            error: None,
        });
        if entry.uri != jwks_uri {
            entry.uri = jwks_uri.to_owned();
            entry.keys = None;
        }
        entry.tried_at = now;
        match fetched {
            Ok(set) => {
                tracing::info!(tenant = %tenant.id, jwks_uri, keys = set.keys.len(), "the IdP's signing keys were fetched");
                let keys = Arc::new(set);
                entry.keys = Some(keys.clone());
                entry.fetched_at = now;
                entry.error = None;
                Ok(keys)
            }
            Err(why) => {
                tracing::warn!(tenant = %tenant.id, jwks_uri, error = %why, "the IdP's signing keys could not be fetched; passthrough gateway calls use the keys already held, or are refused until the keys can be read");
                entry.error = Some(why.clone());
                if entry.fetched_at.elapsed() >= KEEP_FOR + STALE_AT_MOST {
                    entry.keys = None;
                }
                entry.keys.clone().ok_or(why)
            }
        }
    }

    fn lookup(&self, tenant: &TenantId, jwks_uri: &str, kid: Option<&str>) -> Lookup {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let Some(k) = kept.get(tenant).filter(|k| k.uri == jwks_uri) else {
            return Lookup::Fetch;
        };
        let may_fetch = k.tried_at.elapsed() >= REFETCH_AFTER;
        match &k.keys {
            Some(keys) => {
                let has_kid = kid.is_none_or(|id| {
                    keys.keys
                        .iter()
                        .any(|key| key.common.key_id.as_deref() == Some(id))
                });
                let stale = k.fetched_at.elapsed() >= KEEP_FOR;
                let too_old = k.fetched_at.elapsed() >= KEEP_FOR + STALE_AT_MOST;
                if too_old && !may_fetch {
                    Lookup::Fail(
                        k.error
                            .clone()
                            .unwrap_or_else(|| "the IdP's keys are too old".into()),
                    )
                } else if (has_kid && !stale) || !may_fetch {
                    Lookup::Use(keys.clone())
                } else {
                    Lookup::Fetch
                }
            }
            None if may_fetch => Lookup::Fetch,
            None => Lookup::Fail(format!(
                "{} (tried again in a few seconds)",
                k.error
                    .as_deref()
                    .unwrap_or("the IdP's keys are not known yet")
            )),
        }
    }
}
