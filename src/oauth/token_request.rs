//! The token endpoint's form, parsed once into one variant per grant (RFC 6749 §4.1.3, §6).
//!
//! Parsing is split in two so that errors keep the order clients see today: the grant type is
//! read before the client is authenticated (an unsupported grant is `unsupported_grant_type`
//! whoever asks), the grant's own parameters after it.

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::crypto::Handle;
use crate::domain::GrantType;

/// RFC 7523 §2.1.
pub(crate) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub(crate) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The grant a token request asks for, with the parameters that grant takes. No `Debug`: a
/// redemption carries the PKCE verifier.
pub(crate) enum TokenRequest {
    /// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5) and RFC 8707 `resource`.
    AuthorizationCode(CodeRedemption),
    /// RFC 6749 §6.
    RefreshToken(RefreshRequest),
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

/// The grant type of a token request: no repeated parameter, a `grant_type` the shim offers.
pub(crate) fn grant_type(form: &Params) -> Result<GrantType, OAuthError> {
    form.refuse_repeated()?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    GrantType::parse(grant_type).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type '{grant_type}' is not supported"),
        )
    })
}

impl TokenRequest {
    /// The parameters of `grant` from the form.
    pub(crate) fn parse(grant: GrantType, form: &Params) -> Result<Self, OAuthError> {
        let optional = |name: &str| form.get(name).map(str::to_owned);
        let required = |name: &str, why: &str| {
            form.get(name)
                .map(Handle::presented)
                .ok_or_else(|| OAuthError::invalid_request(why))
        };
        Ok(match grant {
            GrantType::AuthorizationCode => Self::AuthorizationCode(CodeRedemption {
                code: required("code", "code is required")?,
                redirect_uri: optional("redirect_uri"),
                code_verifier: optional("code_verifier"),
                resource: optional("resource"),
            }),
            GrantType::RefreshToken => Self::RefreshToken(RefreshRequest {
                refresh_token: required("refresh_token", "refresh_token is required")?,
                scope: optional("scope"),
                resource: optional("resource"),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_once() {
        let form = |s: &str| Params::parse(s);
        assert_eq!(
            grant_type(&form("grant_type=password")).unwrap_err().code,
            ErrorCode::UnsupportedGrantType
        );
        assert_eq!(
            grant_type(&form("grant_type=refresh_token&x=1&x=2"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
        let f = form("grant_type=authorization_code&code=abc&code_verifier=v");
        match TokenRequest::parse(grant_type(&f).unwrap(), &f).unwrap() {
            TokenRequest::AuthorizationCode(c) => {
                assert_eq!(c.code.expose(), "abc");
                assert_eq!(c.code_verifier.as_deref(), Some("v"));
                assert!(c.redirect_uri.is_none());
            }
            TokenRequest::RefreshToken(_) => panic!("a code redemption was expected"),
        }
        let f = form("grant_type=refresh_token");
        assert_eq!(
            TokenRequest::parse(grant_type(&f).unwrap(), &f)
                .err()
                .expect("refused")
                .description,
            "refresh_token is required"
        );
    }
}
