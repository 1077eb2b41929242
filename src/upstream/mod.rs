//! The identity provider side: discovery (retried in the background), app credentials, token
//! calls, what Entra's errors mean, and what differs between kinds of IdP (`provider`). The
//! built-in dev IdP is a module of its own (`crate::dev_idp`), reached through `InProcessIdp`.

pub(crate) mod access_token;
pub(crate) mod credentials;
pub mod discovery;
pub(crate) mod endpoints;
pub(crate) mod entra;
pub(crate) mod error;
pub mod http;
pub(crate) mod id_token;
pub(crate) mod idp_keys;
pub(crate) mod managed_identity;
pub mod probe;
pub mod provider;
pub(crate) mod tokens;

pub(crate) use discovery::UpstreamDirectory;
pub(crate) use endpoints::UpstreamEndpoints;
