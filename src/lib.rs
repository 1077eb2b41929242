//! dcr-shim: an OAuth 2.1 authorization server that offers Dynamic Client Registration and
//! Client ID Metadata Documents to MCP clients in front of an IdP that offers neither.
#![forbid(unsafe_code)]
// Functions a screen holds, taking what they need as a few named values (`clippy.toml` sets
// the length: 80 lines of code). `.ci/run` refuses an allowance of either.
#![deny(clippy::too_many_arguments, clippy::too_many_lines)]

pub mod admin;
pub mod admin_cli;
pub mod app;
pub mod audit_log;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod dev_idp;
pub mod domain;
pub(crate) mod gateway;
pub mod http;
pub(crate) mod log_budget;
pub(crate) mod metrics;
pub mod minting;
pub mod net;
pub mod oauth;
pub mod reload;
pub mod secret_fingerprint;
pub mod store;
pub mod telemetry;
pub mod upstream;
