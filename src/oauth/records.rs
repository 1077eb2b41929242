//! What the login flow stores. Every key is the hash of a value handed out (transaction id,
//! code, refresh token); what sits behind one is sealed with a key derived from that value.

use serde::{Deserialize, Serialize};

use crate::crypto::HandleKey;
use crate::store::{Namespace, Record};

/// An authorization request that passed validation, waiting for consent or the upstream login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub client_id: String,
    /// The redirect URI of the request (for a loopback client, with the port it used).
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    pub code_challenge: String,
    pub resource: String,
    /// MCP-facing scope names granted.
    pub scopes: Vec<String>,
    pub upstream_scopes: Vec<String>,
    /// Refresh tokens will be issued (the client asked for offline_access or is registered
    /// for the refresh_token grant); the consent page says so.
    pub offline_access: bool,
    pub app: String,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    pub domain_hint: Option<String>,
}

/// The state of one upstream login (`state` = the transaction id). Single use, ~10 minutes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Transaction {
    pub request: PendingAuthorization,
    /// The shim's own PKCE verifier for the upstream leg, sealed under the transaction id.
    pub sealed_verifier: String,
    pub nonce: String,
    /// SHA-256 of the cookie set in the browser that gave consent: the callback must come
    /// back to that browser, so a forwarded IdP link cannot complete someone else's login.
    pub browser_hash: HandleKey,
    pub created_at: u64,
}

impl Record for Transaction {
    const NAMESPACE: Namespace = Namespace::Transaction;
    const SCHEMA: u16 = 1;
}

/// The shim's authorization code. Valid 60 s; kept a while longer, marked used, so that a
/// replay can be recognised and the refresh family it started revoked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthCode {
    pub request: PendingAuthorization,
    /// The IdP's tokens, sealed under the code.
    pub sealed_tokens: String,
    pub subject: Option<String>,
    pub valid_until: u64,
    pub used: bool,
    pub family_id: Option<String>,
}

impl Record for AuthCode {
    const NAMESPACE: Namespace = Namespace::Code;
    const SCHEMA: u16 = 1;
}

/// One refresh token of a family.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub family_id: String,
    pub client_id: String,
    pub resource: String,
    pub scopes: Vec<String>,
    pub upstream_scopes: Vec<String>,
    pub app: String,
    pub issued_at: u64,
    pub state: RefreshState,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RefreshState {
    /// Usable; the IdP's refresh token is sealed under this token.
    Active { sealed_upstream: String },
    /// Used at `at`; the response given then (with the successor) is sealed under this token,
    /// so a retry within the grace window gets the same answer.
    Rotated { at: u64, sealed_response: String },
}

impl Record for RefreshRecord {
    const NAMESPACE: Namespace = Namespace::Refresh;
    const SCHEMA: u16 = 1;
}

/// A chain of rotated refresh tokens from one login; revoking it ends them all.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Family {
    pub client_id: String,
    pub revoked: bool,
    pub created_at: u64,
}

impl Record for Family {
    const NAMESPACE: Namespace = Namespace::Family;
    const SCHEMA: u16 = 1;
}
