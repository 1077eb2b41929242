//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client whose
//! `client_id` is an https URL is described by the JSON document at that URL.
//!
//! `CimdResolver::resolve` = check the URL (§3) → tenant host policy → cache → fetch through
//! `SafeFetcher` (§6: no redirects, special-use addresses refused, size cap, timeout) →
//! validate (§4: `client_id` equals the URL, no shared secrets) → cache per Cache-Control within
//! bounds → map onto an app like a registered client. Concurrent resolutions of one URL share
//! one fetch; a refusal is remembered for a few seconds, never cached as a document; fetches in
//! flight are bounded per host and in total (`net/bounds.rs`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jsonwebtoken::jwk::JwkSet;

use moka::future::Cache;
use serde_json::Value;
use url::Url;

use super::client_metadata::{
    MAX_CLIENT_KEYS, MetadataOrigin, check_jwks, check_jwks_up_to, validate_client_metadata,
};
use super::context::{Caller, RequestCtx};
use super::error::{ErrorCode, OAuthError};
use super::mapping::{ClientFacts, choose_apps};
use crate::config::Tenant;
use crate::domain::{ClientId, ClientMetadata, ClientRecord, ClientSource};
use crate::net::{FetchError, FetchPolicy, SafeFetcher};
use tracing::Instrument;

/// Longest client_id URL accepted.
pub(crate) const MAX_CLIENT_ID_URL_LEN: usize = 2000;
/// Lifetime of a cached document when the server gives no max-age.
pub(crate) const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// Longest a document is cached, whatever the server says.
pub(crate) const MAX_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Most documents cached per tenant.
pub(crate) const CACHE_CAPACITY: u64 = 10_000;
/// The largest discovery document or key set of a trusted enterprise IdP: IdPs' discovery
/// documents list dozens of claims and scopes, and key sets carry certificate chains (`x5c`),
/// well over a client's 5 KiB.
const ISSUER_DOCUMENT_MAX_BYTES: usize = 64 * 1024;
/// The most keys in a trusted IdP's set (IdPs publish their next and previous keys too).
const ISSUER_MAX_KEYS: usize = 100;

/// Whose key set is fetched: a client's (held to a client's limits) or a trusted IdP's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeysOf {
    Client,
    Issuer,
}

/// Whether a `client_id` names a metadata document rather than a registered client.
pub(crate) fn is_document_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Why a document-based client could not be resolved; `Display` is for the client and the log.
#[derive(Debug, thiserror::Error)]
pub enum CimdError {
    #[error("this tenant does not accept client metadata documents")]
    Disabled,
    #[error("client_id '{0}' is not a valid client metadata document URL: {1}")]
    BadUrl(String, &'static str),
    #[error("client_id host '{0}' is not on this tenant's list of allowed hosts")]
    HostNotAllowed(String),
    #[error("the client metadata document at {0} could not be fetched: {1}")]
    Fetch(String, FetchError),
    #[error("the client metadata document at {0} is not a JSON object")]
    NotJsonObject(String),
    #[error(
        "the client metadata document at {url} says client_id '{found}', which is not its own URL"
    )]
    ClientIdMismatch { url: String, found: String },
    #[error("the client metadata document at {0} is invalid: {1}")]
    Invalid(String, String),
    #[error("the client's keys could not be read: {0}")]
    Keys(String),
    /// The requester's address has had its share of fetches this minute.
    #[error(
        "too many client metadata documents were fetched for this address in the last minute; try again in a minute"
    )]
    RateLimited,
    /// A refusal remembered from a fetch a few seconds ago: not fetched again yet.
    #[error("{0} (remembered from a fetch moments ago; not fetched again for a few seconds)")]
    Remembered(String),
}

impl CimdError {
    pub fn to_oauth(&self) -> OAuthError {
        match self {
            Self::Fetch(_, e) if e.is_busy() => {
                OAuthError::new(ErrorCode::TemporarilyUnavailable, self.to_string())
            }
            Self::RateLimited => {
                OAuthError::new(ErrorCode::TemporarilyUnavailable, self.to_string())
            }
            _ => OAuthError::new(ErrorCode::InvalidClient, self.to_string()),
        }
    }
}

