//! Each tenant's keys for signing minted access tokens: ES256 (P-256) key pairs by default,
//! RS256 (RSA 2048) where the tenant asks for it, kept in the store so that replicas on one
//! database sign and verify with the same keys; the private half sealed under the server
//! secret (`crypto::sealing`), the public half published as the tenant's JWKS.
//!
//! A rotation adds a key that is published at once but signs only from `sign_from`, a
//! propagation delay later, so that resource servers caching the JWKS learn it first; the key
//! it replaces gets a `publish_until`, after every token it may sign has expired, and is
//! dropped from the set after that. A key whose private half no longer opens (the server
//! secret was replaced without the previous one), or of another algorithm than the tenant's,
//! stays published for the tokens it signed while a new one signs at once.
//!
//! Keys are made with ring (P-256) and the `rsa` crate (RSA key generation only); every
//! signature is made by jsonwebtoken over ring, whose RSA signing is constant-time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::token_mode::{MAX_TOKEN_LIFETIME, TokenSigningAlg};
use crate::crypto::{Sealer, ServerKeys};
use crate::domain::TenantId;
use crate::store::{Namespace, Record, Records, StoreError, Versioned};

/// How long a replica uses the key set it read before reading it again. A rotation's
/// propagation delay should be longer, or a replica signs with the old key a little longer.
const CACHE_LIFETIME: Duration = Duration::from_secs(30);
/// How long resource servers may cache `GET /{tenant}/jwks` (its `max-age`).
pub const JWKS_MAX_AGE: u64 = 300;
/// How long after a key is published a server that caches the JWKS may still not know it: a
/// rotation's propagation delay should be at least this.
pub const JWKS_CACHED_UP_TO: u64 = JWKS_MAX_AGE + CACHE_LIFETIME.as_secs();
/// A token naming a key this replica does not know makes it read the set again, at most this
/// often (forged key ids must not turn into a read per request).
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(2);
const SET_ID: &str = "signing";
const RSA_BITS: usize = 2048;

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
    pub(crate) alg: TokenSigningAlg,
    #[serde(flatten)]
    pub(crate) public: PublicKey,
    /// The private key (P-256: PKCS#8; RSA: PKCS#1), sealed under the server secret and the
    /// kid.
    sealed_private: String,
    pub(crate) created_at: u64,
    /// Signs from this time on (until a later key does).
    pub(crate) sign_from: u64,
    /// Published until this time, set when a later key was added; then dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) publish_until: Option<u64>,
}

/// The public half, as its JWK members (RFC 7518 §6.2.1, §6.3.1), base64url.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub(crate) enum PublicKey {
    #[serde(rename = "EC")]
    P256 { x: String, y: String },
    #[serde(rename = "RSA")]
    Rsa { n: String, e: String },
}

