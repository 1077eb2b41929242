//! The identity provider side: discovery (retried in the background), app credentials, token
//! calls, Entra error translation, and the built-in dev IdP.

pub mod credentials;
pub mod dev_idp;
pub mod discovery;
pub mod entra;
pub mod error;
pub mod http;
pub mod tokens;

pub use discovery::{UpstreamDirectory, UpstreamEndpoints, UpstreamStatus};
