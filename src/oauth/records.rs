//! What the login flow stores. Every record behind a handed-out value (transaction id, code,
//! refresh token) is keyed by that value's `HandleKey`; what sits behind one is sealed with a
//! key derived from the value itself (`crate::crypto::sealing`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::crypto::pkce::S256Challenge;
use crate::crypto::{Handle, HandleKey, random_token};
use crate::domain::{ClientId, RedirectUri, ResourceUri, ScopeSet, TenantId};
use crate::store::{Namespace, Record, RecordId, Records, StoreError};

/// An authorization request that passed validation, waiting for consent or the upstream login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub(crate) client_id: ClientId,
    /// The redirect URI of the request (for a loopback client, with the port it used).
    #[serde(with = "crate::domain::redirect_uri::as_string")]
    pub(crate) redirect_uri: RedirectUri,
    /// Whether the request named `redirect_uri` (then the token request must repeat it).
    pub(crate) redirect_uri_given: bool,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: S256Challenge,
    /// The tenant's configured form of the resource.
    pub(crate) resource: ResourceUri,
    /// MCP-facing scope names granted.
    pub(crate) scopes: ScopeSet,
    pub(crate) upstream_scopes: ScopeSet,
    /// Refresh tokens will be issued (the client asked for offline_access or is registered
    /// for the refresh_token grant); the consent page says so.
    pub(crate) offline_access: bool,
    pub(crate) app: String,
    pub(crate) prompt: Option<String>,
    pub(crate) login_hint: Option<String>,
    pub(crate) domain_hint: Option<String>,
    /// Passed to the IdP as they came (OpenID Connect Core §3.1.2.1, §5.5), so that a
    /// Conditional Access or Continuous Access Evaluation claims challenge can complete. Absent
    /// from records written before they existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) claims: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_age: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) acr_values: Option<String>,
    /// The client's approval epoch when the request was made (`ClientRecord::approval_epoch`).
    #[serde(default)]
    pub(crate) approval_epoch: u64,
    /// The client waited for an administrator when the request was made: the callback asks
    /// again, and queues the request if it still waits.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) approval_pending: bool,
    /// The thumbprint of a DPoP key the client named (RFC 9449 §10): the code is redeemed only
    /// with a proof of that key, so that a code stolen on its way back is worth nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dpop_jkt: Option<String>,
}

/// The state of one upstream login (`state` = the transaction id). Single use, ~10 minutes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Transaction {
    pub(crate) request: PendingAuthorization,
    /// The shim's own PKCE verifier for the upstream leg, sealed under the transaction id.
    pub(crate) sealed_verifier: String,
    pub(crate) nonce: String,
    /// The key of the cookie set in the browser that gave consent: the callback must come
    /// back to that browser, so a forwarded IdP link cannot complete someone else's login.
    pub(crate) browser_hash: HandleKey,
    pub(crate) created_at: u64,
}

impl Record for Transaction {
    const NAMESPACE: Namespace = Namespace::Transaction;
    const SCHEMA: u16 = 1;
    type Id = HandleKey;
}

/// The shim's authorization code. Valid 60 s; kept a while longer, marked used, so that a
/// replay can be recognised and the refresh family it started revoked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthCode {
    pub(crate) request: PendingAuthorization,
    /// The IdP's tokens, sealed under the code.
    pub(crate) sealed_tokens: String,
    pub(crate) subject: Option<String>,
    pub(crate) valid_until: u64,
    pub used: bool,
    pub(crate) family_id: Option<FamilyId>,
    /// Whether the resource's tokens were minted when the code was issued.
    #[serde(default)]
    pub(crate) minted: bool,
}

impl Record for AuthCode {
    const NAMESPACE: Namespace = Namespace::Code;
    const SCHEMA: u16 = 1;
    type Id = HandleKey;
}

/// One refresh token of a family.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub(crate) family_id: FamilyId,
    pub(crate) client_id: ClientId,
    pub(crate) resource: ResourceUri,
    pub(crate) scopes: ScopeSet,
    pub(crate) upstream_scopes: ScopeSet,
    pub(crate) app: String,
    pub(crate) issued_at: u64,
    pub(crate) state: RefreshState,
    /// While a server that shares the store with others rotates this token, its lease: the
    /// others wait for it (`refresh.rs::lease_token`). A server that dies mid-rotation leaves
    /// it to run out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) lease: Option<RefreshLease>,
    /// For a minted resource, the claims its tokens copy from the login's ID token, sealed
    /// under this token (`minted.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sealed_claims: Option<String>,
    /// For a public client that proved a DPoP key: the key's thumbprint, which every use of
    /// this token (and its successors) must prove again (RFC 9449 §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dpop_jkt: Option<String>,
}

