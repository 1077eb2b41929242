//! How many logins may start (each one a ten-minute transaction in the store): per source
//! address, per browser and in all. A consent form can be posted only once, but a fresh form
//! costs one GET, so without these a single machine could store thousands of transactions a
//! second. Refusals are counted (`dcr_shim_rate_limited_total{limit="login_…"}`) and answered
//! with a page that says why.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Logins one source address (an IPv6 /64) may start per minute by default
/// (`--login-starts-per-minute`): generous, since a company's users may all come through one
/// NAT address. One browser (its CSRF cookie) may start a tenth of it, and the whole server 50
/// times it: with ten-minute transactions of about 1.3 KB, at most 300,000 (some 400 MB of
/// store) are ever in flight at the default, however many addresses a flood comes from.
pub const DEFAULT_PER_SOURCE_PER_MINUTE: u32 = 600;

/// Which limit refused a login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoginLimit {
    Source,
    Browser,
    Server,
}

impl LoginLimit {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Source => "login_address",
            Self::Browser => "login_browser",
            Self::Server => "login_server",
        }
    }

    /// What the user is told.
    pub(crate) fn explanation(self) -> &'static str {
        match self {
            Self::Source => {
                "Too many sign-ins were started from your network address in the last minute. Wait a minute and try again."
            }
            Self::Browser => {
                "Too many sign-ins were started from this browser in the last minute. Wait a minute and try again."
            }
            Self::Server => {
                "The server is starting too many sign-ins right now. Wait a minute and try again."
            }
        }
    }
}

pub(crate) struct LoginLimits {
    sources: DefaultKeyedRateLimiter<IpAddr>,
    browsers: DefaultKeyedRateLimiter<u64>,
    server: DefaultDirectRateLimiter,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl LoginLimits {
    /// The limits for `per_source` logins per address and minute.
    pub(crate) fn new(per_source: u32) -> Self {
        Self {
            sources: RateLimiter::keyed(per_minute(per_source)),
            browsers: RateLimiter::keyed(per_minute((per_source / 10).max(1))),
            server: RateLimiter::direct(per_minute(per_source.saturating_mul(50))),
        }
    }

    /// Spends one login start of `source` and `browser` (the CSRF cookie's value), or says
    /// which limit is reached.
    pub(crate) fn check(
        &self,
        source: Option<IpAddr>,
        browser: Option<&str>,
    ) -> Result<(), LoginLimit> {
        if let Some(source) = source {
            let key = crate::oauth::cimd::rate_limit_key(source);
            if self.sources.check_key(&key).is_err() {
                return Err(LoginLimit::Source);
            }
        }
        if let Some(browser) = browser {
            // Kept in memory only: a hash is enough to tell browsers apart.
            let mut h = std::collections::hash_map::DefaultHasher::new();
            browser.hash(&mut h);
            if self.browsers.check_key(&h.finish()).is_err() {
                return Err(LoginLimit::Browser);
            }
        }
        self.server.check().map_err(|_| LoginLimit::Server)
    }

    /// Forgets the buckets of quiet sources and browsers (the sweeper calls this).
    pub(crate) fn forget_idle(&self) {
        self.sources.retain_recent();
        self.browsers.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_refuses_past_its_quota() {
        let limits = LoginLimits::new(100);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(limits.check(Some(ip), Some("browser-a")), Ok(()));
        }
        assert_eq!(
            limits.check(Some(ip), Some("browser-a")),
            Err(LoginLimit::Browser)
        );
        let mut refused = None;
        for n in 0..100 {
            if let Err(l) = limits.check(Some(ip), Some(&format!("b{n}"))) {
                refused = Some(l);
                break;
            }
        }
        assert_eq!(
            refused,
            Some(LoginLimit::Source),
            "a fresh cookie per request does not help"
        );
    }
}
