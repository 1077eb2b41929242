//! The token endpoint's form, parsed once into one variant per grant (RFC 6749 §4.1.3, §6;
//! RFC 7523 §2.1; RFC 8693 §2.1).
//!
//! Parsing is split in two so that errors keep the order clients see today: the grant type is
//! read before anyone is authenticated (an unsupported grant is `unsupported_grant_type`
//! whoever asks), the grant's own parameters, parsed by the grant's module, are answered after
//! the client's authentication. Which grant says who authenticates: a registered client for
//! the code, refresh and JWT-bearer grants, a resource server for token exchange. Adding a
//! grant is a variant of `TokenRequest`, its arm in `parse`, and its module
//! (docs/architecture.md).

use super::code::CodeRedemption;
use super::grant_names::{CLIENT_CREDENTIALS, JWT_BEARER_GRANT, TOKEN_EXCHANGE};
use super::id_jag::{JwtBearerRequest, names_id_jag};
use super::refresh::RefreshRequest;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;

/// What a tenant offers beyond the code and refresh grants.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OfferedGrants {
    /// The tenant trusts an enterprise IdP's ID-JAGs.
    pub(crate) jwt_bearer: bool,
    /// A resource's server may exchange its tokens.
    pub(crate) token_exchange: bool,
    /// The tenant names machine clients.
    pub(crate) client_credentials: bool,
    /// The tenant trusts workloads' tokens (JWT-bearer grants without client authentication).
    pub(crate) workloads: bool,
}

/// A token request by the grant it asks for.
pub(crate) enum Parsed<'f> {
    /// A grant a registered client asks for, authenticated as that client (`client_auth.rs`),
    /// with its parameters, or what is wrong with them (answered after the client's error).
    Client(Result<TokenRequest<'f>, OAuthError>),
    /// RFC 8693, asked by a resource server authenticated as one (`exchange.rs` parses it).
    TokenExchange,
    /// RFC 6749 §4.4, asked by a machine client authenticated as one
    /// (`client_credentials.rs`).
    ClientCredentials,
    /// RFC 7523 §2.1 with a workload's token, which is the only credential
    /// (`workload.rs`).
    Workload,
}

/// A registered client's token request, with the parameters its grant takes (each parsed by
/// its grant's module). No `Debug`: a redemption carries the PKCE verifier.
pub(crate) enum TokenRequest<'f> {
    /// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5) and RFC 8707 `resource` (`code.rs`).
    AuthorizationCode(CodeRedemption),
    /// RFC 6749 §6 (`refresh.rs`).
    RefreshToken(RefreshRequest),
    /// RFC 7523 §2.1 with an ID-JAG (`id_jag.rs`).
    JwtBearer(JwtBearerRequest<'f>),
}

impl TokenRequest<'_> {
    /// The request, with the key its DPoP proof proved (`dpop_binding.rs`).
    pub(crate) fn bound_to(self, binding: Option<String>) -> Self {
        match self {
            Self::AuthorizationCode(mut r) => {
                r.dpop_jkt = binding;
                Self::AuthorizationCode(r)
            }
            Self::RefreshToken(mut r) => {
                r.dpop_jkt = binding;
                Self::RefreshToken(r)
            }
            Self::JwtBearer(mut r) => {
                r.dpop_jkt = binding;
                Self::JwtBearer(r)
            }
        }
    }
}

/// The grant a token request asks for: no repeated parameter, a `grant_type` the tenant
/// offers (elsewhere the JWT-bearer and token-exchange grants stay unsupported).
pub(crate) fn parse(form: &Params, offered: OfferedGrants) -> Result<Parsed<'_>, OAuthError> {
    form.refuse_repeated()?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let request = match grant_type {
        "authorization_code" => CodeRedemption::parse(form).map(TokenRequest::AuthorizationCode),
        "refresh_token" => RefreshRequest::parse(form).map(TokenRequest::RefreshToken),
        // The assertion's `typ` says whose rules apply: an ID-JAG's (a client presents it with
        // its own credentials), else a workload's token's (presented alone).
        JWT_BEARER_GRANT if offered.jwt_bearer || offered.workloads => {
            let id_jag = names_id_jag(form.get("assertion"));
            if offered.workloads && (!id_jag || !offered.jwt_bearer) {
                return Ok(Parsed::Workload);
            }
            Ok(TokenRequest::JwtBearer(JwtBearerRequest::parse(form)))
        }
        TOKEN_EXCHANGE if offered.token_exchange => return Ok(Parsed::TokenExchange),
        CLIENT_CREDENTIALS if offered.client_credentials => {
            return Ok(Parsed::ClientCredentials);
        }
        _ => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type '{grant_type}' is not supported"),
            ));
        }
    };
    Ok(Parsed::Client(request))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(form: &str, offered: OfferedGrants) -> Result<Parsed<'static>, OAuthError> {
        let form: &'static Params = Box::leak(Box::new(Params::parse(form)));
        parse(form, offered)
    }

    fn client_request(form: &str) -> Result<TokenRequest<'static>, OAuthError> {
        match parsed(form, OfferedGrants::default()) {
            Ok(Parsed::Client(r)) => r,
            _ => panic!("a registered client's grant was expected"),
        }
    }

    #[test]
    fn grants_parse_once() {
        let code = |f: &str| parsed(f, OfferedGrants::default()).err().map(|e| e.code);
        assert_eq!(
            code("grant_type=password"),
            Some(ErrorCode::UnsupportedGrantType)
        );
        assert_eq!(
            code("grant_type=refresh_token&x=1&x=2"),
            Some(ErrorCode::InvalidRequest)
        );
        match client_request("grant_type=authorization_code&code=abc&code_verifier=v") {
            Ok(TokenRequest::AuthorizationCode(c)) => {
                assert_eq!(c.code.expose(), "abc");
                assert_eq!(c.code_verifier.as_deref(), Some("v"));
                assert!(c.redirect_uri.is_none());
            }
            _ => panic!("a code redemption was expected"),
        }
        assert_eq!(
            client_request("grant_type=refresh_token")
                .err()
                .expect("refused")
                .description,
            "refresh_token is required"
        );
    }

    #[test]
    fn the_jwt_bearer_exchange_and_client_credentials_grants_only_where_offered() {
        let jwt = "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer";
        let exchange = "grant_type=urn:ietf:params:oauth:grant-type:token-exchange";
        let machine = "grant_type=client_credentials";
        for f in [jwt, exchange, machine] {
            assert_eq!(
                parsed(f, OfferedGrants::default()).err().map(|e| e.code),
                Some(ErrorCode::UnsupportedGrantType)
            );
        }
        let all = OfferedGrants {
            jwt_bearer: true,
            token_exchange: true,
            client_credentials: true,
            workloads: false,
        };
        assert!(matches!(
            parsed(jwt, all),
            Ok(Parsed::Client(Ok(TokenRequest::JwtBearer(_))))
        ));
        assert!(matches!(parsed(exchange, all), Ok(Parsed::TokenExchange)));
        assert!(matches!(
            parsed(machine, all),
            Ok(Parsed::ClientCredentials)
        ));
    }
}
