//! How a client's address is named where the HTTP layer cannot place it: behind a trusted
//! proxy whose forwarded hop cannot be read (`http/client_addr.rs`), the client is
//! `UNKNOWN_CLIENT`, which logs, audit events and the refusal summaries (`log_budget.rs`) call
//! `unknown`.

use std::net::{IpAddr, Ipv6Addr};

/// The client behind a trusted proxy whose forwarded hop cannot be read. No connection comes
/// from the unspecified address, so it names no real peer.
pub(crate) const UNKNOWN_CLIENT: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// How logs and audit events name a client address: `unknown` for [`UNKNOWN_CLIENT`].
pub(crate) fn describe(ip: Option<IpAddr>) -> String {
    match ip {
        Some(UNKNOWN_CLIENT) => "unknown".to_owned(),
        Some(ip) => ip.to_string(),
        None => String::new(),
    }
}
