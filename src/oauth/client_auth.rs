//! Client authentication at the token and revocation endpoints (RFC 6749 §2.3): HTTP Basic or
//! `client_secret` in the body for confidential clients, `client_id` alone for public ones.

use base64::Engine;

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::server::AuthServer;
use crate::config::Tenant;
use crate::crypto::Handle;
use crate::domain::ClientRecord;

/// What the client presented to authenticate, apart from the form (RFC 6749 §2.3).
pub struct ClientCredentials {
    /// From an `Authorization: Basic` header, already decoded.
    pub basic: Option<(String, String)>,
}

/// Decodes an `Authorization: Basic` value (RFC 6749 §2.3.1: form-encoded id and secret).
pub(crate) fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

fn invalid_client(why: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, why)
}

/// The client id and secret of a request, from exactly one of the header and the body.
fn presented<'a>(
    form: &'a Params,
    creds: &'a ClientCredentials,
) -> Result<(&'a str, Option<&'a str>), OAuthError> {
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    match (&creds.basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method, not both Basic and client_secret",
        )),
        (Some((id, _)), Some(f), _) if f != id => Err(OAuthError::invalid_request(
            "client_id differs between the Authorization header and the body",
        )),
        // An empty password in Basic is no secret: a public client's id alone.
        (Some((id, s)), _, None) => Ok((id.as_str(), Some(s.as_str()).filter(|s| !s.is_empty()))),
        (None, Some(id), s) => Ok((id, s)),
        (None, None, _) => Err(invalid_client("client authentication failed: no client_id")),
    }
}

impl AuthServer {
    /// Authenticates the client of a token or revocation request; the secret is compared by
    /// its hash, in constant time.
    pub(crate) async fn authenticate_client(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        now: u64,
    ) -> Result<ClientRecord, OAuthError> {
        let (client_id, secret) = presented(form, creds)?;
        let client = self
            .registry
            .find(tenant, client_id, now)
            .await?
            .ok_or_else(|| invalid_client("client authentication failed: unknown client"))?;
        match (&client.secret_sha256, secret) {
            (Some(hash), Some(s)) if hash.matches(&Handle::presented(s)) => Ok(client),
            (Some(_), _) => Err(invalid_client(
                "client authentication failed: wrong or missing client secret",
            )),
            (None, None) => Ok(client),
            (None, Some(_)) => Err(invalid_client(
                "client authentication failed: this is a public client and has no secret",
            )),
        }
    }
}
