//! Each tenant's keys for signing minted access tokens: ES256 (P-256) key pairs kept in the
//! store, so that replicas on one database sign and verify with the same keys; the private
//! half sealed under the server secret (`crypto::sealing`), the public half published as the
//! tenant's JWKS.
//!
//! A rotation adds a key that is published at once but signs only from `sign_from`, a
//! propagation delay later, so that resource servers caching the JWKS learn it first; the key
//! it replaces gets a `publish_until`, after every token it may sign has expired, and is
//! dropped from the set after that. A key whose private half no longer opens (the server
//! secret was replaced without the previous one) stays published and a new one signs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::config::token_mode::MAX_TOKEN_LIFETIME;
use crate::crypto::{Sealer, ServerKeys};
use crate::domain::TenantId;
use crate::store::{Namespace, Record, Records, StoreError, Versioned};

/// How long a replica uses the key set it read before reading it again. A rotation's
/// propagation delay should be longer, or a replica signs with the old key a little longer.
const CACHE_LIFETIME: Duration = Duration::from_secs(30);
/// A token naming a key this replica does not know makes it read the set again, at most this
/// often (forged key ids must not turn into a read per request).
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(2);
const SET_ID: &str = "signing";

/// The stored key set of one tenant.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeySet {
    pub(crate) keys: Vec<StoredKey>,
}

impl Record for KeySet {
    const NAMESPACE: Namespace = Namespace::Keys;
    const SCHEMA: u16 = 1;
    type Id = str;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredKey {
    /// The RFC 7638 thumbprint of the public key.
    pub(crate) kid: String,
    pub(crate) alg: String,
    /// The public key's coordinates, base64url (RFC 7518 §6.2.1).
    pub(crate) x: String,
    pub(crate) y: String,
    /// The PKCS#8 private key, sealed under the server secret and the kid.
    sealed_private: String,
    pub(crate) created_at: u64,
    /// Signs from this time on (until a later key does).
    pub(crate) sign_from: u64,
    /// Published until this time, set when a later key was added; then dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) publish_until: Option<u64>,
}

impl StoredKey {
    fn public_jwk(&self) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y, "kid": self.kid,
               "alg": self.alg, "use": "sig"})
    }

    fn is_published(&self, now: u64) -> bool {
        self.publish_until.is_none_or(|t| now < t)
    }
}

/// The key a token is signed with now.
pub(crate) struct ActiveKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    /// Tokens it signs must expire by then (the key leaves the JWKS).
    pub(crate) publish_until: Option<u64>,
}

