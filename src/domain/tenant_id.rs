//! `TenantId`: the path segment that names a tenant, checked once where it enters.

use std::fmt;

/// Paths at the top level of the server that no tenant may take.
pub(crate) const RESERVED_TENANT_IDS: &[&str] = &[
    "healthz",
    "readyz",
    "metrics",
    "admin",
    "api",
    "static",
    "assets",
    "dev",
    "health",
    "ready",
    "login",
    "logout",
    "oauth",
    "oauth2",
    "register",
    "authorize",
    "token",
    "revoke",
    "callback",
    "consent",
    "jwks",
];

/// Longest tenant id accepted; it appears in every issuer URL and store key.
pub(crate) const MAX_TENANT_ID_LEN: usize = 63;

/// A tenant id: lowercase ASCII letters, digits and dashes, starting with a letter or digit,
/// not a reserved path. It is the first path segment of the tenant's issuer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

/// Why a string is not a tenant id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TenantIdError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_TENANT_ID_LEN} characters")]
    TooLong,
    #[error(
        "may contain only lowercase letters, digits and dashes, and must not start or end with a dash"
    )]
    BadCharacters,
    #[error("is a reserved path of the server; choose another name")]
    Reserved,
}

impl TenantId {
    pub(crate) fn parse(value: &str) -> Result<Self, TenantIdError> {
        if value.is_empty() {
            return Err(TenantIdError::Empty);
        }
        if value.len() > MAX_TENANT_ID_LEN {
            return Err(TenantIdError::TooLong);
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if !value.chars().all(allowed) || value.starts_with('-') || value.ends_with('-') {
            return Err(TenantIdError::BadCharacters);
        }
        if RESERVED_TENANT_IDS.contains(&value) {
            return Err(TenantIdError::Reserved);
        }
        Ok(Self(value.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses() {
        let cases: &[(&str, Option<TenantIdError>)] = &[
            ("contoso", None),
            ("team-a1", None),
            ("9lives", None),
            ("", Some(TenantIdError::Empty)),
            ("Contoso", Some(TenantIdError::BadCharacters)),
            ("con_toso", Some(TenantIdError::BadCharacters)),
            ("con.toso", Some(TenantIdError::BadCharacters)),
            ("-a", Some(TenantIdError::BadCharacters)),
            ("a-", Some(TenantIdError::BadCharacters)),
            ("..", Some(TenantIdError::BadCharacters)),
            ("healthz", Some(TenantIdError::Reserved)),
            (&"a".repeat(64), Some(TenantIdError::TooLong)),
        ];
        for (input, expected) in cases {
            assert_eq!(TenantId::parse(input).err(), *expected, "{input}");
        }
    }
}
