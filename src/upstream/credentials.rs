//! How the shim authenticates as an app at the IdP's token endpoint: a client secret (basic or
//! post), `private_key_jwt` from a certificate and key (RFC 7523; header `x5t#S256`, and `x5t`
//! for RS256; PS256 or
//! RS256), a federated assertion read from a file on every use, an Azure managed identity's
//! token (`managed_identity.rs`), or none. Secrets are read when used, never logged.

use std::path::PathBuf;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};

use super::error::UpstreamError;
use super::managed_identity::ManagedIdentity;
use crate::config::tenant::{CredentialConfig, SecretMethod, SigningAlgorithm};
use crate::crypto::app_key::AppSigningKey;
use crate::crypto::private_file::{describe, read_private};

/// `client_assertion_type` for JWT client authentication (RFC 7523 §2.2).
pub(crate) const JWT_BEARER_ASSERTION: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A credential ready to use; keys are parsed once at startup.
pub(crate) enum LoadedCredential {
    SecretEnv { var: String, method: SecretMethod },
    SecretFile { path: PathBuf, method: SecretMethod },
    PrivateKeyJwt(AssertionKey),
    Federated { path: PathBuf },
    ManagedIdentity(ManagedIdentity),
    None,
}

/// What to add to a token request.
pub(crate) struct ClientAuth {
    pub(crate) form: Vec<(String, String)>,
    /// HTTP Basic user and password (RFC 6749 §2.3.1), already form-encoded.
    pub(crate) basic: Option<(String, SecretString)>,
}

/// An app's private key and certificate, for its `private_key_jwt` client assertions.
pub(crate) struct AssertionKey {
    key: EncodingKey,
    algorithm: Algorithm,
    x5t_s256: String,
    x5t_sha1: String,
    /// When the certificate ends (Unix seconds).
    not_after: u64,
}

impl LoadedCredential {
    /// When a `private_key_jwt` credential's certificate ends (Unix seconds).
    pub(crate) fn certificate_not_after(&self) -> Option<u64> {
        match self {
            Self::PrivateKeyJwt(k) => Some(k.not_after),
            _ => None,
        }
    }

    pub(crate) fn load(cfg: &CredentialConfig) -> Result<Self, String> {
        Ok(match cfg {
            CredentialConfig::ClientSecret {
                secret_env: Some(var),
                method,
                ..
            } => Self::SecretEnv {
                var: var.clone(),
                method: *method,
            },
            CredentialConfig::ClientSecret {
                secret_file: Some(path),
                method,
                ..
            } => Self::SecretFile {
                path: path.clone(),
                method: *method,
            },
            CredentialConfig::ClientSecret { .. } => {
                return Err("client_secret needs secret_env or secret_file".into());
            }
            CredentialConfig::PrivateKeyJwt {
                certificate_file,
                key_file,
                algorithm,
            } => {
                let AppSigningKey {
                    key,
                    x5t_s256,
                    x5t_sha1,
                    not_after,
                } = AppSigningKey::load(key_file, certificate_file)?;
                let algorithm = match algorithm {
                    SigningAlgorithm::PS256 => Algorithm::PS256,
                    SigningAlgorithm::RS256 => Algorithm::RS256,
                };
                Self::PrivateKeyJwt(AssertionKey {
                    key,
                    algorithm,
                    x5t_s256,
                    x5t_sha1,
                    not_after,
                })
            }
            CredentialConfig::Federated { assertion_file } => Self::Federated {
                path: assertion_file.clone(),
            },
            CredentialConfig::ManagedIdentity {
                client_id,
                endpoint,
                audience,
            } => Self::ManagedIdentity(ManagedIdentity::load(
                client_id.as_deref(),
                endpoint.as_deref(),
                audience.as_deref(),
            )?),
            CredentialConfig::None => Self::None,
        })
    }

    /// Client authentication for one token request to `token_endpoint`.
    pub(crate) async fn authenticate(
        &self,
        client_id: &str,
        token_endpoint: &str,
        now: u64,
    ) -> Result<ClientAuth, UpstreamError> {
        Ok(match self {
            Self::SecretEnv { var, method } => {
                let value = std::env::var(var).map_err(|_| {
                    UpstreamError::Misconfigured(format!(
                        "the environment variable {var} with the app's client secret is not set"
                    ))
                })?;
                ClientAuth::secret(*method, client_id, value)
            }
            Self::SecretFile { path, method } => {
                let value = read_private(path).map_err(|e| {
                    UpstreamError::Misconfigured(describe("the client secret file", path, &e))
                })?;
                ClientAuth::secret(*method, client_id, value.trim().to_owned())
            }
            Self::PrivateKeyJwt(k) => {
                ClientAuth::assertion(client_id, k.sign(client_id, token_endpoint, now)?)
            }
            Self::Federated { path } => {
                let assertion = std::fs::read_to_string(path).map_err(|e| {
                    UpstreamError::Misconfigured(format!(
                        "cannot read the federated assertion file {}: {e}",
                        path.display()
                    ))
                })?;
                ClientAuth::assertion(client_id, assertion.trim().to_owned())
            }
            Self::ManagedIdentity(identity) => {
                ClientAuth::assertion(client_id, identity.assertion(now).await?)
            }
            Self::None => ClientAuth {
                form: vec![("client_id".into(), client_id.into())],
                basic: None,
            },
        })
    }
}

impl AssertionKey {
    /// A client assertion for `token_endpoint`, valid for five minutes (RFC 7523 §3).
    fn sign(
        &self,
        client_id: &str,
        token_endpoint: &str,
        now: u64,
    ) -> Result<String, UpstreamError> {
        let mut header = Header::new(self.algorithm);
        header.typ = Some("JWT".into());
        header.x5t_s256 = Some(self.x5t_s256.clone());
        // Microsoft documents the SHA-1 `x5t` for RS256 assertions; Entra refuses an RS256
        // assertion that has only `x5t#S256`.
        if self.algorithm == Algorithm::RS256 {
            header.x5t = Some(self.x5t_sha1.clone());
        }
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        });
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| {
            UpstreamError::Misconfigured(format!("cannot sign the client assertion: {e}"))
        })
    }
}

impl ClientAuth {
    /// A client secret, in the form or as HTTP Basic (RFC 6749 §2.3.1), whose user and
    /// password are form-encoded first.
    fn secret(method: SecretMethod, client_id: &str, secret: String) -> Self {
        match method {
            SecretMethod::Basic => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                Self {
                    form: Vec::new(),
                    basic: Some((enc(client_id), SecretString::from(enc(&secret)))),
                }
            }
            SecretMethod::Post => Self {
                form: vec![
                    ("client_id".into(), client_id.into()),
                    ("client_secret".into(), secret),
                ],
                basic: None,
            },
        }
    }

    /// The form fields of JWT client authentication (RFC 7523 §2.2).
    fn assertion(client_id: &str, assertion: String) -> Self {
        Self {
            form: vec![
                ("client_id".into(), client_id.into()),
                ("client_assertion_type".into(), JWT_BEARER_ASSERTION.into()),
                ("client_assertion".into(), assertion),
            ],
            basic: None,
        }
    }

    pub(crate) fn basic_header(&self) -> Option<String> {
        self.basic.as_ref().map(|(u, p)| {
            let raw = format!("{u}:{}", p.expose_secret());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        })
    }
}
