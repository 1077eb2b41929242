//! Protocol values parsed once at the edge, so that code below never holds an unchecked one.

pub(crate) mod client;
pub(crate) mod client_id;
pub(crate) mod redirect_uri;
pub(crate) mod resource;
pub(crate) mod scope;
pub(crate) mod tenant_id;

pub use client::{
    ApplicationType, AuthMethod, ClientMetadata, ClientRecord, ClientSource, GrantType,
};
pub use client_id::ClientId;
pub use redirect_uri::{RedirectKind, RedirectUri, is_https_or_loopback, is_loopback_host};
pub use resource::ResourceUri;
pub use scope::ScopeSet;
pub use tenant_id::TenantId;