/// What a rotation did.
#[derive(Clone, Debug, Serialize)]
pub struct Rotation {
    pub kid: String,
    pub sign_from: u64,
    /// The keys it replaces and when they leave the JWKS.
    pub retiring: Vec<(String, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not generate a signing key: {0}")]
    Generate(String),
}

/// A key set as read, with its keys ready to use.
struct LoadedSet {
    read_at: Instant,
    stored: Option<Versioned<KeySet>>,
    /// By kid: the verifying key, and the signing key if its private half opened.
    keys: HashMap<String, (DecodingKey, Option<EncodingKey>)>,
}

/// The signing keys of every tenant, read through a short cache.
pub struct SigningKeys {
    records: Records,
    sealer: Sealer,
    cache: Mutex<HashMap<TenantId, Arc<LoadedSet>>>,
}

impl SigningKeys {
    pub(crate) fn new(records: Records, keys: &ServerKeys) -> Self {
        Self {
            records,
            sealer: Sealer::new(keys),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The key to sign with now; the tenant's first key is made here if it has none that can
    /// sign.
    pub(crate) async fn active(&self, tenant: &TenantId, now: u64) -> Result<ActiveKey, KeyError> {
        for _ in 0..4 {
            let set = self.loaded(tenant, Freshness::Cached).await?;
            if let Some(key) = active_key(&set, now) {
                return Ok(key);
            }
            self.add_key(tenant, now, AddKey::SignNow).await?;
        }
        Err(KeyError::Store(StoreError::Backend(
            "the signing key set kept changing under this server".into(),
        )))
    }

    /// The verifying key named `kid`, if the tenant publishes it.
    pub(crate) async fn verifying(
        &self,
        tenant: &TenantId,
        kid: &str,
        now: u64,
    ) -> Result<Option<DecodingKey>, KeyError> {
        let mut set = self.loaded(tenant, Freshness::Cached).await?;
        if !set.keys.contains_key(kid) && set.read_at.elapsed() >= UNKNOWN_KID_RELOAD {
            set = self.loaded(tenant, Freshness::Reread).await?;
        }
        let published = published(&set, now).any(|k| k.kid == kid);
        Ok(set
            .keys
            .get(kid)
            .filter(|_| published)
            .map(|(d, _)| d.clone()))
    }

    /// The tenant's JWKS (RFC 7517 §5): every published key.
    pub(crate) async fn jwks(&self, tenant: &TenantId, now: u64) -> Result<Value, KeyError> {
        let set = self.loaded(tenant, Freshness::Cached).await?;
        let keys: Vec<Value> = published(&set, now).map(StoredKey::public_jwk).collect();
        Ok(json!({ "keys": keys }))
    }

    /// The tenant's keys as stored (for the admin API).
    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<StoredKey>, KeyError> {
        let set = self.loaded(tenant, Freshness::Reread).await?;
        Ok(set
            .stored
            .as_ref()
            .map(|s| s.value.keys.clone())
            .unwrap_or_default())
    }

    /// Adds a key that signs from `now + propagation`; the keys signing until then leave the
    /// JWKS `longest_lifetime` after that.
    pub async fn rotate(
        &self,
        tenant: &TenantId,
        now: u64,
        propagation: u64,
        longest_lifetime: u64,
    ) -> Result<Rotation, KeyError> {
        self.add_key(
            tenant,
            now,
            AddKey::Rotate {
                propagation,
                longest_lifetime,
            },
        )
        .await
    }

    async fn add_key(
        &self,
        tenant: &TenantId,
        now: u64,
        how: AddKey,
    ) -> Result<Rotation, KeyError> {
        loop {
            let set = self.loaded(tenant, Freshness::Reread).await?;
            // Another server may have added the key this one was about to add.
            if matches!(how, AddKey::SignNow) && active_key(&set, now).is_some() {
                return Ok(Rotation {
                    kid: String::new(),
                    sign_from: now,
                    retiring: Vec::new(),
                });
            }
            let sign_from = match how {
                AddKey::SignNow => now,
                AddKey::Rotate { propagation, .. } => now.saturating_add(propagation),
            };
            let new_key = self.generate(tenant, now, sign_from)?;
            let mut keys: Vec<StoredKey> = set
                .stored
                .as_ref()
                .map(|s| s.value.keys.clone())
                .unwrap_or_default();
            keys.retain(|k| k.is_published(now));
            // The keys it replaces: every key still without an end, or (when no key can sign)
            // those whose private half did not open. They stay published until the tokens
            // they signed have expired, and a minute for clocks.
            let (retire, lifetime) = match how {
                AddKey::Rotate {
                    longest_lifetime, ..
                } => (None, longest_lifetime),
                AddKey::SignNow => (Some(&set), MAX_TOKEN_LIFETIME.as_secs()),
            };
            let mut retiring = Vec::new();
            for k in keys.iter_mut().filter(|k| k.publish_until.is_none()) {
                if retire.is_some_and(|set| set.keys.get(&k.kid).is_some_and(|(_, e)| e.is_some()))
                {
                    continue;
                }
                let until = sign_from.saturating_add(lifetime).saturating_add(60);
                k.publish_until = Some(until);
                retiring.push((k.kid.clone(), until));
            }
            let rotation = Rotation {
                kid: new_key.kid.clone(),
                sign_from,
                retiring,
            };
            keys.push(new_key);
            let written = match &set.stored {
                None => {
                    self.records
                        .insert_new(tenant, SET_ID, &KeySet { keys }, None, now)
                        .await?
                }
                Some(current) => {
                    self.records
                        .update(tenant, SET_ID, current.revision, &KeySet { keys }, None)
                        .await?
                }
            };
            if written {
                self.forget(tenant);
                tracing::info!(target: "audit", event = "signing_key_added", tenant = %tenant, kid = %rotation.kid, sign_from = rotation.sign_from);
                return Ok(rotation);
            }
        }
    }

    fn generate(&self, tenant: &TenantId, now: u64, sign_from: u64) -> Result<StoredKey, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        // An uncompressed point: 0x04, then x and y of 32 bytes each (SEC 1 §2.3.3).
        let point = pair.public_key().as_ref();
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65]),
        );
        let kid = thumbprint(&x, &y);
        Ok(StoredKey {
            sealed_private: self
                .sealer
                .seal_server_held(&seal_label(tenant, &kid), pkcs8.as_ref()),
            kid,
            alg: "ES256".into(),
            x,
            y,
            created_at: now,
            sign_from,
            publish_until: None,
        })
    }

    fn forget(&self, tenant: &TenantId) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }

    async fn loaded(
        &self,
        tenant: &TenantId,
        freshness: Freshness,
    ) -> Result<Arc<LoadedSet>, KeyError> {
        if freshness == Freshness::Cached {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(set) = cache.get(tenant)
                && set.read_at.elapsed() < CACHE_LIFETIME
            {
                return Ok(set.clone());
            }
        }
        // The set never expires, so the time given for expiry checks does not matter.
        let stored = self.records.get::<KeySet>(tenant, SET_ID, 0).await?;
        let mut keys = HashMap::new();
        for k in stored.iter().flat_map(|s| &s.value.keys) {
            let Ok(decoding) = DecodingKey::from_ec_components(&k.x, &k.y) else {
                tracing::error!(tenant = %tenant, kid = %k.kid, "a stored signing key's public half is not a P-256 point; it is left out of the JWKS");
                continue;
            };
            let encoding = match self
                .sealer
                .unseal_server_held(&seal_label(tenant, &k.kid), &k.sealed_private)
            {
                Ok(pkcs8) => Some(EncodingKey::from_ec_der(&pkcs8)),
                Err(_) => {
                    tracing::warn!(tenant = %tenant, kid = %k.kid, "a signing key's private half does not open with the server secret (was the secret replaced without keeping the previous one?); the key stays published for the tokens it signed, and a new key signs");
                    None
                }
            };
            keys.insert(k.kid.clone(), (decoding, encoding));
        }
        let set = Arc::new(LoadedSet {
            read_at: Instant::now(),
            stored,
            keys,
        });
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.clone(), set.clone());
        Ok(set)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Freshness {
    Cached,
    Reread,
}

