//! The OAuth protocol, apart from HTTP: client metadata, registration, client metadata
//! documents, mapping to apps, and authorization server metadata.

pub mod cimd;
pub mod client_metadata;
pub mod error;
pub mod mapping;
pub mod metadata;
pub mod registration;

pub use error::{ErrorCode, OAuthError};
