//! The key and certificate an app authenticates with at the IdP (`private_key_jwt`, RFC 7523):
//! an RSA private key and the certificate uploaded to the app registration, whose SHA-256
//! thumbprint goes in the assertion's `x5t#S256` header (and its SHA-1 thumbprint in `x5t`,
//! which Microsoft's documentation gives for RS256 assertions).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use sha2::{Digest, Sha256};

/// A parsed app key with its certificate's thumbprint.
pub(crate) struct AppSigningKey {
    pub(crate) key: EncodingKey,
    /// base64url SHA-256 of the certificate's DER.
    pub(crate) x5t_s256: String,
    /// base64url SHA-1 of the certificate's DER (RFC 7515 §4.1.7).
    pub(crate) x5t_sha1: String,
}

impl AppSigningKey {
    /// Reads and parses both files; the error says which file is wrong and how.
    pub(crate) fn load(key_file: &Path, certificate_file: &Path) -> Result<Self, String> {
        let key_pem = std::fs::read(key_file)
            .map_err(|e| format!("cannot read {}: {e}", key_file.display()))?;
        let key = EncodingKey::from_rsa_pem(&key_pem).map_err(|e| {
            format!(
                "{} is not an RSA private key in PEM: {e}",
                key_file.display()
            )
        })?;
        let cert_pem = std::fs::read(certificate_file)
            .map_err(|e| format!("cannot read {}: {e}", certificate_file.display()))?;
        let cert = pem::parse(&cert_pem).map_err(|e| {
            format!(
                "{} is not a PEM certificate: {e}",
                certificate_file.display()
            )
        })?;
        if cert.tag() != "CERTIFICATE" {
            return Err(format!(
                "{} holds a {} where a CERTIFICATE was expected",
                certificate_file.display(),
                cert.tag()
            ));
        }
        let x5t_s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(cert.contents()));
        let x5t_sha1 = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(cert.contents()));
        Ok(Self {
            key,
            x5t_s256,
            x5t_sha1,
        })
    }
}