/// How long a document that could not be fetched or was refused is not fetched again.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(5);

/// One fetch of a URL under way: resolutions that arrive meanwhile wait on the lock and take
/// the outcome it leaves (a refusal as its message). Dropped when nobody waits, so a later
/// resolution fetches afresh (a `no-store` document stays uncached).
type FetchSlot = Arc<tokio::sync::Mutex<Option<Result<ClientMetadata, String>>>>;

/// Checks a client_id URL (§3): https, a host, a path, no fragment, userinfo or dot segments,
/// and in the URL parser's canonical form so that the string compared is the string fetched.
pub(crate) fn parse_client_id_url(raw: &str, allow_http: bool) -> Result<Url, CimdError> {
    let bad = |why| CimdError::BadUrl(raw.chars().take(200).collect(), why);
    if raw.len() > MAX_CLIENT_ID_URL_LEN {
        return Err(bad("it is too long"));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("it contains whitespace or control characters"));
    }
    if raw.contains('#') {
        return Err(bad("it has a fragment"));
    }
    let url = Url::parse(raw).map_err(|_| bad("it is not an absolute URL"))?;
    let scheme_ok = url.scheme() == "https" || (allow_http && url.scheme() == "http");
    if !scheme_ok {
        return Err(bad("it must use https"));
    }
    if url.host().is_none() {
        return Err(bad("it has no host"));
    }
    // `example.com.` names the same host as `example.com`, but would not match its host
    // patterns nor its administrators' decisions.
    if url.host_str().is_some_and(|h| h.ends_with('.')) {
        return Err(bad("its host ends with a dot"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it contains user information"));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(bad("it must have a path"));
    }
    if url.as_str() != raw {
        return Err(bad(
            "it is not in canonical form (dot segments, letter case, default port or escapes)",
        ));
    }
    Ok(url)
}

#[derive(Clone)]
struct CachedDocument {
    metadata: ClientMetadata,
    ttl: Duration,
}

struct TtlPolicy;

impl moka::Expiry<String, CachedDocument> for TtlPolicy {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &CachedDocument,
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The shortest a fetched key set is cached (`keys_at`).
const MIN_KEYS_TTL: Duration = Duration::from_secs(60);

/// Cache lifetime from a Cache-Control header; `None` means do not cache.
pub(crate) fn cache_ttl(cache_control: Option<&str>) -> Option<Duration> {
    let Some(header) = cache_control else {
        return Some(DEFAULT_CACHE_TTL);
    };
    let mut ttl = DEFAULT_CACHE_TTL;
    for directive in header.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "no-cache" {
            return None;
        }
        if let Some(v) = directive.strip_prefix("max-age=") {
            match v.trim_matches('"').parse::<u64>() {
                Ok(0) => return None,
                Ok(secs) => ttl = Duration::from_secs(secs),
                Err(_) => return None,
            }
        }
    }
    Some(ttl.min(MAX_CACHE_TTL))
}

/// Resolves document-based clients for one tenant.
pub struct CimdResolver {
    fetcher: SafeFetcher,
    cache: Cache<String, CachedDocument>,
    /// JWK Sets fetched from clients' `jwks_uri`, by URL.
    keys: Cache<String, CachedKeys>,
    /// `jwks_uri`s fetched again on request lately: an assertion naming an unknown `kid` costs
    /// a fetch at most once a minute per URL, whoever sends it.
    refetched: Cache<String, ()>,
    /// Refusals remembered for `FAILURE_MEMORY`, by URL.
    refused: Cache<String, String>,
    /// Trusted issuers' `jwks_uri`s found by discovery, by issuer.
    issuers: Cache<String, String>,
    /// Fetches under way, by URL: concurrent resolutions of one client_id share one.
    fetching: std::sync::Mutex<std::collections::HashMap<String, FetchSlot>>,
    /// Fetches per requester address per minute.
    per_requester: DefaultKeyedRateLimiter<IpAddr>,
}

/// How often one `jwks_uri` may be fetched again because an assertion named an unknown key.
const KEYS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct CachedKeys {
    keys: Arc<JwkSet>,
    ttl: Duration,
}

impl moka::Expiry<String, CachedKeys> for TtlPolicy {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &CachedKeys,
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl CimdResolver {
    /// A resolver for `tenant`: the shared strict fetcher, or the tenant's own dev fetcher.
    pub fn for_tenant(tenant: &Tenant, strict: &SafeFetcher) -> Result<Self, FetchError> {
        let dev = tenant.dev();
        let fetcher = if dev.cimd_allow_loopback || dev.cimd_extra_ca_file.is_some() {
            let extra_ca_pem = dev
                .cimd_extra_ca_file
                .as_ref()
                .map(std::fs::read)
                .transpose()
                .map_err(|e| {
                    FetchError::Setup(format!("cannot read dev.cimd_extra_ca_file: {e}"))
                })?;
            SafeFetcher::new(FetchPolicy {
                allow_http_and_private: dev.cimd_allow_loopback,
                extra_ca_pem,
                ..strict.policy().clone()
            })?
        } else {
            strict.clone()
        };
        Ok(Self {
            fetcher,
            cache: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(TtlPolicy)
                .build(),
            keys: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(TtlPolicy)
                .build(),
            refetched: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(KEYS_REFETCH_INTERVAL)
                .build(),
            refused: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(FAILURE_MEMORY)
                .build(),
            issuers: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(MAX_CACHE_TTL)
                .build(),
            fetching: Default::default(),
            per_requester: RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(tenant.registration().cimd_fetches_per_minute)
                    .unwrap_or(NonZeroU32::MIN),
            )),
        })
    }

    /// Forgets the fetch budgets of addresses that have been quiet (the sweeper calls this).
    pub(crate) fn forget_idle_requesters(&self) {
        self.per_requester.retain_recent();
    }

    /// Whether `caller` may have one more document fetched now (the operator always may).
    fn may_fetch(&self, caller: Caller) -> bool {
        caller
            .budget_key()
            .is_none_or(|key| self.per_requester.check_key(&key).is_ok())
    }

    /// Fetches and validates a document, one fetch per URL at a time: resolutions that arrive
    /// while it is under way wait for it and share its outcome, and a refusal is remembered for
    /// `FAILURE_MEMORY` (a busy refusal, which is this server's own, is not).
    async fn fetch_once(
        &self,
        tenant: &Tenant,
        client_id: &str,
        url: &Url,
        caller: Caller,
    ) -> Result<ClientMetadata, CimdError> {
        let slot = {
            let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            fetching.retain(|_, s| Arc::strong_count(s) > 1);
            fetching.entry(client_id.to_owned()).or_default().clone()
        };
        let mut shared = slot.lock().await;
        // Whoever fetches takes the slot out of the map once done (below), so an outcome is
        // shared only with the resolutions that waited for that fetch.
        let release = || {
            let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            if fetching
                .get(client_id)
                .is_some_and(|s| Arc::ptr_eq(s, &slot))
            {
                fetching.remove(client_id);
            }
        };
        match shared.as_ref() {
            Some(Ok(metadata)) => return Ok(metadata.clone()),
            Some(Err(why)) => return Err(CimdError::Remembered(why.clone())),
            None => {}
        }
        if let Some(doc) = self.cache.get(client_id).await {
            return Ok(doc.metadata);
        }
        if let Some(why) = self.refused.get(client_id).await {
            return Err(CimdError::Remembered(why));
        }
        // Charged only here, where the network is used: cache hits, remembered refusals and a
        // share in another resolution's fetch are free. Not remembered as a refusal: it says
        // nothing about the document. (Those waiting on this slot then fetch on their own
        // requesters' budgets.)
        if !self.may_fetch(caller) {
            return Err(CimdError::RateLimited);
        }
        let span = crate::telemetry::client_span("cimd fetch", "GET", url.as_str());
        let outcome = match self.fetcher.get_json(url).instrument(span).await {
            Err(e) => {
                tracing::info!(tenant = %tenant.id, client_id, error = ?e, "client metadata document fetch failed");
                Err(CimdError::Fetch(client_id.to_owned(), e))
            }
            Ok(fetched) => validate_document(client_id, &fetched.body).map(|m| (m, fetched)),
        };
        match outcome {
            Ok((metadata, fetched)) => {
                if let Some(ttl) = cache_ttl(fetched.cache_control.as_deref()) {
                    let doc = CachedDocument {
                        metadata: metadata.clone(),
                        ttl,
                    };
                    self.cache.insert(client_id.to_owned(), doc).await;
                }
                *shared = Some(Ok(metadata.clone()));
                release();
                Ok(metadata)
            }
            Err(CimdError::Fetch(id, e)) if e.is_busy() => Err(CimdError::Fetch(id, e)),
            Err(e) => {
                let why = e.to_string();
                tracing::info!(target: "audit", event = "client_document_refused", tenant = %tenant.id,
                    client_id, reason = %why);
                self.refused.insert(client_id.to_owned(), why.clone()).await;
                *shared = Some(Err(why));
                release();
                Err(e)
            }
        }
    }

    /// The public keys of a `private_key_jwt` document client: its inline `jwks`, or the set
    /// at its `jwks_uri`, fetched through the same guarded fetcher as documents and cached the
    /// same way. `refetch` skips the cache (the assertion named a key the cached set lacks: the
    /// client may have rotated), at most once per `KEYS_REFETCH_INTERVAL` and URL.
    pub(crate) async fn client_keys(
        &self,
        metadata: &ClientMetadata,
        refetch: bool,
        caller: Caller,
    ) -> Result<Arc<JwkSet>, CimdError> {
        if let Some(jwks) = &metadata.jwks {
            return check_jwks(jwks).map(Arc::new).map_err(CimdError::Keys);
        }
        let Some(uri) = &metadata.jwks_uri else {
            return Err(CimdError::Keys(
                "the client metadata document names neither jwks nor jwks_uri".into(),
            ));
        };
        self.keys_at(uri, KeysOf::Client, refetch, caller).await
    }

    /// The JWK Set at `uri` (a client's `jwks_uri`, or a trusted issuer's), through the guarded
    /// fetcher, cached per its `Cache-Control`; `refetch` skips the cache at most once per
    /// `KEYS_REFETCH_INTERVAL` and URL.
    pub(crate) async fn keys_at(
        &self,
        uri: &str,
        of: KeysOf,
        refetch: bool,
        caller: Caller,
    ) -> Result<Arc<JwkSet>, CimdError> {
        let uri = &uri.to_owned();
        let refetch = refetch && !self.refetched.contains_key(uri);
        if !refetch && let Some(cached) = self.keys.get(uri).await {
            return Ok(cached.keys);
        }
        // Like documents: a failure is remembered for `FAILURE_MEMORY`, and a fetch is charged
        // to the requester, so that a client whose keys never come cannot make every token
        // request a fetch of some third party's URL.
        if let Some(why) = self.refused.get(uri).await {
            return Err(CimdError::Keys(format!(
                "{why} (remembered; not fetched again for a few seconds)"
            )));
        }
        if !self.may_fetch(caller) {
            return Err(CimdError::RateLimited);
        }
        // Only a fetch past the cache counts against the refetch interval: the first fetch of a
        // set must leave room for a rotation's unknown `kid` right after it.
        if refetch {
            self.refetched.insert(uri.clone(), ()).await;
        }
        let fetched = self.fetch_keys(uri, of).await;
        if let Err(CimdError::Keys(why)) = &fetched {
            self.refused.insert(uri.clone(), why.clone()).await;
        }
        let (keys, fetched) = fetched?;
        // A key set is cached at least `MIN_KEYS_TTL`, whatever its Cache-Control says: an
        // issuer that answers `no-cache` would otherwise be fetched at every token request
        // (a rotation is still picked up: an unknown `kid` fetches again, `refetch`).
        let asked = cache_ttl(fetched.cache_control.as_deref());
        if asked.is_none_or(|t| t < MIN_KEYS_TTL) {
            tracing::debug!(uri = %uri, cache_control = fetched.cache_control.as_deref().unwrap_or(""),
                "a key set asked to be cached for less than a minute; it is kept for a minute");
        }
        let entry = CachedKeys {
            keys: keys.clone(),
            ttl: asked.unwrap_or(MIN_KEYS_TTL).max(MIN_KEYS_TTL),
        };
        self.keys.insert(uri.clone(), entry).await;
        Ok(keys)
    }

    /// The `jwks_uri` an issuer's discovery document names (OpenID Connect Discovery, else RFC
    /// 8414 with the path inserted), fetched through the guarded fetcher; the document must
    /// name the issuer itself. Remembered like a key set.
    pub(crate) async fn discovered_jwks_uri(
        &self,
        issuer: &str,
        caller: Caller,
    ) -> Result<String, CimdError> {
        if let Some(known) = self.issuers.get(issuer).await {
            return Ok(known);
        }
        // Like a document: a failure is remembered for a few seconds, and the fetches are
        // charged to the requester.
        let memo = format!("discovery {issuer}");
        if let Some(why) = self.refused.get(&memo).await {
            return Err(CimdError::Remembered(why));
        }
        if !self.may_fetch(caller) {
            return Err(CimdError::RateLimited);
        }
        let url =
            Url::parse(issuer).map_err(|_| CimdError::Keys(format!("{issuer} is not a URL")))?;
        let trimmed = issuer.trim_end_matches('/');
        // RFC 8414 §3.1: the well-known segment goes between the origin and the path.
        let rfc8414 = format!(
            "{}/.well-known/oauth-authorization-server{}",
            url.origin().ascii_serialization(),
            url.path().trim_end_matches('/')
        );
        let mut last = String::new();
        for candidate in [
            format!("{trimmed}/.well-known/openid-configuration"),
            rfc8414,
        ] {
            let Ok(u) = Url::parse(&candidate) else {
                continue;
            };
            match self
                .fetcher
                .get_json_up_to(&u, ISSUER_DOCUMENT_MAX_BYTES)
                .await
            {
                Ok(doc) => {
                    let value: Value = serde_json::from_slice(&doc.body).unwrap_or(Value::Null);
                    if value.get("issuer").and_then(Value::as_str) != Some(issuer) {
                        last = format!("{candidate} names another issuer");
                        continue;
                    }
                    if let Some(j) = value.get("jwks_uri").and_then(Value::as_str) {
                        self.issuers.insert(issuer.to_owned(), j.to_owned()).await;
                        return Ok(j.to_owned());
                    }
                    last = format!("{candidate} names no jwks_uri");
                }
                Err(e) if e.is_busy() => return Err(CimdError::Fetch(candidate, e)),
                Err(e) => last = format!("{candidate}: {e}"),
            }
        }
        let why =
            format!("no discovery document of {issuer} names its keys ({last}); set jwks_uri");
        self.refused.insert(memo, why.clone()).await;
        Err(CimdError::Keys(why))
    }

    /// Fetches and checks a JWK Set.
    async fn fetch_keys(
        &self,
        uri: &str,
        of: KeysOf,
    ) -> Result<(Arc<JwkSet>, crate::net::Fetched), CimdError> {
        let url = Url::parse(uri).map_err(|_| CimdError::Keys(format!("{uri} is not a URL")))?;
        let (max_bytes, max_keys) = match of {
            KeysOf::Client => (self.fetcher.policy().max_bytes, MAX_CLIENT_KEYS),
            KeysOf::Issuer => (ISSUER_DOCUMENT_MAX_BYTES, ISSUER_MAX_KEYS),
        };
        let fetched = self
            .fetcher
            .get_json_up_to(&url, max_bytes)
            .await
            .map_err(|e| {
                if e.is_busy() {
                    // This server's own limit, not the client's fault: not remembered.
                    CimdError::Fetch(uri.to_owned(), e)
                } else {
                    CimdError::Keys(format!("{uri}: {e}"))
                }
            })?;
        let value: Value = serde_json::from_slice(&fetched.body)
            .map_err(|_| CimdError::Keys(format!("{uri} is not JSON")))?;
        let keys = check_jwks_up_to(&value, max_keys)
            .map_err(|e| CimdError::Keys(format!("{uri}: {e}")))?;
        Ok((Arc::new(keys), fetched))
    }

    /// Turns a URL `client_id` into a client record of `tenant` (not stored: the document is
    /// the record).
    pub async fn resolve(
        &self,
        tenant: &Tenant,
        client_id: &str,
        ctx: &RequestCtx,
    ) -> Result<ClientRecord, CimdError> {
        let now = ctx.now;
        let policy = tenant.registration();
        if !policy.cimd {
            return Err(CimdError::Disabled);
        }
        let url = parse_client_id_url(client_id, self.fetcher.policy().allow_http_and_private)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        if !policy.cimd_allowed_hosts.is_empty()
            && !policy.cimd_allowed_hosts.iter().any(|p| p.matches(&host))
        {
            return Err(CimdError::HostNotAllowed(host));
        }
        let cimd = |outcome: &str| {
            crate::metrics::metrics()
                .cimd
                .with_label_values(&[tenant.id.as_str(), outcome])
                .inc();
        };
        let metadata = match self.cache.get(client_id).await {
            Some(doc) => {
                cimd("cache_hit");
                doc.metadata
            }
            None => match self.fetch_once(tenant, client_id, &url, ctx.caller).await {
                Ok(m) => {
                    cimd("fetched");
                    m
                }
                Err(e) => {
                    cimd(match &e {
                        CimdError::Fetch(_, f) if f.is_busy() => "busy",
                        CimdError::Remembered(_) => "remembered",
                        CimdError::RateLimited => {
                            crate::metrics::metrics()
                                .rate_limited
                                .with_label_values(&[tenant.id.as_str(), "cimd_address"])
                                .inc();
                            "rate_limited"
                        }
                        _ => "refused",
                    });
                    return Err(e);
                }
            },
        };
        let apps = choose_apps(tenant, &ClientFacts::of(&metadata, Some(&host)));
        Ok(ClientRecord {
            client_id: ClientId::new(client_id),
            source: ClientSource::Cimd { host },
            metadata,
            secret_sha256: None,
            registration_token_sha256: None,
            apps,
            pinned: Default::default(),
            approval_epoch: 0,
            approval: Default::default(),
            issued_at: now,
            last_used_at: now,
        })
    }
}

