//! Configuration: server settings and tenant files (parsed and validated, problems with file and field).

pub(crate) mod app;
pub mod approval;
pub mod downstream_api;
pub mod entra_checklist;
pub mod entra_plan;
pub(crate) mod entra_rules;
pub mod gateway;
pub mod grant_lifetime;
pub(crate) mod host_pattern;
pub mod load;
pub mod machine_client;
pub mod problems;
pub mod resource;
pub mod resource_server;
pub mod schema;
pub mod server;
pub mod tenant;
pub mod token_mode;
pub mod trusted_issuer;
pub mod trusted_workload;
pub mod validate;

pub use host_pattern::HostPattern;
pub use load::{load_tenant, load_tenants, load_tenants_with};
pub use problems::{CredentialFiles, Problem};
pub use server::{LogFormat, Settings};
pub use tenant::Tenant;
pub use token_mode::TokenMode;
