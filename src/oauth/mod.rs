//! The OAuth protocol, apart from HTTP: client metadata, registration, client metadata
//! documents, mapping to apps, metadata, and the login flow (authorize → consent → callback →
//! token → refresh → revoke) over the store and the upstream client.

pub mod authorize;
pub mod callback;
pub mod cimd;
pub mod client_auth;
pub mod client_metadata;
pub mod consent;
pub mod error;
pub mod mapping;
pub mod metadata;
pub mod params;
pub mod records;
pub mod refresh;
pub mod registration;
pub mod scopes;
pub mod server;
pub mod token;
pub mod token_request;
pub mod upstream_errors;

pub use error::{ErrorCode, OAuthError};
pub use server::AuthServer;
