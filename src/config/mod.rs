//! Configuration: server settings and tenant files (parsed and validated, problems with file and field).

pub mod downstream_api;
pub mod entra_checklist;
pub mod grant_lifetime;
pub(crate) mod host_pattern;
pub mod resource_server;
pub mod server;
pub mod tenant;
pub mod token_mode;
pub mod trusted_issuer;

pub use host_pattern::HostPattern;
pub use server::{LogFormat, Settings};
pub use tenant::{Problem, Tenant, load_tenants};
pub use token_mode::TokenMode;
