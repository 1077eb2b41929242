//! PKCE (RFC 7636) with S256 only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::ct_eq;

/// `BASE64URL(SHA256(verifier))` (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A verifier is 43–128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
pub(crate) fn is_valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 challenge is 43 characters of base64url.
pub(crate) fn is_valid_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` answers `challenge`, compared in constant time.
pub(crate) fn verify(verifier: &str, challenge: &str) -> bool {
    is_valid_verifier(verifier) && ct_eq(&s256(verifier), challenge)
}

/// An S256 code challenge (RFC 7636 §4.2) that passed `is_valid_challenge` where it entered.
/// Serialized as the plain string.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct S256Challenge(String);

impl S256Challenge {
    /// The challenge of an authorization request, if it is well formed.
    pub(crate) fn parse(challenge: &str) -> Option<Self> {
        is_valid_challenge(challenge).then(|| Self(challenge.to_owned()))
    }

    /// The challenge of a verifier of our own (the upstream leg).
    pub(crate) fn of(verifier: &str) -> Self {
        Self(s256(verifier))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` answers this challenge (RFC 7636 §4.6), compared in constant time.
    pub(crate) fn is_answered_by(&self, verifier: &str) -> bool {
        verify(verifier, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(s256(v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verify(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verify(
            "short",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }
}
