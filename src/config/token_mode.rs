//! What a client receives as its access token for one resource: the IdP's own token
//! (`passthrough`, the default) or a JWT the shim signs for that resource alone (`minted`,
//! RFC 9068), with the settings only minted tokens have.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenMode {
    #[default]
    Passthrough,
    Minted,
}

impl TokenMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::Minted => "minted",
        }
    }
}

/// What a tenant signs its minted tokens with (`token_signing_alg`): ES256 unless a resource
/// server can only verify RSA signatures.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum TokenSigningAlg {
    #[default]
    ES256,
    RS256,
}

impl TokenSigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

/// A minted token's lifetime when the resource names none.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(600);
/// The longest lifetime a minted token may have: signing keys stay published this long after
/// they stop signing.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
pub(crate) const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// Claims the shim sets itself, which a copied claim may not replace (RFC 9068 §2.2, RFC 7519
/// §4.1, RFC 8693 §4).
pub(crate) const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "auth_time",
    "sid",
    "cnf",
    "act",
    "may_act",
    "typ",
];
