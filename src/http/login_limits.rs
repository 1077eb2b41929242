//! How many logins may start (each one a ten-minute transaction in the store): per source
//! address (an IPv4 address or an IPv6 /64), per IPv6 /48 (ten times that: one customer of a
//! provider gets a /48 and with it 65,536 /64s), and per browser. A consent form can be posted
//! only once, but a fresh form costs one GET, so without these a single machine could store
//! thousands of transactions a second. Refusals are counted
//! (`dcr_shim_rate_limited_total{limit="login_…"}`) and answered with a page that says why.
//!
//! There is no server-wide ceiling: a handful of addresses could spend it and lock every user
//! out. What a flood can store is bounded by the addresses it comes from, and
//! `dcr_shim_logins_total{outcome="started"}` shows it.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub use crate::config::server::DEFAULT_LOGIN_STARTS_PER_MINUTE as DEFAULT_PER_SOURCE_PER_MINUTE;

/// Which limit refused a login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoginLimit {
    Source,
    /// The IPv6 /48 of the source.
    Network,
    Browser,
}

impl LoginLimit {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Source => "login_address",
            Self::Network => "login_network",
            Self::Browser => "login_browser",
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
            Self::Network => {
                "Too many sign-ins were started from your network in the last minute. Wait a minute and try again."
            }
        }
    }
}

pub(crate) struct LoginLimits {
    sources: DefaultKeyedRateLimiter<IpAddr>,
    networks: DefaultKeyedRateLimiter<IpAddr>,
    browsers: DefaultKeyedRateLimiter<u64>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl LoginLimits {
    /// The limits for `per_source` logins per address and minute.
    pub(crate) fn new(per_source: u32) -> Self {
        Self {
            sources: RateLimiter::keyed(per_minute(per_source)),
            networks: RateLimiter::keyed(per_minute(per_source.saturating_mul(10))),
            browsers: RateLimiter::keyed(per_minute((per_source / 10).max(1))),
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
            let key = crate::net::client_address::rate_limit_key(source);
            if self.sources.check_key(&key).is_err() {
                return Err(LoginLimit::Source);
            }
            if let IpAddr::V6(v6) = key {
                let network = IpAddr::V6((u128::from(v6) & (u128::MAX << 80)).into());
                if self.networks.check_key(&network).is_err() {
                    return Err(LoginLimit::Network);
                }
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
        Ok(())
    }

    /// Forgets the buckets of quiet sources and browsers (the sweeper calls this).
    pub(crate) fn forget_idle(&self) {
        self.sources.retain_recent();
        self.networks.retain_recent();
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
        // An IPv6 /48 spread over its /64s.
        let mut refused = None;
        for n in 0..2000u128 {
            let ip = IpAddr::V6(((0x2001_0db8_0001_u128 << 80) | (n << 64)).into());
            if let Err(l) = limits.check(Some(ip), None) {
                refused = Some(l);
                break;
            }
        }
        assert_eq!(refused, Some(LoginLimit::Network));
    }
}