#[derive(Clone, Copy)]
enum AddKey {
    /// The tenant has no key that can sign: one that signs at once.
    SignNow,
    Rotate {
        propagation: u64,
        longest_lifetime: u64,
    },
}

fn published(set: &LoadedSet, now: u64) -> impl Iterator<Item = &StoredKey> {
    set.stored
        .iter()
        .flat_map(|s| &s.value.keys)
        .filter(move |k| k.is_published(now))
}

/// The published key with the latest `sign_from` not after `now` whose private half opened.
fn active_key(set: &LoadedSet, now: u64) -> Option<ActiveKey> {
    published(set, now)
        .filter(|k| k.sign_from <= now)
        .filter_map(|k| Some((k, set.keys.get(&k.kid)?.1.clone()?)))
        .max_by_key(|(k, _)| k.sign_from)
        .map(|(k, encoding)| ActiveKey {
            kid: k.kid.clone(),
            encoding,
            publish_until: k.publish_until,
        })
}

fn seal_label(tenant: &TenantId, kid: &str) -> String {
    format!("signing key {tenant} {kid}")
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, base64url.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    async fn store() -> (Arc<SledStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (Arc::new(SledStore::open(dir.path()).await.unwrap()), dir)
    }

    async fn keys() -> (SigningKeys, TenantId, tempfile::TempDir) {
        let (store, dir) = store().await;
        let server = ServerKeys::from_bytes([3; 32], None);
        (
            SigningKeys::new(Records::new(store), &server),
            TenantId::parse("t").unwrap(),
            dir,
        )
    }

    #[tokio::test]
    async fn the_first_key_is_made_on_demand_and_shared() {
        let (k, t, _dir) = keys().await;
        let a = k.active(&t, 1000).await.unwrap();
        let b = k.active(&t, 1001).await.unwrap();
        assert_eq!(a.kid, b.kid);
        let jwks = k.jwks(&t, 1001).await.unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        assert_eq!(jwks["keys"][0]["kid"], a.kid);
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
    }

    #[tokio::test]
    async fn a_rotation_publishes_first_signs_later_and_retires_the_old_key() {
        let (k, t, _dir) = keys().await;
        let old = k.active(&t, 1000).await.unwrap().kid;
        let r = k.rotate(&t, 1000, 600, 300).await.unwrap();
        assert_eq!(r.retiring, vec![(old.clone(), 1000 + 600 + 300 + 60)]);
        assert_eq!(
            k.jwks(&t, 1000).await.unwrap()["keys"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(k.active(&t, 1599).await.unwrap().kid, old);
        assert_eq!(k.active(&t, 1600).await.unwrap().kid, r.kid);
        assert!(k.verifying(&t, &old, 1959).await.unwrap().is_some());
        assert!(k.verifying(&t, &old, 1960).await.unwrap().is_none());
        let after = k.jwks(&t, 1960).await.unwrap();
        assert_eq!(after["keys"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_key_whose_secret_is_gone_stays_published_and_another_signs() {
        let (store, _dir) = store().await;
        let t = TenantId::parse("t").unwrap();
        let before = SigningKeys::new(
            Records::new(store.clone()),
            &ServerKeys::from_bytes([3; 32], None),
        );
        let old = before.active(&t, 1000).await.unwrap().kid;
        let after = SigningKeys::new(Records::new(store), &ServerKeys::from_bytes([4; 32], None));
        let new = after.active(&t, 1001).await.unwrap().kid;
        assert_ne!(old, new);
        assert!(after.verifying(&t, &old, 1001).await.unwrap().is_some());
    }

    #[test]
    fn the_thumbprint_follows_rfc_7638() {
        // RFC 7638 has no EC example; this pins the canonical form's order and quoting.
        let t = thumbprint("AAAA", "BBBB");
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(
            br#"{"crv":"P-256","kty":"EC","x":"AAAA","y":"BBBB"}"#,
        ));
        assert_eq!(t, expected);
    }
}
