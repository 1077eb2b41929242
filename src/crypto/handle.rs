//! `Handle`: a secret value the shim hands out and must recognise later (transaction id,
//! authorization code, refresh token, client secret, browser binding and CSRF cookies), and
//! `HandleKey`, the only form of it that is ever stored or compared.
//!
//! The rule "a record's key is the hash of a handed-out value" lives here, in one function
//! (`Handle::key`): a stolen store holds no usable handle, and a record cannot be looked up by
//! anything but the value that was handed out.

use std::fmt;

use super::{ct_eq, random_token, sha256_hex};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// A handed-out secret. `Debug` prints `[redacted]`; there is no `Display`, so it cannot slip
/// into a log line by accident; `expose` is the one way to the text; the memory is wiped when
/// it is dropped. It has no `PartialEq`: `HandleKey::matches` is the one comparison, in constant
/// time.
pub struct Handle(SecretString);

impl Handle {
    /// A new random handle of 256 bits (43 characters of base64url).
    pub(crate) fn generate() -> Self {
        Self(SecretString::from(random_token()))
    }

    /// A value a client presented (a code, a refresh token, a cookie): not yet known to be one
    /// of ours; looking up its `key` tells.
    pub fn presented(value: &str) -> Self {
        Self(SecretString::from(value))
    }

    /// The text to hand out.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Hex SHA-256 of the handle: its store key, and what is kept in place of the handle.
    pub(crate) fn key(&self) -> HandleKey {
        HandleKey(sha256_hex(self.expose()))
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handle([redacted])")
    }
}

/// The hex SHA-256 of a `Handle`: the key of the record behind it, or the stored stand-in for
/// a secret (a client secret, a browser binding). Not secret itself; compared in constant time
/// all the same, since it stands for one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HandleKey(String);

impl HandleKey {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// A key written by hand (a tenant file's `secret_sha256`), in the lowercase hex that
    /// `Handle::key` gives.
    pub(crate) fn from_hex(hex: &str) -> Self {
        Self(hex.to_ascii_lowercase())
    }

    /// Whether `handle` is the value this key was made from (constant time).
    pub fn matches(&self, handle: &Handle) -> bool {
        ct_eq(&handle.key().0, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_hex_sha256_and_debug_redacts() {
        let h = Handle::presented("abc");
        assert_eq!(
            h.key().as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(h.key().matches(&h));
        assert!(!h.key().matches(&Handle::presented("abd")));
        assert_eq!(format!("{h:?}"), "Handle([redacted])");
        assert_eq!(Handle::generate().expose().len(), 43);
    }
}
