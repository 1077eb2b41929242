//! What a flood of refused requests may write to the log and the audit file: per kind of
//! refusal and per interval of `INTERVAL`, one full line per source address, at most
//! `FULL_PER_INTERVAL` of them; every other refusal is counted, and once per interval each kind
//! that counted any gets one line that says how many, from how many sources, and the sources
//! that sent most ("N more like this in the last 10 s"). Audit events are aggregated the same
//! way on the audit target, so the audit file stays complete in counts, not in copies.
//!
//! Without this, 400,000 rate-limited registrations from distinct forwarded addresses wrote
//! 800,000 lines (186 MB): a stranger could fill the disk at the cost of requests.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How often the counts are written and the budgets start over.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);
/// Full lines per kind and interval.
const FULL_PER_INTERVAL: u32 = 20;
/// Sources counted one by one per kind and interval; beyond them, "other sources".
const TRACKED_SOURCES: usize = 1000;
/// Sources the summary line names.
const TOP: usize = 5;

/// A kind of refusal that a stranger can repeat at will.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Refusal {
    /// `registration_rate_limited` (audit).
    RegistrationRateLimited,
    /// `login_rate_limited` (audit).
    LoginRateLimited,
    /// A registration refused for its metadata.
    Registration,
    /// A client configuration (RFC 7592) request refused.
    ClientConfiguration,
    /// An authorization request refused.
    Authorize,
    /// A consent form refused.
    Consent,
    /// A token, revocation or introspection request refused.
    Token,
    /// The request line of any request answered 4xx.
    Request,
}

impl Refusal {
    fn name(self) -> &'static str {
        match self {
            Self::RegistrationRateLimited => "registration_rate_limited",
            Self::LoginRateLimited => "login_rate_limited",
            Self::Registration => "registration refused",
            Self::ClientConfiguration => "client configuration request refused",
            Self::Authorize => "authorization request refused",
            Self::Consent => "consent submission refused",
            Self::Token => "token endpoint request refused",
            Self::Request => "request answered 4xx",
        }
    }

    /// Whether its full lines are audit events (then so is its summary).
    fn is_audit(self) -> bool {
        matches!(self, Self::RegistrationRateLimited | Self::LoginRateLimited)
    }
}

/// One kind's interval so far.
#[derive(Default)]
struct Window {
    full: u32,
    logged: HashSet<Option<IpAddr>>,
    suppressed: u64,
    by_source: HashMap<IpAddr, u64>,
    /// Suppressed from sources beyond `TRACKED_SOURCES`, or with no address.
    other: u64,
}

fn windows() -> &'static Mutex<HashMap<Refusal, Window>> {
    static WINDOWS: OnceLock<Mutex<HashMap<Refusal, Window>>> = OnceLock::new();
    WINDOWS.get_or_init(Mutex::default)
}

/// Whether this refusal from `source` is written in full; if not, it is counted for the next
/// summary.
pub(crate) fn admit(kind: Refusal, source: Option<IpAddr>) -> bool {
    // Counted as the rate limits count: an IPv6 /64 is one source, so that one subscriber's
    // addresses cannot take every full line or fill the table.
    let source = source.map(crate::net::client_address::rate_limit_key);
    let mut windows = windows().lock().unwrap_or_else(|p| p.into_inner());
    let w = windows.entry(kind).or_default();
    if w.full < FULL_PER_INTERVAL && !w.logged.contains(&source) {
        w.full += 1;
        w.logged.insert(source);
        return true;
    }
    w.suppressed += 1;
    match source {
        Some(ip) if w.by_source.len() < TRACKED_SOURCES || w.by_source.contains_key(&ip) => {
            *w.by_source.entry(ip).or_default() += 1;
        }
        _ => w.other += 1,
    }
    false
}

/// `admit`, except that a refusal the server caused (`server_error`,
/// `temporarily_unavailable`) is always written: the operator must see every one of those.
pub(crate) fn admit_refusal(
    kind: Refusal,
    e: &crate::oauth::OAuthError,
    source: Option<IpAddr>,
) -> bool {
    use crate::oauth::ErrorCode;
    matches!(
        e.code,
        ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable
    ) || admit(kind, source)
}

/// Writes one summary line per kind that counted refusals since the last call, and starts
/// every budget over.
pub(crate) fn report() {
    let taken = std::mem::take(&mut *windows().lock().unwrap_or_else(|p| p.into_inner()));
    for (kind, w) in taken {
        if w.suppressed == 0 {
            continue;
        }
        let mut top: Vec<(IpAddr, u64)> = w.by_source.iter().map(|(ip, n)| (*ip, *n)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let top = top
            .iter()
            .take(TOP)
            .map(|(ip, n)| format!("{} ×{n}", crate::net::client_address::describe(Some(*ip))))
            .collect::<Vec<_>>()
            .join(", ");
        let sources = w.by_source.len();
        let message = format!(
            "{} more like this in the last {} s",
            w.suppressed,
            INTERVAL.as_secs()
        );
        if kind.is_audit() {
            tracing::warn!(target: "audit", event = "refusals_aggregated", kind = kind.name(), suppressed = w.suppressed,
                sources, from_other_sources = w.other, top = %top, "{message}");
        } else {
            tracing::info!(kind = kind.name(), suppressed = w.suppressed, sources, from_other_sources = w.other,
                top = %top, "{message}");
        }
    }
}

/// Writes the summaries every `INTERVAL` (a task of the server).
pub(crate) async fn report_forever() {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        report();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_gets_a_bounded_number_of_full_lines_and_is_counted() {
        // Its own kind, so that other tests' refusals do not share the budget.
        let kind = Refusal::ClientConfiguration;
        let ip = |n: u32| Some(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n)));
        let admitted = (0..10_000).filter(|n| admit(kind, ip(n % 5000))).count();
        assert_eq!(admitted, FULL_PER_INTERVAL as usize);
        let windows = windows().lock().unwrap();
        let w = &windows[&kind];
        assert_eq!(w.suppressed, 10_000 - u64::from(FULL_PER_INTERVAL));
        assert_eq!(w.by_source.len(), TRACKED_SOURCES, "the table is bounded");
        assert_eq!(
            w.by_source.values().sum::<u64>() + w.other,
            w.suppressed,
            "every refusal counted"
        );
    }
}
