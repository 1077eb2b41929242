//! Sealing (DESIGN.md "Sealing"): the shim stores only a hash of every code, transaction id
//! and refresh token it hands out, and encrypts what sits behind one (the IdP's tokens) with a
//! key derived from the handed-out value itself and the server's sealing key (HKDF-SHA256 →
//! XChaCha20-Poly1305). A stolen database alone opens nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::keys::ServerKeys;

/// The store id of a handed-out value: hex SHA-256.
pub fn handle_hash(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two strings.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[derive(Debug, thiserror::Error)]
#[error("sealed data could not be opened")]
pub struct UnsealError;

/// Seals and opens data under keys derived from handed-out values.
pub struct Sealer {
    server_key: [u8; 32],
    previous_key: Option<[u8; 32]>,
}

const PURPOSE: &str = "seal v1";

impl Sealer {
    pub fn new(keys: &ServerKeys) -> Self {
        Self {
            server_key: *keys.derive(PURPOSE).expose(),
            previous_key: keys.derive_previous(PURPOSE).map(|k| *k.expose()),
        }
    }

    fn cipher(server_key: &[u8; 32], handed_out: &str) -> XChaCha20Poly1305 {
        let hk = Hkdf::<Sha256>::new(Some(server_key), handed_out.as_bytes());
        let mut key = [0u8; 32];
        let _ = hk.expand(b"dcr-shim sealed record", &mut key);
        XChaCha20Poly1305::new(&key.into())
    }

    /// `base64url(nonce || ciphertext)`.
    pub fn seal(&self, handed_out: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = Self::cipher(&self.server_key, handed_out);
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let ct = cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        URL_SAFE_NO_PAD.encode(out)
    }

    pub fn unseal(&self, handed_out: &str, sealed: &str) -> Result<Vec<u8>, UnsealError> {
        let raw = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| UnsealError)?;
        if raw.len() < 24 {
            return Err(UnsealError);
        }
        let (nonce, ct) = raw.split_at(24);
        let keys = std::iter::once(&self.server_key).chain(self.previous_key.as_ref());
        for key in keys {
            if let Ok(pt) = Self::cipher(key, handed_out).decrypt(XNonce::from_slice(nonce), ct) {
                return Ok(pt);
            }
        }
        Err(UnsealError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_handed_out_value_opens_it() {
        let keys = ServerKeys::from_bytes([7; 32], None);
        let s = Sealer::new(&keys);
        let sealed = s.seal("token-a", b"upstream refresh token");
        assert_eq!(
            s.unseal("token-a", &sealed).unwrap(),
            b"upstream refresh token"
        );
        assert!(s.unseal("token-b", &sealed).is_err());
        let other_server = Sealer::new(&ServerKeys::from_bytes([8; 32], None));
        assert!(other_server.unseal("token-a", &sealed).is_err());
        let rotated = Sealer::new(&ServerKeys::from_bytes([8; 32], Some([7; 32])));
        assert!(
            rotated.unseal("token-a", &sealed).is_ok(),
            "previous key still opens"
        );
    }
}
