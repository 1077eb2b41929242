//! The shim's own access tokens, for resources with `token = "minted"`: the tenant's signing
//! keys (`keys`) and the RFC 9068 tokens signed with them (`access_token`).

pub(crate) mod access_token;
pub mod keys;

pub use keys::{KeyError, Rotation, SigningKeys};
