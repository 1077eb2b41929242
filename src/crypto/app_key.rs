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
    /// When the certificate stops being valid (Unix seconds): Entra refuses its assertions
    /// from then on (AADSTS700027).
    pub(crate) not_after: u64,
}

/// How long before its end a certificate is said to be ending (`check`, the start-up's log).
pub const CERTIFICATE_WARNING_SECONDS: u64 = 30 * 86_400;

/// How near a certificate's end is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateDeadline {
    /// At or before now: the IdP refuses its assertions (Entra: AADSTS700027).
    Ended,
    /// Within `CERTIFICATE_WARNING_SECONDS`; whole days left.
    Near {
        days: u64,
    },
    Later,
}

impl CertificateDeadline {
    pub fn of(not_after: u64, now: u64) -> Self {
        match not_after.checked_sub(now) {
            None | Some(0) => Self::Ended,
            Some(left) if left <= CERTIFICATE_WARNING_SECONDS => Self::Near {
                days: left / 86_400,
            },
            Some(_) => Self::Later,
        }
    }
}

/// The end of a DER certificate's validity (Unix seconds) and its public key (SPKI, DER).
fn certificate_facts(der: &[u8]) -> Result<(u64, Vec<u8>), String> {
    use x509_cert::der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
    let not_after = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    Ok((not_after, spki))
}

/// The public key (SPKI, DER) of an RSA private key in PEM (PKCS#8 or PKCS#1).
fn public_key_of(key_pem: &str) -> Option<Vec<u8>> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(key_pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(key_pem))
        .ok()?;
    let der = rsa::RsaPublicKey::from(&key).to_public_key_der().ok()?;
    Some(der.as_bytes().to_vec())
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
        let (not_after, cert_public_key) = certificate_facts(cert.contents()).map_err(|e| {
            format!(
                "{} is not an X.509 certificate: {e}",
                certificate_file.display()
            )
        })?;
        // A key that is not the certificate's signs assertions Entra refuses (AADSTS700027)
        // at every login: said here, where the two files are named.
        let key_public_key = String::from_utf8(key_pem)
            .ok()
            .and_then(|pem| public_key_of(&pem))
            .ok_or_else(|| {
                format!(
                    "{} is not an RSA private key in PEM (PKCS#8 or PKCS#1) whose public key can be read",
                    key_file.display()
                )
            })?;
        if key_public_key != cert_public_key {
            return Err(format!(
                "the private key {} does not belong to the certificate {} (their public keys differ): give the key the certificate was made from, or the certificate of this key",
                key_file.display(),
                certificate_file.display()
            ));
        }
        let x5t_s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(cert.contents()));
        let x5t_sha1 = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(cert.contents()));
        Ok(Self {
            key,
            x5t_s256,
            x5t_sha1,
            not_after,
        })
    }
}
