//! The token endpoint's form, parsed once into one variant per grant (RFC 6749 §4.1.3, §6;
//! RFC 7523 §2.1; RFC 8693 §2.1).
//!
//! Parsing is split in two so that errors keep the order clients see today: the grant type is
//! read before anyone is authenticated (an unsupported grant is `unsupported_grant_type`
//! whoever asks), the grant's own parameters after. Which grant says who authenticates: a
//! registered client for the code, refresh and JWT-bearer grants, a resource server for token
//! exchange. Adding a grant is a variant here and a module that answers it (docs/architecture.md).

use crate::crypto::Handle;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;

/// RFC 7523 §2.1.
pub(crate) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub(crate) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The grants the token endpoint answers, as a tenant offers them (`grant_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// A grant a registered client asks for, authenticated as that client (`client_auth.rs`).
    Client(ClientGrant),
    /// RFC 8693, asked by a resource server authenticated as one (`introspection.rs`).
    TokenExchange,
}

/// The grants of registered clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientGrant {
    AuthorizationCode,
    RefreshToken,
    /// With an ID-JAG (`id_jag.rs`).
    JwtBearer,
}

/// What a tenant offers beyond the code and refresh grants.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OfferedGrants {
    /// The tenant trusts an enterprise IdP's ID-JAGs.
    pub(crate) jwt_bearer: bool,
    /// A resource's server may exchange its tokens.
    pub(crate) token_exchange: bool,
}

/// A registered client's token request, with the parameters its grant takes. No `Debug`: a
/// redemption carries the PKCE verifier.
pub(crate) enum TokenRequest<'f> {
    /// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5) and RFC 8707 `resource`.
    AuthorizationCode(CodeRedemption),
    /// RFC 6749 §6.
    RefreshToken(RefreshRequest),
    /// RFC 7523 §2.1 with an ID-JAG.
    JwtBearer(JwtBearerRequest<'f>),
}

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`. The assertion's presence is
/// checked after the client's right to the grant (`id_jag.rs`), so that a client that may not
/// use it learns nothing more.
pub(crate) struct JwtBearerRequest<'f> {
    pub(crate) assertion: Option<&'f str>,
    pub(crate) resource: Option<&'f str>,
    pub(crate) scope: Option<&'f str>,
}

/// `grant_type=authorization_code`.
pub(crate) struct CodeRedemption {
    pub(crate) code: Handle,
    /// Required when the authorization request named one; checked against the code.
    pub(crate) redirect_uri: Option<String>,
    /// Checked after the code is found, so that a replayed code revokes its tokens even when
    /// the replay carries no verifier.
    pub(crate) code_verifier: Option<String>,
    pub(crate) resource: Option<String>,
}

/// `grant_type=refresh_token`.
pub(crate) struct RefreshRequest {
    pub(crate) refresh_token: Handle,
    pub(crate) scope: Option<String>,
    pub(crate) resource: Option<String>,
}

/// The grant type of a token request: no repeated parameter, a `grant_type` the tenant offers
/// (elsewhere the JWT-bearer and token-exchange grants stay unsupported).
pub(crate) fn grant_type(form: &Params, offered: OfferedGrants) -> Result<Grant, OAuthError> {
    form.refuse_repeated()?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    match grant_type {
        "authorization_code" => Ok(Grant::Client(ClientGrant::AuthorizationCode)),
        "refresh_token" => Ok(Grant::Client(ClientGrant::RefreshToken)),
        JWT_BEARER_GRANT if offered.jwt_bearer => Ok(Grant::Client(ClientGrant::JwtBearer)),
        TOKEN_EXCHANGE if offered.token_exchange => Ok(Grant::TokenExchange),
        _ => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type '{grant_type}' is not supported"),
        )),
    }
}

impl<'f> TokenRequest<'f> {
    /// The parameters of `grant` from the form.
    pub(crate) fn parse(grant: ClientGrant, form: &'f Params) -> Result<Self, OAuthError> {
        let optional = |name: &str| form.get(name).map(str::to_owned);
        let required = |name: &str, why: &str| {
            form.get(name)
                .map(Handle::presented)
                .ok_or_else(|| OAuthError::invalid_request(why))
        };
        Ok(match grant {
            ClientGrant::AuthorizationCode => Self::AuthorizationCode(CodeRedemption {
                code: required("code", "code is required")?,
                redirect_uri: optional("redirect_uri"),
                code_verifier: optional("code_verifier"),
                resource: optional("resource"),
            }),
            ClientGrant::RefreshToken => Self::RefreshToken(RefreshRequest {
                refresh_token: required("refresh_token", "refresh_token is required")?,
                scope: optional("scope"),
                resource: optional("resource"),
            }),
            ClientGrant::JwtBearer => Self::JwtBearer(JwtBearerRequest {
                assertion: form.get("assertion"),
                resource: form.get("resource"),
                scope: form.get("scope"),
            }),
        })
    }
}

