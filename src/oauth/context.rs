//! What the authorization server knows of the request it serves, handed in by the HTTP layer
//! (`http/request_ctx.rs`) or the admin API: when it arrived, on whose behalf, and its id.
//! Nothing below reads these from the clock or from a task-local.

use std::net::IpAddr;

use crate::net::client_address::{UNKNOWN_CLIENT, describe, rate_limit_key};

/// One request, as the flows see it.
#[derive(Clone, Debug)]
pub struct RequestCtx {
    /// When the request arrived (Unix seconds): every check of the request uses this time.
    pub now: u64,
    /// On whose behalf the request runs: what it fetches is charged to them.
    pub caller: Caller,
    /// The request's id in the log, for the pages that show it.
    pub request_id: Option<String>,
}

impl RequestCtx {
    /// A request of the operator (the admin API), at `now`.
    pub fn operator(now: u64) -> Self {
        Self {
            now,
            caller: Caller::Operator,
            request_id: None,
        }
    }
}

/// Who a request comes from, for the budgets it is charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A client at this address (behind a trusted proxy, the one the proxy names).
    Address(IpAddr),
    /// A request whose peer address is not known: all such requests share one budget, so that
    /// none of them escapes it.
    Unknown,
    /// The operator, through the admin API: trusted, and charged to no address.
    Operator,
}

impl Caller {
    /// The key the caller's per-address budgets are kept under (`None`: no budget).
    pub fn budget_key(self) -> Option<IpAddr> {
        match self {
            Self::Address(ip) => Some(rate_limit_key(ip)),
            Self::Unknown => Some(UNKNOWN_CLIENT),
            Self::Operator => None,
        }
    }

    /// How logs, audit events and approval requests name the caller: its address (`unknown`
    /// behind a proxy whose forwarded hop cannot be read), none for the others.
    pub fn describe(self) -> Option<String> {
        self.address().map(|ip| describe(Some(ip)))
    }

    /// The caller's address, when it has one.
    pub fn address(self) -> Option<IpAddr> {
        match self {
            Self::Address(ip) => Some(ip),
            Self::Unknown | Self::Operator => None,
        }
    }
}