/// Who rotates a refresh token, and until when the others wait.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefreshLease {
    /// Random per lease: only its holder gives it back, so that a holder whose lease ran out
    /// cannot end the lease another server took after it.
    pub(crate) holder: String,
    pub(crate) until: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum RefreshState {
    /// Usable; the IdP's refresh token is sealed under this token.
    Active { sealed_upstream: String },
    /// Used at `at`; the response given then (with the successor) is sealed under this token,
    /// so a retry within the grace window gets the same answer.
    Rotated { at: u64, sealed_response: String },
}

impl RefreshRecord {
    /// Whether the grant's tokens are minted: a minted grant's tokens carry its sealed claims.
    pub(crate) fn is_minted(&self) -> bool {
        self.sealed_claims.is_some()
    }
}

impl Record for RefreshRecord {
    const NAMESPACE: Namespace = Namespace::Refresh;
    const SCHEMA: u16 = 1;
    type Id = HandleKey;
}

/// The id of a refresh family: random, stored as it is. Minted access tokens carry it as their
/// `sid`, so that introspection can tell a revoked login; knowing it grants nothing (only the
/// admin API takes it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FamilyId(String);

impl FamilyId {
    pub(crate) fn generate() -> Self {
        Self(random_token())
    }

    /// A family id an operator names (from the admin API's listing).
    pub(crate) fn from_admin(id: &str) -> Self {
        Self(id.to_owned())
    }

    /// The first characters, enough to tell families apart in a log line.
    pub(crate) fn short(&self) -> &str {
        self.0.get(..8).unwrap_or(&self.0)
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl RecordId for FamilyId {
    fn as_id(&self) -> &str {
        &self.0
    }
}

/// A chain of rotated refresh tokens from one login; revoking it ends them all.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Family {
    pub(crate) client_id: ClientId,
    pub revoked: bool,
    pub(crate) created_at: u64,
    /// The user at the IdP (Entra `oid`, else `sub` of the ID token), so that an operator can
    /// revoke every grant of one user; absent for families from before it was recorded, or an
    /// IdP that sent no ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) subject: Option<String>,
    /// When the user authenticated at the IdP, for minted tokens' `auth_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) auth_time: Option<u64>,
    /// For a resource whose server may exchange its tokens (`exchange.rs`): the IdP refresh
    /// token, sealed under a server-held key so that an exchange can use it without the
    /// client's refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exchange: Option<ExchangeGrant>,
    /// For a grant of an enterprise IdP's assertion (`id_jag.rs`), that IdP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) issuer: Option<String>,
}

/// What token exchange uses of a login: its app and the IdP's latest refresh token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ExchangeGrant {
    pub(crate) app: String,
    pub(crate) sealed_refresh: String,
}

impl Record for Family {
    const NAMESPACE: Namespace = Namespace::Family;
    const SCHEMA: u16 = 1;
    type Id = FamilyId;
}

/// A spent `private_key_jwt` assertion, by the hash of client id and `jti`: RFC 7523 §3 lets
/// the server refuse a replay, and this one does. Kept until shortly after the assertion
/// expires.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SpentAssertion {
    pub(crate) client_id: ClientId,
}

impl Record for SpentAssertion {
    const NAMESPACE: Namespace = Namespace::Assertion;
    const SCHEMA: u16 = 1;
    type Id = HandleKey;
}

/// A value that may be used once: a client assertion's or an ID-JAG's `jti` within its
/// `scope` (the client, the issuer), a consent ticket.
pub(crate) struct SpendOnce<'a> {
    pub(crate) scope: &'a str,
    pub(crate) jti: &'a str,
    pub(crate) client_id: &'a ClientId,
    /// Kept spent until then (Unix seconds).
    pub(crate) until: u64,
}

impl SpendOnce<'_> {
    /// Marks the value spent; `false` if it already was, on any server sharing the store.
    pub(crate) async fn spend(
        &self,
        records: &Records,
        tenant: &TenantId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let spent = SpentAssertion {
            client_id: self.client_id.clone(),
        };
        let key = Handle::presented(&format!("{}\n{}", self.scope, self.jti)).key();
        records
            .insert_new(tenant, &key, &spent, Some(self.until), now)
            .await
    }
}
