//! The gateway (`[resources.gateway]`, `docs/gateway.md`): the shim serves a resource's MCP
//! endpoint itself, admits a call only with a live minted token for that resource, and passes
//! it to the MCP server behind with the caller's identity in a form of its own, never the
//! client's token. This module is the protocol side: who may call (`admission.rs`), what the
//! call is (`message.rs`), how identity travels (`identity.rs`) and the call to the MCP server
//! (`forward.rs`). `http/gateway.rs` is the HTTP side.

pub(crate) mod admission;
pub(crate) mod downstream;
pub(crate) mod forward;
pub(crate) mod identity;
pub(crate) mod limits;
pub(crate) mod listing;
pub(crate) mod message;
pub(crate) mod policy;
pub(crate) mod record;
pub(crate) mod relay;
pub(crate) mod sessions;
