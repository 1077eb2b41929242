//! Protocol values parsed once at the edge, so that code below never holds an unchecked one.

pub(crate) mod client;
pub(crate) mod client_id;
pub(crate) mod redirect_uri;
pub(crate) mod resource;
pub(crate) mod scope;
pub(crate) mod tenant_id;
pub(crate) mod text;

pub use client::{
    ApplicationType, ApprovalStatus, AuthMethod, ClientMetadata, ClientRecord, ClientSource,
    GrantType,
};
pub use client_id::ClientId;
pub use redirect_uri::{RedirectKind, RedirectUri, is_https_or_loopback, is_loopback_host};
pub use resource::ResourceUri;
pub use scope::ScopeSet;
pub use tenant_id::TenantId;

/// JWS algorithms accepted for a signature someone else's key makes (client assertions,
/// ID-JAGs): asymmetric only (a shared-key HMAC would need a shared secret; `none` signs
/// nothing).
pub const ASYMMETRIC_JWS_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];
