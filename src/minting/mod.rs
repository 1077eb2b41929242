//! The shim's own access tokens, for resources with `token = "minted"`: the tenant's signing
//! keys (`keys`), the RFC 9068 tokens signed with them (`access_token`) and the identity JWTs
//! the gateway hands MCP servers (`identity`).

pub(crate) mod access_token;
pub(crate) mod identity;
pub mod keys;

pub use keys::{KeyError, Rotation, SigningKeys};