/// Validates a fetched document against the URL it came from (§4.1).
pub fn validate_document(url: &str, body: &[u8]) -> Result<ClientMetadata, CimdError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| CimdError::NotJsonObject(url.to_owned()))?;
    let Value::Object(map) = value else {
        return Err(CimdError::NotJsonObject(url.to_owned()));
    };
    match map.get("client_id") {
        Some(Value::String(id)) if id == url => {}
        Some(Value::String(id)) => {
            return Err(CimdError::ClientIdMismatch {
                url: url.to_owned(),
                // A stranger's text, shown in logs: no control characters.
                found: id
                    .chars()
                    .take(200)
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect(),
            });
        }
        _ => {
            return Err(CimdError::Invalid(
                url.to_owned(),
                "client_id: is required and must be a string".into(),
            ));
        }
    }
    validate_client_metadata(&map, MetadataOrigin::Document)
        .map_err(|e| CimdError::Invalid(url.to_owned(), e.description))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_urls() {
        assert!(parse_client_id_url("https://app.example.com/client.json", false).is_ok());
        for bad in [
            "http://app.example.com/client.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/a#b",
            "https://u@app.example.com/c",
            "https://app.example.com/a/../c",
            "https://app.example.com/a/%2e%2e/c",
            "https://APP.example.com/c",
            "https://app.example.com:443/c",
            "https://app.example.com/c d",
        ] {
            assert!(parse_client_id_url(bad, false).is_err(), "{bad}");
        }
        assert!(parse_client_id_url("http://localhost:8000/c.json", true).is_ok());
    }

    #[test]
    fn cache_control() {
        assert_eq!(cache_ttl(None), Some(DEFAULT_CACHE_TTL));
        assert_eq!(cache_ttl(Some("max-age=60")), Some(Duration::from_secs(60)));
        assert_eq!(
            cache_ttl(Some("public, max-age=999999999")),
            Some(MAX_CACHE_TTL)
        );
        assert_eq!(cache_ttl(Some("no-store")), None);
        assert_eq!(cache_ttl(Some("max-age=0")), None);
        assert_eq!(cache_ttl(Some("no-cache, max-age=60")), None);
        assert_eq!(cache_ttl(Some("max-age=abc")), None);
    }
}
