//! The identity provider side: discovery (retried in the background), app credentials, token
//! calls, what Entra's errors mean, and what differs between kinds of IdP (`provider`). The
//! built-in dev IdP is a module of its own (`crate::dev_idp`), reached through `InProcessIdp`.

pub mod credentials;
pub mod discovery;
pub mod entra;
pub mod error;
pub mod http;
pub mod provider;
pub mod tokens;

pub use discovery::{UpstreamDirectory, UpstreamEndpoints, UpstreamStatus};