impl PublicKey {
    /// RFC 7638 §3: SHA-256 over the required members in lexicographic order, base64url.
    fn thumbprint(&self) -> String {
        let canonical = match self {
            Self::P256 { x, y } => format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
            Self::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    fn decoding(&self) -> Option<DecodingKey> {
        match self {
            Self::P256 { x, y } => DecodingKey::from_ec_components(x, y).ok(),
            Self::Rsa { n, e } => DecodingKey::from_rsa_components(n, e).ok(),
        }
    }
}

impl StoredKey {
    fn public_jwk(&self) -> Value {
        let mut jwk = match &self.public {
            PublicKey::P256 { x, y } => json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            PublicKey::Rsa { n, e } => json!({"kty": "RSA", "n": n, "e": e}),
        };
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg.as_str());
        jwk["use"] = json!("sig");
        jwk
    }

    fn is_published(&self, now: u64) -> bool {
        self.publish_until.is_none_or(|t| now < t)
    }

    fn encoding(&self, private: &[u8]) -> EncodingKey {
        match self.public {
            PublicKey::P256 { .. } => EncodingKey::from_ec_der(private),
            PublicKey::Rsa { .. } => EncodingKey::from_rsa_der(private),
        }
    }
}

/// The key a token is signed with now.
pub(crate) struct ActiveKey {
    pub(crate) kid: String,
    pub(crate) alg: Algorithm,
    pub(crate) encoding: EncodingKey,
    /// Tokens it signs must expire by then (the key leaves the JWKS).
    pub(crate) publish_until: Option<u64>,
}

/// A published key that verifies tokens, and the one algorithm it verifies.
pub(crate) struct VerifyingKey {
    pub(crate) alg: Algorithm,
    pub(crate) decoding: DecodingKey,
}

/// What a rotation did.
#[derive(Clone, Debug, Serialize)]
pub struct Rotation {
    pub kid: String,
    pub alg: TokenSigningAlg,
    pub sign_from: u64,
    /// The keys it replaces and when they leave the JWKS.
    pub retiring: Vec<(String, u64)>,
    /// The keys it removed from the JWKS at once (a rotation that drops the old keys, or keys
    /// that had not started signing).
    pub dropped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not generate a signing key: {0}")]
    Generate(String),
}

/// A stored key ready to use.
struct LoadedKey {
    alg: TokenSigningAlg,
    decoding: DecodingKey,
    /// `None` when its private half did not open.
    encoding: Option<EncodingKey>,
}

/// A key set as read, with its keys ready to use.
struct LoadedSet {
    read_at: Instant,
    stored: Option<Versioned<KeySet>>,
    keys: HashMap<String, LoadedKey>,
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

