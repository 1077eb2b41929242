//! The OAuth protocol, apart from HTTP: client metadata, registration, client metadata
//! documents, mapping to apps, metadata, and the login flow (authorize → consent → callback →
//! token → refresh → revoke) over the store and the upstream client.

pub(crate) mod admin_error;
pub mod approval;
pub mod cimd;
pub(crate) mod client_assertion;
pub(crate) mod client_configuration;
pub mod client_metadata;
pub mod context;
pub(crate) mod dpop;
pub(crate) mod error;
pub(crate) mod family;
pub mod family_index;
pub(crate) mod grants;
pub mod login;
pub(crate) mod mapping;
pub(crate) mod metadata;
pub(crate) mod minted;
pub mod params;
pub mod records;
pub(crate) mod registration;
pub(crate) mod resource_metadata;
pub(crate) mod scopes;
pub(crate) mod server;
pub(crate) mod serving;
pub mod token;

pub use login::consent;
pub(crate) use login::{authorize, callback};
pub use token::client_auth;
pub(crate) mod upstream_errors;
pub(crate) mod upstreams;

pub use error::{ErrorCode, OAuthError};
pub(crate) use server::AuthServer;
