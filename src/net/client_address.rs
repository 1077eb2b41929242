//! How a client's address is named where the HTTP layer cannot place it: behind a trusted
//! proxy whose forwarded hop cannot be read (`http/client_addr.rs`), the client is
//! `UNKNOWN_CLIENT`, which logs, audit events and the refusal summaries (`log_budget.rs`) call
//! `unknown`; and the key an address's budgets are counted under.

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

/// The key an address's per-address budgets are counted under: IPv6 addresses per /64, the
/// block one subscriber usually holds; an IPv4-mapped address as the IPv4 one.
pub(crate) fn rate_limit_key(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
        v4 => v4,
    }
}