/// RFC 8693 §3: the token types the exchange takes and issues.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub(crate) const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The parameters of an exchange request (RFC 8693 §2.1).
pub(crate) struct ExchangeRequest<'a> {
    pub(crate) subject_token: &'a str,
    pub(crate) resource: Option<&'a str>,
    pub(crate) audience: Option<&'a str>,
    pub(crate) scope: Option<&'a str>,
}

impl<'a> ExchangeRequest<'a> {
    /// Its parameters from the form (checked after the resource server is authenticated).
    pub(crate) fn parse(form: &'a Params) -> Result<Self, OAuthError> {
        let subject_token = form
            .get("subject_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
        match form.get("subject_token_type") {
            Some(ACCESS_TOKEN_TYPE | JWT_TYPE) => {}
            Some(other) => {
                return Err(OAuthError::invalid_request(format!(
                    "subject_token_type '{other}' is not accepted; the subject token is an access token the shim minted ({ACCESS_TOKEN_TYPE})"
                )));
            }
            None => {
                return Err(OAuthError::invalid_request(
                    "subject_token_type is required",
                ));
            }
        }
        if let Some(t) = form.get("requested_token_type")
            && t != ACCESS_TOKEN_TYPE
        {
            return Err(OAuthError::invalid_request(format!(
                "requested_token_type '{t}' is not offered; only {ACCESS_TOKEN_TYPE}"
            )));
        }
        if form.get("actor_token").is_some() || form.get("actor_token_type").is_some() {
            return Err(OAuthError::invalid_request(
                "actor_token is not supported: the calling resource server is the actor",
            ));
        }
        let request = ExchangeRequest {
            subject_token,
            resource: form.get("resource"),
            audience: form.get("audience"),
            scope: form.get("scope"),
        };
        if request.resource.is_none() && request.audience.is_none() {
            return Err(OAuthError::invalid_request(
                "name the downstream API with resource (its uri) or audience (its name)",
            ));
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_once() {
        let form = |s: &str| Params::parse(s);
        assert_eq!(
            grant_type(&form("grant_type=password"), OfferedGrants::default())
                .unwrap_err()
                .code,
            ErrorCode::UnsupportedGrantType
        );
        assert_eq!(
            grant_type(
                &form("grant_type=refresh_token&x=1&x=2"),
                OfferedGrants::default()
            )
            .unwrap_err()
            .code,
            ErrorCode::InvalidRequest
        );
        let f = form("grant_type=authorization_code&code=abc&code_verifier=v");
        match TokenRequest::parse(ClientGrant::AuthorizationCode, &f).unwrap() {
            TokenRequest::AuthorizationCode(c) => {
                assert_eq!(c.code.expose(), "abc");
                assert_eq!(c.code_verifier.as_deref(), Some("v"));
                assert!(c.redirect_uri.is_none());
            }
            _ => panic!("a code redemption was expected"),
        }
        let f = form("grant_type=refresh_token");
        assert_eq!(
            TokenRequest::parse(ClientGrant::RefreshToken, &f)
                .err()
                .expect("refused")
                .description,
            "refresh_token is required"
        );
        // The JWT-bearer and token-exchange grants only where the tenant offers them.
        let jwt = form("grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer");
        let exchange = form("grant_type=urn:ietf:params:oauth:grant-type:token-exchange");
        for f in [&jwt, &exchange] {
            assert_eq!(
                grant_type(f, OfferedGrants::default()).unwrap_err().code,
                ErrorCode::UnsupportedGrantType
            );
        }
        let all = OfferedGrants {
            jwt_bearer: true,
            token_exchange: true,
        };
        assert_eq!(
            grant_type(&jwt, all).unwrap(),
            Grant::Client(ClientGrant::JwtBearer)
        );
        assert_eq!(grant_type(&exchange, all).unwrap(), Grant::TokenExchange);
    }
}
