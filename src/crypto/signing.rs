//! HMAC-SHA256 signed values for the browser: consent tickets and approval cookies.
//! `base64url(payload) "." base64url(mac)`, the MAC over a purpose tag and the payload;
//! verification accepts the current key, then the previous one during rotation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::keys::ServerKeys;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub(crate) struct Signer {
    current: [u8; 32],
    previous: Option<[u8; 32]>,
}

const PURPOSE: &str = "browser signing v1";

impl Signer {
    pub(crate) fn new(keys: &ServerKeys) -> Self {
        Self {
            current: *keys.derive(PURPOSE).expose(),
            previous: keys.derive_previous(PURPOSE).map(|k| *k.expose()),
        }
    }

    fn mac(key: &[u8; 32], purpose: &str, payload: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length.
        let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(payload);
        mac
    }

    pub(crate) fn sign(&self, purpose: &str, payload: &[u8]) -> String {
        let tag = Self::mac(&self.current, purpose, payload)
            .finalize()
            .into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// A short keyed digest of `value` (96 bits of HMAC under the current key): stands for a
    /// value inside a signed payload without the value's length, and unlike a plain hash it
    /// cannot be matched by values searched offline. Digests made before a key rotation no
    /// longer match.
    pub(crate) fn digest(&self, purpose: &str, value: &str) -> String {
        let tag = Self::mac(&self.current, purpose, value.as_bytes())
            .finalize()
            .into_bytes();
        URL_SAFE_NO_PAD.encode(&tag[..12])
    }

    /// The payload, if the signature is good (checked in constant time).
    pub(crate) fn verify(&self, purpose: &str, signed: &str) -> Option<Vec<u8>> {
        let (payload, tag) = signed.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let keys = std::iter::once(&self.current).chain(self.previous.as_ref());
        for key in keys {
            if Self::mac(key, purpose, &payload).verify_slice(&tag).is_ok() {
                return Some(payload);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_purpose_and_payload() {
        let s = Signer::new(&ServerKeys::from_bytes([1; 32], None));
        let t = s.sign("a", b"hello");
        assert_eq!(s.verify("a", &t).unwrap(), b"hello");
        assert!(s.verify("b", &t).is_none());
        let forged = t.replacen('.', "x.", 1);
        assert!(s.verify("a", &forged).is_none());
        let rotated = Signer::new(&ServerKeys::from_bytes([2; 32], Some([1; 32])));
        assert!(rotated.verify("a", &t).is_some());
    }
}
