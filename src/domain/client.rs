//! The client record: what the shim knows about a registered (RFC 7591) or CIMD client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::client_id::ClientId;
use super::redirect_uri::{RedirectKind, RedirectUri};
use crate::crypto::HandleKey;

/// `grant_types` values the shim accepts (RFC 7591 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
}

impl GrantType {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            _ => None,
        }
    }
}

/// `token_endpoint_auth_method` values the shim accepts (RFC 7591 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
    /// A client assertion signed with a key of the client's `jwks` or `jwks_uri` (RFC 7523
    /// §2.2); client metadata documents only.
    PrivateKeyJwt,
}

impl AuthMethod {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            _ => None,
        }
    }

    /// The RFC 7591 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn is_confidential(self) -> bool {
        self != Self::None
    }
}

/// `application_type` (OpenID Connect Dynamic Registration §2), which RFC 8252 clients send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationType {
    Web,
    Native,
}

/// Validated client metadata, serialized with the RFC 7591 §2 field names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    #[serde(with = "super::redirect_uri::as_strings")]
    pub redirect_uris: Vec<RedirectUri>,
    pub token_endpoint_auth_method: AuthMethod,
    pub(crate) grant_types: Vec<GrantType>,
    pub(crate) response_types: Vec<String>,
    pub(crate) application_type: ApplicationType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tos_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub(crate) contacts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) software_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) software_version: Option<String>,
    /// The client's public keys for `private_key_jwt`: a JWK Set given inline…
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) jwks: Option<serde_json::Value>,
    /// …or fetched from this URL.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) jwks_uri: Option<String>,
}

impl ClientMetadata {
    /// The kinds of all redirect URIs, for mapping rules.
    pub(crate) fn redirect_kinds(&self) -> impl Iterator<Item = RedirectKind> + '_ {
        self.redirect_uris.iter().map(RedirectUri::kind)
    }

    /// The redirect URI of a request, when it designates a registered one (RFC 6749 §3.1.2.3;
    /// for a loopback URI with the port the request gave, RFC 8252 §7.3).
    pub fn find_redirect_uri(&self, requested: &str) -> Option<RedirectUri> {
        let registered = self.redirect_uris.iter().find(|r| r.matches(requested))?;
        if registered.as_str() == requested {
            return Some(registered.clone());
        }
        // A loopback URI with another port: `matches` accepted it only in canonical form.
        RedirectUri::parse(requested).ok()
    }
}

/// Where a client came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClientSource {
    /// Registered at `/{tenant}/register`.
    Dcr,
    /// Described by the metadata document at its `client_id` URL.
    Cimd { host: String },
}

/// Whether an administrator let the client in (`oauth/approval/`). Stored for registered
/// clients; a document client's is worked out from the tenant's decisions when it is found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Usable: approved, or registered where no approval is asked (and every client
    /// registered before approval existed).
    #[default]
    Approved,
    /// Waiting for an administrator: its users are refused after they sign in.
    Pending,
    /// Refused by an administrator: its users are told so, and it stays refused.
    Denied,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Pending => "pending",
            Self::Denied => "denied",
        }
    }

    pub(crate) fn is_approved(&self) -> bool {
        *self == Self::Approved
    }
}

/// A client of one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: ClientId,
    pub source: ClientSource,
    pub metadata: ClientMetadata,
    /// SHA-256 of the client secret, hex; only confidential DCR clients have one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret_sha256: Option<HandleKey>,
    /// SHA-256 of the registration access token (RFC 7592), hex; registered clients only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) registration_token_sha256: Option<HandleKey>,
    /// The app chosen by the mapping rules, per resource URI of the tenant (configured form).
    pub apps: BTreeMap<String, String>,
    /// The resources whose app an operator chose (`PUT …/clients/{id}/app`): a client's own
    /// update (RFC 7592) runs the mapping rules again for the others only.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub pinned: std::collections::BTreeSet<String>,
    /// Counts the client's updates that added a redirect URI. Browsers' approvals are kept
    /// per epoch (`oauth/login/consent.rs`), so such an update drops every approval given before it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) approval_epoch: u64,
    /// Whether an administrator let it in (absent: approved).
    #[serde(default, skip_serializing_if = "ApprovalStatus::is_approved")]
    pub approval: ApprovalStatus,
    pub(crate) issued_at: u64,
    pub(crate) last_used_at: u64,
}

/// A client's apps as `resource=app` pairs, space-separated: plain text for an audit field (not
/// JSON inside a JSON string).
pub(crate) fn describe_apps(apps: &BTreeMap<String, String>) -> String {
    apps.iter()
        .map(|(resource, app)| format!("{resource}={app}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ClientRecord {
    pub(crate) fn cimd_host(&self) -> Option<&str> {
        match &self.source {
            ClientSource::Cimd { host } => Some(host),
            ClientSource::Dcr => None,
        }
    }
}
