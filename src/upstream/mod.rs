//! The identity provider side. For now: discovery of each tenant's upstream, retried in the
//! background until it succeeds, and the readiness it feeds.

pub mod discovery;

pub use discovery::{UpstreamDirectory, UpstreamStatus};
