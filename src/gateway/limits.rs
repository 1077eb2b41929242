//! Per-user and per-client call rate limits of gateway resources
//! (`calls_per_minute_per_user`, `calls_per_minute_per_client`): a keyed limiter per resource
//! and kind, kept while its quota is unchanged (a reload that leaves it keeps what callers have
//! spent), replaced when the quota changes. Each replica counts its own calls.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::gateway::GatewayConfig;

/// A limit reached: which, and when the caller may call again.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Limited {
    /// `gateway_user` or `gateway_client` (the `limit` label of the rate-limit metric).
    pub(crate) limit: &'static str,
    pub(crate) retry_after_seconds: u64,
}

struct Keyed {
    per_minute: u32,
    limiter: DefaultKeyedRateLimiter<String>,
}

/// The limiters of every gateway resource, by resource URI and kind.
#[derive(Default)]
pub(crate) struct CallLimits {
    limiters: Mutex<HashMap<(String, &'static str), Arc<Keyed>>>,
}

impl CallLimits {
    /// Counts a call to `resource` by `user` through `client`, or says which limit it passes.
    pub(crate) fn check(
        &self,
        resource: &str,
        gateway: &GatewayConfig,
        user: &str,
        client: &str,
    ) -> Result<(), Limited> {
        for (limit, per_minute, key) in [
            ("gateway_user", gateway.calls_per_minute_per_user, user),
            (
                "gateway_client",
                gateway.calls_per_minute_per_client,
                client,
            ),
        ] {
            let Some(per_minute) = per_minute else {
                continue;
            };
            let keyed = self.limiter(resource, limit, per_minute);
            if let Err(not_until) = keyed.limiter.check_key(&key.to_owned()) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(Limited {
                    limit,
                    retry_after_seconds: wait.as_secs().max(1),
                });
            }
        }
        Ok(())
    }

    /// The limiter of `resource` and `limit` at `per_minute`, made or replaced as needed.
    fn limiter(&self, resource: &str, limit: &'static str, per_minute: NonZeroU32) -> Arc<Keyed> {
        let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        let key = (resource.to_owned(), limit);
        match limiters.get(&key) {
            Some(keyed) if keyed.per_minute == per_minute.get() => keyed.clone(),
            _ => {
                let keyed = Arc::new(Keyed {
                    per_minute: per_minute.get(),
                    limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
                });
                limiters.insert(key, keyed.clone());
                keyed
            }
        }
    }

    /// Forgets the budgets of quiet callers (the sweeper calls this).
    pub(crate) fn forget_idle(&self) {
        let limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        for keyed in limiters.values() {
            keyed.limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_and_each_client_has_a_budget_of_its_own() {
        let gateway: GatewayConfig = toml::from_str(
            "backend = \"http://mcp.internal/mcp\"\ncalls_per_minute_per_user = 2\ncalls_per_minute_per_client = 3",
        )
        .unwrap();
        let limits = CallLimits::default();
        let r = "https://files.example.com/mcp";
        assert_eq!(limits.check(r, &gateway, "ada", "c1"), Ok(()));
        assert_eq!(limits.check(r, &gateway, "ada", "c1"), Ok(()));
        let limited = limits.check(r, &gateway, "ada", "c1").unwrap_err();
        assert_eq!(limited.limit, "gateway_user");
        assert!(limited.retry_after_seconds >= 1);
        assert_eq!(
            limits.check(r, &gateway, "bob", "c1"),
            Ok(()),
            "bob's own budget"
        );
        let limited = limits.check(r, &gateway, "eve", "c1").unwrap_err();
        assert_eq!(limited.limit, "gateway_client", "the client's third call");
        assert_eq!(
            limits.check("https://other/mcp", &gateway, "ada", "c1"),
            Ok(()),
            "another resource"
        );
        let unlimited: GatewayConfig =
            toml::from_str("backend = \"http://mcp.internal/mcp\"").unwrap();
        for _ in 0..10 {
            assert_eq!(limits.check(r, &unlimited, "ada", "c1"), Ok(()));
        }
    }
}
