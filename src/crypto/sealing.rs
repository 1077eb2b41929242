//! Sealing: the shim stores only a hash of every code, transaction id
//! and refresh token it hands out, and encrypts what sits behind one (the IdP's tokens) with a
//! key derived from the handed-out value itself and the server's sealing key (HKDF-SHA256 →
//! XChaCha20-Poly1305). A stolen database alone opens nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

use super::handle::Handle;
use super::keys::ServerKeys;

#[derive(Debug, thiserror::Error)]
#[error("sealed data could not be opened")]
pub(crate) struct UnsealError;

/// Seals and opens data under keys derived from handed-out values.
pub(crate) struct Sealer {
    server_key: [u8; 32],
    previous_key: Option<[u8; 32]>,
}

const PURPOSE: &str = "seal v1";

impl Sealer {
    pub(crate) fn new(keys: &ServerKeys) -> Self {
        Self {
            server_key: *keys.derive(PURPOSE).expose(),
            previous_key: keys.derive_previous(PURPOSE).map(|k| *k.expose()),
        }
    }

    fn cipher(server_key: &[u8; 32], handed_out: &[u8]) -> XChaCha20Poly1305 {
        let hk = Hkdf::<Sha256>::new(Some(server_key), handed_out);
        let mut key = [0u8; 32];
        let _ = hk.expand(b"dcr-shim sealed record", &mut key);
        XChaCha20Poly1305::new(&key.into())
    }

    /// `base64url(nonce || ciphertext)`.
    pub(crate) fn seal(&self, handed_out: &Handle, plaintext: &[u8]) -> String {
        self.seal_under(handed_out.expose().as_bytes(), plaintext)
    }

    pub(crate) fn unseal(&self, handed_out: &Handle, sealed: &str) -> Result<Vec<u8>, UnsealError> {
        self.unseal_under(handed_out.expose().as_bytes(), sealed)
    }

    /// Seals what the server alone must open (a signing key), under a key derived from the
    /// server's secret and `label` (`"server-held "` is prefixed, so that no handed-out value
    /// derives the same key).
    pub(crate) fn seal_server_held(&self, label: &str, plaintext: &[u8]) -> String {
        self.seal_under(format!("server-held {label}").as_bytes(), plaintext)
    }

    pub(crate) fn unseal_server_held(
        &self,
        label: &str,
        sealed: &str,
    ) -> Result<Vec<u8>, UnsealError> {
        self.unseal_under(format!("server-held {label}").as_bytes(), sealed)
    }

    fn seal_under(&self, handed_out: &[u8], plaintext: &[u8]) -> String {
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

    fn unseal_under(&self, handed_out: &[u8], sealed: &str) -> Result<Vec<u8>, UnsealError> {
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
        let (a, b) = (Handle::presented("token-a"), Handle::presented("token-b"));
        let sealed = s.seal(&a, b"upstream refresh token");
        assert_eq!(s.unseal(&a, &sealed).unwrap(), b"upstream refresh token");
        assert!(s.unseal(&b, &sealed).is_err());
        let other_server = Sealer::new(&ServerKeys::from_bytes([8; 32], None));
        assert!(other_server.unseal(&a, &sealed).is_err());
        let rotated = Sealer::new(&ServerKeys::from_bytes([8; 32], Some([7; 32])));
        assert!(
            rotated.unseal(&a, &sealed).is_ok(),
            "previous key still opens"
        );
    }
}
