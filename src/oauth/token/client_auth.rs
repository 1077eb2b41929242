//! Client authentication at the token and revocation endpoints (RFC 6749 §2.3): HTTP Basic or
//! `client_secret` in the body for registered confidential clients, a `private_key_jwt`
//! assertion for document clients that publish keys (RFC 7523), `client_id` alone for public
//! ones.

use base64::Engine;

use super::Tokens;
use crate::config::Tenant;
use crate::crypto::Handle;
use crate::domain::{AuthMethod, ClientId, ClientRecord};
use crate::oauth::client_assertion::{
    AssertionError, JWT_BEARER, VerifiedAssertion, unverified_subject, verify,
};
use crate::oauth::context::RequestCtx;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::oauth::records::SpendOnce;

/// What a token request presents in its headers: the client's credentials (RFC 6749 §2.3) and
/// a DPoP proof.
pub struct ClientCredentials {
    /// From an `Authorization: Basic` header, already decoded.
    pub basic: Option<(String, String)>,
    /// The request's DPoP proof (RFC 9449), its one `DPoP` header: a proof of the key the
    /// tokens it gets are bound to, not a client credential.
    pub dpop: Option<String>,
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

pub(super) fn invalid_client(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, why)
}

/// How a request's client said who it is.
pub(super) enum Presented<'a> {
    /// A client id, with a secret for a confidential client.
    Secret {
        id: &'a str,
        secret: Option<&'a str>,
    },
    /// A `private_key_jwt` assertion (RFC 7523 §2.2), for the client it names.
    Assertion { id: String, assertion: &'a str },
}

/// The client id and credential of a request, from exactly one place: the Basic header, the
/// body's `client_secret`, or a client assertion.
pub(super) fn presented<'a>(
    form: &'a Params,
    creds: &'a ClientCredentials,
) -> Result<Presented<'a>, OAuthError> {
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    let assertion = form.get("client_assertion");
    let assertion_type = form.get("client_assertion_type");
    if assertion.is_some() || assertion_type.is_some() {
        if creds.basic.is_some() || form_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not a client assertion and a secret",
            ));
        }
        // An assertion of another type, or without one, fails authentication (RFC 7521
        // §4.2.1: `invalid_client`), as the MCP conformance suite's authorization server answers.
        let (Some(assertion), Some(JWT_BEARER)) = (assertion, assertion_type) else {
            return Err(invalid_client(format!(
                "client authentication failed: a client assertion needs both client_assertion and client_assertion_type={JWT_BEARER}"
            )));
        };
        let subject = unverified_subject(assertion);
        let id = match (form_id, subject) {
            (Some(f), Some(s)) if f != s => {
                return Err(invalid_client(
                    "client authentication failed: client_id differs from the client assertion's sub",
                ));
            }
            (_, Some(s)) => s,
            (_, None) => {
                return Err(invalid_client(
                    "client authentication failed: the client assertion is not a JWT with a sub",
                ));
            }
        };
        return Ok(Presented::Assertion { id, assertion });
    }
    let (id, secret) = match (&creds.basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not both Basic and client_secret",
            ));
        }
        (Some((id, _)), Some(f), _) if f != id => {
            return Err(OAuthError::invalid_request(
                "client_id differs between the Authorization header and the body",
            ));
        }
        // An empty password in Basic is no secret: a public client's id alone.
        (Some((id, s)), _, None) => (id.as_str(), Some(s.as_str()).filter(|s| !s.is_empty())),
        (None, Some(id), s) => (id, s),
        (None, None, _) => {
            return Err(invalid_client("client authentication failed: no client_id"));
        }
    };
    Ok(Presented::Secret { id, secret })
}

impl Tokens {
    /// Authenticates the client of a token or revocation request: a secret compared by its
    /// hash in constant time, or a client assertion checked against the client's keys with its
    /// `jti` spent once.
    pub(crate) async fn authenticate_client(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        ctx: &RequestCtx,
    ) -> Result<ClientRecord, OAuthError> {
        let presented = presented(form, creds)?;
        let client_id = match &presented {
            Presented::Secret { id, .. } => *id,
            Presented::Assertion { id, .. } => id.as_str(),
        };
        let client = self
            .registry
            .find(tenant, client_id, ctx)
            .await?
            .ok_or_else(|| invalid_client("client authentication failed: unknown client"))?;
        let uses_keys = client.metadata.token_endpoint_auth_method == AuthMethod::PrivateKeyJwt;
        match (presented, &client.secret_sha256) {
            (Presented::Assertion { assertion, .. }, _) if uses_keys => {
                self.check_assertion(tenant, &client, assertion, ctx)
                    .await?;
                Ok(client)
            }
            (_, _) if uses_keys => Err(invalid_client(
                "client authentication failed: this client authenticates with private_key_jwt; send client_assertion and client_assertion_type",
            )),
            (Presented::Assertion { .. }, _) => Err(invalid_client(
                "client authentication failed: this client's metadata does not say private_key_jwt, so it cannot authenticate with a client assertion",
            )),
            (
                Presented::Secret {
                    secret: Some(s), ..
                },
                Some(hash),
            ) if hash.matches(&Handle::presented(s)) => Ok(client),
            (Presented::Secret { .. }, Some(_)) => Err(invalid_client(
                "client authentication failed: wrong or missing client secret",
            )),
            (Presented::Secret { secret: None, .. }, None) => Ok(client),
            (
                Presented::Secret {
                    secret: Some(_), ..
                },
                None,
            ) => Err(invalid_client(
                "client authentication failed: this is a public client and has no secret",
            )),
        }
    }

    /// Verifies a client assertion with the client's keys (fetched again once when it names a
    /// key the cached set lacks) and spends its `jti`: a replay is refused.
    async fn check_assertion(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        assertion: &str,
        ctx: &RequestCtx,
    ) -> Result<(), OAuthError> {
        let now = ctx.now;
        let issuer = tenant.issuer.as_str();
        let audiences = [
            &format!("{issuer}/token")[..],
            issuer,
            &format!("{issuer}/revoke")[..],
        ];
        let id = client.client_id.as_str();
        let keys = self
            .registry
            .client_keys(tenant, client, false, ctx.caller)
            .await?;
        let verified = match verify(assertion, id, &keys, &audiences, now) {
            Err(AssertionError::NoKey) if client.metadata.jwks_uri.is_some() => {
                let keys = self
                    .registry
                    .client_keys(tenant, client, true, ctx.caller)
                    .await?;
                verify(assertion, id, &keys, &audiences, now)
            }
            other => other,
        }
        .map_err(|e| invalid_client(format!("client authentication failed: {e}")))?;
        self.spend_assertion(tenant, &client.client_id, &verified, now)
            .await
    }

    /// Spends a verified assertion's `jti` for `client_id`: a second use is refused.
    pub(super) async fn spend_assertion(
        &self,
        tenant: &Tenant,
        client_id: &ClientId,
        verified: &VerifiedAssertion,
        now: u64,
    ) -> Result<(), OAuthError> {
        let scope = client_id.to_string();
        let until = verified.exp.saturating_add(120);
        let once = SpendOnce {
            scope: &scope,
            jti: &verified.jti,
            client_id,
            until,
        };
        let first = once.spend(&self.records, &tenant.id, now).await?;
        if !first {
            return Err(invalid_client(
                "client authentication failed: this client assertion was already used (its jti is spent); sign a new one for every request",
            ));
        }
        Ok(())
    }
}
