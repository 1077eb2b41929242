//! Cryptography the shim does itself, apart from any protocol: random handles, hashing and
//! constant-time comparison, sealing (records behind handed-out values), signing (values given
//! to the browser), PKCE, and the server secret the keys derive from.

pub mod app_key;
pub(crate) mod handle;
pub(crate) mod jwt;
pub(crate) mod keys;
pub mod pkce;
pub(crate) mod private_file;
pub(crate) mod sealing;
pub(crate) mod signing;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use handle::{Handle, HandleKey};
pub(crate) use keys::{KeyError, ServerKeys};
pub(crate) use sealing::Sealer;
pub(crate) use signing::Signer;

/// A random 256-bit value (PKCE verifiers, nonces; handed-out values are `Handle`s), base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256 of a string, for digests of values that are not secret (cookie names, key
/// ids). A handed-out secret is hashed by `Handle::key`, which uses this.
pub(crate) fn sha256_hex(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two strings (the time taken does not depend on where they differ).
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}