    /// The key to sign with now, of algorithm `alg`; made here if the tenant has none that
    /// can sign (its first key, or after a change of algorithm or server secret).
    pub(crate) async fn active(
        &self,
        tenant: &TenantId,
        alg: TokenSigningAlg,
        now: u64,
    ) -> Result<ActiveKey, KeyError> {
        for _ in 0..4 {
            let set = self.loaded(tenant, Freshness::Cached).await?;
            if let Some(key) = active_key(&set, alg, now) {
                return Ok(key);
            }
            self.add_key(tenant, now, AddKey::SignNow { alg }).await?;
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
    ) -> Result<Option<VerifyingKey>, KeyError> {
        let mut set = self.loaded(tenant, Freshness::Cached).await?;
        if !set.keys.contains_key(kid) && set.read_at.elapsed() >= UNKNOWN_KID_RELOAD {
            set = self.loaded(tenant, Freshness::Reread).await?;
        }
        let published = published(&set, now).any(|k| k.kid == kid);
        Ok(set
            .keys
            .get(kid)
            .filter(|_| published)
            .map(|k| VerifyingKey {
                alg: k.alg.jwt(),
                decoding: k.decoding.clone(),
            }))
    }

    /// The tenant's JWKS (RFC 7517 §5): every published key.
    pub(crate) async fn jwks(&self, tenant: &TenantId, now: u64) -> Result<Value, KeyError> {
        let set = self.loaded(tenant, Freshness::Cached).await?;
        let keys: Vec<Value> = published(&set, now).map(StoredKey::public_jwk).collect();
        Ok(json!({ "keys": keys }))
    }

    /// The tenant's keys as stored (for the admin API), their private halves left sealed: the
    /// offline admin commands hold no server secret that could open them.
    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<StoredKey>, KeyError> {
        // The set never expires, so the time given for expiry checks does not matter.
        let stored = self.records.get::<KeySet>(tenant, SET_ID, 0).await?;
        Ok(stored.map(|s| s.value.keys).unwrap_or_default())
    }

    /// Adds a key of `alg` that signs from `now + propagation`; the keys signing until then
    /// leave the JWKS `longest_lifetime` after that, or at once with `drop_old` (a key that
    /// may have leaked: the tokens it signed stop verifying).
    pub async fn rotate(
        &self,
        tenant: &TenantId,
        alg: TokenSigningAlg,
        now: u64,
        propagation: u64,
        longest_lifetime: u64,
        drop_old: bool,
    ) -> Result<Rotation, KeyError> {
        self.add_key(
            tenant,
            now,
            AddKey::Rotate {
                alg,
                propagation,
                longest_lifetime,
                drop_old,
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
        let alg = how.alg();
        // Made once, when first needed (RSA key generation takes a while, off the runtime), and
        // kept across the retries of a lost compare-and-swap.
        let mut generated: Option<Generated> = None;
        loop {
            let set = self.loaded(tenant, Freshness::Reread).await?;
            // Another server may have added the key this one was about to add.
            if matches!(how, AddKey::SignNow { .. })
                && let Some(key) = active_key(&set, alg, now)
            {
                return Ok(Rotation {
                    kid: key.kid,
                    alg,
                    sign_from: now,
                    retiring: Vec::new(),
                    dropped: Vec::new(),
                });
            }
            let mut keys: Vec<StoredKey> = set
                .stored
                .as_ref()
                .map(|s| s.value.keys.clone())
                .unwrap_or_default();
            keys.retain(|k| k.is_published(now));
            // Nothing published yet: no resource server can have cached a key set, so the first
            // key (a rotation's too) signs at once.
            let sign_from = match how {
                AddKey::Rotate { propagation, .. } if !keys.is_empty() => {
                    now.saturating_add(propagation)
                }
                _ => now,
            };
            if generated.is_none() {
                generated = Some(generate_private(alg).await?);
            }
            let Some(pair) = generated.as_ref() else {
                continue;
            };
            let new_key = self.stored_key(tenant, pair, alg, now, sign_from);
            let (retiring, dropped) = how.retire(&set, &mut keys, now, sign_from);
            let rotation = Rotation {
                kid: new_key.kid.clone(),
                alg,
                sign_from,
                retiring,
                dropped,
            };
            keys.push(new_key);
            let written = self.write_set(tenant, &set, keys, now).await?;
            if written {
                self.forget(tenant);
                tracing::info!(target: "audit", event = "signing_key_added", tenant = %tenant, kid = %rotation.kid, alg = alg.as_str(), sign_from = rotation.sign_from);
                for kid in &rotation.dropped {
                    tracing::warn!(target: "audit", event = "signing_key_dropped", tenant = %tenant, kid = %kid, replaced_by = %rotation.kid);
                }
                return Ok(rotation);
            }
        }
    }

    /// Writes the tenant's key set over `set` as read; `false` if another server wrote it
    /// since.
    async fn write_set(
        &self,
        tenant: &TenantId,
        set: &LoadedSet,
        keys: Vec<StoredKey>,
        now: u64,
    ) -> Result<bool, KeyError> {
        Ok(match &set.stored {
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
        })
    }

    fn stored_key(
        &self,
        tenant: &TenantId,
        generated: &Generated,
        alg: TokenSigningAlg,
        now: u64,
        sign_from: u64,
    ) -> StoredKey {
        let kid = generated.public.thumbprint();
        StoredKey {
            sealed_private: self
                .sealer
                .seal_server_held(&seal_label(tenant, &kid), &generated.private),
            kid,
            alg,
            public: generated.public.clone(),
            created_at: now,
            sign_from,
            publish_until: None,
        }
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
            let Some(decoding) = k.public.decoding() else {
                tracing::error!(tenant = %tenant, kid = %k.kid, "a stored signing key's public half is not a valid key; it is left out of the JWKS");
                continue;
            };
            let encoding = match self
                .sealer
                .unseal_server_held(&seal_label(tenant, &k.kid), &k.sealed_private)
            {
                Ok(private) => Some(k.encoding(&private)),
                Err(_) => {
                    tracing::warn!(tenant = %tenant, kid = %k.kid, "a signing key's private half does not open with the server secret (was the secret replaced without keeping the previous one?); the key stays published for the tokens it signed, and a new key signs");
                    None
                }
            };
            keys.insert(
                k.kid.clone(),
                LoadedKey {
                    alg: k.alg,
                    decoding,
                    encoding,
                },
            );
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
    /// The tenant has no key of `alg` that can sign: one that signs at once.
    SignNow { alg: TokenSigningAlg },
    Rotate {
        alg: TokenSigningAlg,
        propagation: u64,
        longest_lifetime: u64,
        drop_old: bool,
    },
}

impl AddKey {
    fn alg(self) -> TokenSigningAlg {
        match self {
            Self::SignNow { alg } | Self::Rotate { alg, .. } => alg,
        }
    }

    /// Ends the published keys (`keys`, read as `set`) the new key replaces, which signs from
    /// `sign_from`: the keys given an end, with it, and the keys dropped at once.
    ///
    /// No key leaves the JWKS before its time, except by `drop_old` (an operator's "this key
    /// may have leaked"). A key that has not started signing signed nothing: a rotation's new
    /// key replaces it, so that a second rotation is never undone when the first one's key
    /// starts signing; it stays published until the moment it would have begun to sign, and
    /// never signs. A key made because none can sign now touches no other key: a rotated key
    /// waiting to sign stays as it was.
    fn retire(
        self,
        set: &LoadedSet,
        keys: &mut Vec<StoredKey>,
        now: u64,
        sign_from: u64,
    ) -> (Vec<(String, u64)>, Vec<String>) {
        let alg = self.alg();
        let mut dropped: Vec<String> = Vec::new();
        let mut retiring = Vec::new();
        if let Self::Rotate { drop_old, .. } = self {
            if drop_old {
                dropped.extend(keys.drain(..).map(|k| k.kid));
            } else {
                for k in keys.iter_mut().filter(|k| k.sign_from > now) {
                    k.publish_until = Some(k.sign_from);
                    retiring.push((k.kid.clone(), k.sign_from));
                }
            }
        }
        // The keys it replaces: on a rotation every key still without an end; when no key can
        // sign, those that cannot (their private half did not open, or they are of another
        // algorithm). They stay published until the tokens they signed have expired, and a
        // minute for clocks.
        let lifetime = match self {
            Self::Rotate {
                longest_lifetime, ..
            } => longest_lifetime,
            Self::SignNow { .. } => MAX_TOKEN_LIFETIME.as_secs(),
        };
        for k in keys.iter_mut().filter(|k| k.publish_until.is_none()) {
            let can_sign = set
                .keys
                .get(&k.kid)
                .is_some_and(|l| l.encoding.is_some() && l.alg == alg);
            if matches!(self, Self::SignNow { .. }) && can_sign {
                continue;
            }
            let until = sign_from.saturating_add(lifetime).saturating_add(60);
            k.publish_until = Some(until);
            retiring.push((k.kid.clone(), until));
        }
        (retiring, dropped)
    }
}

/// A new key pair: the private half as jsonwebtoken reads it, the public half as a JWK.
struct Generated {
    private: Vec<u8>,
    public: PublicKey,
}

async fn generate_private(alg: TokenSigningAlg) -> Result<Generated, KeyError> {
    match alg {
        TokenSigningAlg::ES256 => generate_p256(),
        TokenSigningAlg::RS256 => tokio::task::spawn_blocking(generate_rsa)
            .await
            .map_err(|e| KeyError::Generate(e.to_string()))?,
    }
}

fn generate_p256() -> Result<Generated, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    // An uncompressed point: 0x04, then x and y of 32 bytes each (SEC 1 §2.3.3).
    let point = pair.public_key().as_ref();
    Ok(Generated {
        private: pkcs8.as_ref().to_vec(),
        public: PublicKey::P256 {
            x: URL_SAFE_NO_PAD.encode(&point[1..33]),
            y: URL_SAFE_NO_PAD.encode(&point[33..65]),
        },
    })
}

fn generate_rsa() -> Result<Generated, KeyError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    Ok(Generated {
        private: der.as_bytes().to_vec(),
        public: PublicKey::Rsa {
            n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        },
    })
}

fn published(set: &LoadedSet, now: u64) -> impl Iterator<Item = &StoredKey> {
    set.stored
        .iter()
        .flat_map(|s| &s.value.keys)
        .filter(move |k| k.is_published(now))
}

/// The published key of `alg` with the latest `sign_from` not after `now` whose private half
/// opened, and which stays published long enough to sign a useful token.
fn active_key(set: &LoadedSet, alg: TokenSigningAlg, now: u64) -> Option<ActiveKey> {
    published(set, now)
        .filter(|k| k.sign_from <= now && k.alg == alg)
        .filter(|k| k.publish_until.is_none_or(|u| u > now + 2 * 60))
        .filter_map(|k| Some((k, set.keys.get(&k.kid)?.encoding.clone()?)))
        .max_by_key(|(k, _)| k.sign_from)
        .map(|(k, encoding)| ActiveKey {
            kid: k.kid.clone(),
            alg: alg.jwt(),
            encoding,
            publish_until: k.publish_until,
        })
}

fn seal_label(tenant: &TenantId, kid: &str) -> String {
    format!("signing key {tenant} {kid}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    const ES: TokenSigningAlg = TokenSigningAlg::ES256;
    const RS: TokenSigningAlg = TokenSigningAlg::RS256;

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
        let a = k.active(&t, ES, 1000).await.unwrap();
        let b = k.active(&t, ES, 1001).await.unwrap();
        assert_eq!(a.kid, b.kid);
        let jwks = k.jwks(&t, 1001).await.unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        assert_eq!(jwks["keys"][0]["kid"], a.kid);
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
        assert_eq!(jwks["keys"][0]["alg"], "ES256");
    }

    #[tokio::test]
    async fn a_rotation_publishes_first_signs_later_and_retires_the_old_key() {
        let (k, t, _dir) = keys().await;
        let old = k.active(&t, ES, 1000).await.unwrap().kid;
        let r = k.rotate(&t, ES, 1000, 600, 300, false).await.unwrap();
        assert_eq!(r.retiring, vec![(old.clone(), 1000 + 600 + 300 + 60)]);
        assert_eq!(
            k.jwks(&t, 1000).await.unwrap()["keys"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(k.active(&t, ES, 1599).await.unwrap().kid, old);
        assert_eq!(k.active(&t, ES, 1600).await.unwrap().kid, r.kid);
        assert!(k.verifying(&t, &old, 1959).await.unwrap().is_some());
        assert!(k.verifying(&t, &old, 1960).await.unwrap().is_none());
        let after = k.jwks(&t, 1960).await.unwrap();
        assert_eq!(after["keys"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_second_rotation_replaces_a_key_that_has_not_signed_and_drop_old_empties_the_set() {
        let (k, t, _dir) = keys().await;
        let first = k.active(&t, ES, 1000).await.unwrap().kid;
        let pending = k.rotate(&t, ES, 1000, 300, 600, false).await.unwrap();
        let second = k.rotate(&t, ES, 1010, 0, 600, false).await.unwrap();
        assert!(
            second.dropped.is_empty(),
            "no key leaves the JWKS before its time"
        );
        assert!(second.retiring.contains(&(pending.kid.clone(), 1300)));
        let jwks = k.jwks(&t, 1010).await.unwrap();
        assert!(
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|j| j["kid"] == pending.kid),
            "still published"
        );
        assert_eq!(
            k.active(&t, ES, 1400).await.unwrap().kid,
            second.kid,
            "the pending key never signs"
        );
        let third = k.rotate(&t, ES, 1500, 0, 600, true).await.unwrap();
        assert!(third.dropped.contains(&first) && third.dropped.contains(&second.kid));
        let jwks = k.jwks(&t, 1500).await.unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        assert_eq!(jwks["keys"][0]["kid"], third.kid);
    }

    /// Regression (issue 22, item 11): a rotation on a tenant with no key yet made a key that
    /// signed only later, and the first JWKS fetch then made another and dropped the rotated
    /// one, unaudited.
    #[tokio::test]
    async fn a_first_rotation_signs_at_once_and_no_later_key_drops_it() {
        let (k, t, _dir) = keys().await;
        let r = k.rotate(&t, ES, 1000, 3600, 300, false).await.unwrap();
        assert_eq!(r.sign_from, 1000, "nothing was published: it signs at once");
        assert!(r.dropped.is_empty() && r.retiring.is_empty());
        let jwks = k.jwks(&t, 1001).await.unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        assert_eq!(jwks["keys"][0]["kid"], r.kid);
        assert_eq!(k.active(&t, ES, 1001).await.unwrap().kid, r.kid);
        assert_eq!(k.list(&t).await.unwrap().len(), 1, "one key set, one key");
    }

    /// A key made because none could sign (the algorithm changed) keeps a rotated key that
    /// waits to sign.
    #[tokio::test]
    async fn a_key_made_to_sign_now_keeps_the_key_waiting_to_sign() {
        let (k, t, _dir) = keys().await;
        let first = k.active(&t, ES, 1000).await.unwrap().kid;
        let pending = k.rotate(&t, ES, 1000, 600, 300, false).await.unwrap();
        assert_eq!(pending.sign_from, 1600);
        let rs = k.active(&t, RS, 1100).await.unwrap();
        let kids: Vec<String> = k
            .list(&t)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect();
        assert!(kids.contains(&pending.kid), "{kids:?}");
        assert!(kids.contains(&first) && kids.contains(&rs.kid), "{kids:?}");
    }

    #[tokio::test]
    async fn a_key_whose_secret_is_gone_stays_published_and_another_signs() {
        let (store, _dir) = store().await;
        let t = TenantId::parse("t").unwrap();
        let before = SigningKeys::new(
            Records::new(store.clone()),
            &ServerKeys::from_bytes([3; 32], None),
        );
        let old = before.active(&t, ES, 1000).await.unwrap().kid;
        let after = SigningKeys::new(Records::new(store), &ServerKeys::from_bytes([4; 32], None));
        let new = after.active(&t, ES, 1001).await.unwrap().kid;
        assert_ne!(old, new);
        assert!(after.verifying(&t, &old, 1001).await.unwrap().is_some());
        let listed = after.list(&t).await.unwrap();
        assert!(
            listed[0].publish_until.is_some(),
            "the unreadable key retires"
        );
    }

    #[tokio::test]
    async fn rs256_keys_sign_and_a_change_of_algorithm_retires_the_old_key() {
        let (k, t, _dir) = keys().await;
        let ec = k.active(&t, ES, 1000).await.unwrap();
        let rs = k.active(&t, TokenSigningAlg::RS256, 1001).await.unwrap();
        assert_eq!(rs.alg, Algorithm::RS256);
        assert_ne!(rs.kid, ec.kid);
        let jwks = k.jwks(&t, 1001).await.unwrap();
        let rsa = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["kid"] == rs.kid.as_str())
            .unwrap();
        assert_eq!(
            (rsa["kty"].as_str(), rsa["alg"].as_str()),
            (Some("RSA"), Some("RS256"))
        );
        assert_eq!(rsa["e"], "AQAB");
        let listed = k.list(&t).await.unwrap();
        let old = listed.iter().find(|s| s.kid == ec.kid).unwrap();
        assert!(old.publish_until.is_some(), "the ES256 key retires");
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::RS256),
            &json!({"sub": "x"}),
            &rs.encoding,
        )
        .unwrap();
        let v = k.verifying(&t, &rs.kid, 1001).await.unwrap().unwrap();
        let mut validation = jsonwebtoken::Validation::new(v.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<Value>(&token, &v.decoding, &validation).unwrap();
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638 §3.1's example key and thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let t = PublicKey::Rsa {
            n: n.into(),
            e: "AQAB".into(),
        }
        .thumbprint();
        assert_eq!(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
