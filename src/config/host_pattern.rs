//! `HostPattern`: a host name, `*.suffix` for its subdomains, or `*` for any host.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    Any,
    Exact(String),
    /// Matches strict subdomains of the suffix (not the suffix itself).
    Subdomains(String),
}

impl HostPattern {
    pub(crate) fn parse(raw: &str) -> Result<Self, String> {
        if raw == "*" {
            return Ok(Self::Any);
        }
        let (wildcard, name) = match raw.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            return Err(format!(
                "'{raw}' is not a host name pattern; use 'example.com', '*.example.com' or '*'"
            ));
        }
        if name.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("'{raw}' must be written in lowercase"));
        }
        Ok(if wildcard {
            Self::Subdomains(name.to_owned())
        } else {
            Self::Exact(name.to_owned())
        })
    }

    /// `host` must already be lowercase (as `url::Url` gives it).
    pub(crate) fn matches(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(name) => host == name,
            Self::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Exact(n) => f.write_str(n),
            Self::Subdomains(s) => write!(f, "*.{s}"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let sub = HostPattern::parse("*.example.com").unwrap();
        assert!(sub.matches("a.example.com"));
        assert!(sub.matches("a.b.example.com"));
        assert!(!sub.matches("example.com"));
        assert!(!sub.matches("evilexample.com"));
        let exact = HostPattern::parse("claude.ai").unwrap();
        assert!(exact.matches("claude.ai"));
        assert!(!exact.matches("x.claude.ai"));
        assert!(HostPattern::parse("*").unwrap().matches("anything"));
        for bad in [
            "",
            "*.",
            "a..b",
            "Example.com",
            "a.com:443",
            "-a.com",
            "*.*.a.com",
            "a/b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
