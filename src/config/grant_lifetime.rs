//! How long a grant (a login and its refresh tokens) lasts: an absolute lifetime from the login
//! and an idle lifetime, each refresh moving the idle end but never past the absolute one. Per
//! tenant (`[grants]`) and per resource (`grant_lifetime`, `grant_idle_lifetime`). Without an
//! absolute end a refresh would keep a login alive for ever where the IdP is not asked again
//! (`refresh_upstream = false`), whatever the company's sign-in policy says.

use std::time::Duration;

use serde::Deserialize;

/// Default absolute lifetime of a grant: 90 days from the login.
pub const DEFAULT_GRANT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// Default idle lifetime: 30 days without a refresh.
pub const DEFAULT_GRANT_IDLE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest either may be.
const LONGEST: Duration = Duration::from_secs(400 * 24 * 3600);

/// A tenant's `[grants]`, or a resource's lifetimes with the tenant's as defaults.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GrantLifetimes {
    /// From the login: after this the client must sign in again, however often it refreshed.
    #[serde(with = "humantime_serde")]
    pub lifetime: Duration,
    /// Without a refresh for this long, the grant ends.
    #[serde(with = "humantime_serde")]
    pub idle_lifetime: Duration,
}

impl Default for GrantLifetimes {
    fn default() -> Self {
        Self {
            lifetime: DEFAULT_GRANT_LIFETIME,
            idle_lifetime: DEFAULT_GRANT_IDLE_LIFETIME,
        }
    }
}

impl GrantLifetimes {
    /// These lifetimes with a resource's own where it sets them.
    pub(crate) fn overridden(self, lifetime: Option<Duration>, idle: Option<Duration>) -> Self {
        Self {
            lifetime: lifetime.unwrap_or(self.lifetime),
            idle_lifetime: idle.unwrap_or(self.idle_lifetime),
        }
    }

    /// Until when a grant from a login at `login_at` lives after a use at `now`; `None` once its
    /// absolute lifetime is over.
    pub(crate) fn ends_at(&self, login_at: u64, now: u64) -> Option<u64> {
        let absolute = login_at.saturating_add(self.lifetime.as_secs());
        (now < absolute).then(|| {
            now.saturating_add(self.idle_lifetime.as_secs())
                .min(absolute)
        })
    }

    /// What is wrong with them, as (field, message).
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (field, d) in [
            ("lifetime", self.lifetime),
            ("idle_lifetime", self.idle_lifetime),
        ] {
            if d.is_zero() || d > LONGEST {
                out.push((
                    field,
                    "must be longer than zero and at most 400 days".to_owned(),
                ));
            }
        }
        if self.idle_lifetime > self.lifetime {
            out.push((
                "idle_lifetime",
                format!(
                    "is longer than the lifetime ({}), which ends every grant first; shorten it",
                    humantime::format_duration(self.lifetime)
                ),
            ));
        }
        out
    }

    /// One line for `check`.
    pub fn summary(&self) -> String {
        format!(
            "grants end {} after the login, or after {} without a refresh",
            readable(self.lifetime),
            readable(self.idle_lifetime)
        )
    }
}

/// Whole days as days (humantime would write 90 days as months and hours), anything else as
/// humantime does.
pub(crate) fn readable(d: Duration) -> String {
    const DAY: u64 = 24 * 3600;
    match d.as_secs() {
        s if s >= DAY && s % DAY == 0 && d.subsec_nanos() == 0 => format!("{} days", s / DAY),
        _ => humantime::format_duration(d).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_moves_the_idle_end_but_never_past_the_absolute_one() {
        let l = GrantLifetimes {
            lifetime: Duration::from_secs(100),
            idle_lifetime: Duration::from_secs(30),
        };
        assert_eq!(l.ends_at(1000, 1000), Some(1030));
        assert_eq!(
            l.ends_at(1000, 1080),
            Some(1100),
            "capped by the absolute end"
        );
        assert_eq!(l.ends_at(1000, 1100), None, "over");
        assert!(l.problems().is_empty());
        let wrong = GrantLifetimes {
            lifetime: Duration::from_secs(10),
            idle_lifetime: Duration::from_secs(30),
        };
        assert_eq!(wrong.problems()[0].0, "idle_lifetime");
    }
}
