//! `OAuthError`: the error a client sees, one variant per RFC error code.
//! RFC 6749 §5.2 (token), §4.1.2.1 (authorize), RFC 7591 §3.2.2 (registration), RFC 8707 §2.

use std::fmt;

/// An OAuth error code; `Display` is the wire string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidRedirectUri,
    InvalidClientMetadata,
    UnapprovedSoftwareStatement,
    NotFound,
    /// OpenID Connect Core §3.1.2.6.
    InteractionRequired,
    ConsentRequired,
    LoginRequired,
    /// RFC 6750 §3.1: a bearer token (the registration access token of RFC 7592) is wrong.
    InvalidToken,
    /// RFC 9449 §5, §7.1: a DPoP proof is missing, malformed or for another request or key.
    InvalidDpopProof,
    /// RFC 9449 §8, §9: the proof must carry the server's nonce (given in `DPoP-Nonce`).
    UseDpopNonce,
}

impl ErrorCode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::UnapprovedSoftwareStatement => "unapproved_software_statement",
            Self::NotFound => "not_found",
            Self::InteractionRequired => "interaction_required",
            Self::ConsentRequired => "consent_required",
            Self::LoginRequired => "login_required",
            Self::InvalidToken => "invalid_token",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

impl ErrorCode {
    /// The code for a wire string, when it is one the shim knows.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        use ErrorCode::*;
        [
            InvalidRequest,
            InvalidClient,
            InvalidGrant,
            UnauthorizedClient,
            UnsupportedGrantType,
            UnsupportedResponseType,
            InvalidScope,
            InvalidTarget,
            AccessDenied,
            ServerError,
            TemporarilyUnavailable,
            InteractionRequired,
            ConsentRequired,
            LoginRequired,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error for the client: a code and a description that says what to change.
fn allowed_in_description(c: char) -> bool {
    matches!(c, ' '..='~') && c != '\\'
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    /// The description is kept to printable ASCII without `\`, as RFC 6749 §5.2 asks: a
    /// value the client sent, quoted in it, can then start no new line in the log. (`"` stays,
    /// although §5.2 leaves it out too: a claims challenge is JSON that the client must pass
    /// on whole, and descriptions travel in JSON bodies and URL-encoded queries, never in a
    /// quoted header.)
    pub(crate) fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        let mut description: String = description.into();
        if !description.chars().all(allowed_in_description) {
            description = description
                .chars()
                .map(|c| if allowed_in_description(c) { c } else { '?' })
                .collect();
        }
        Self { code, description }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub(crate) fn invalid_client_metadata(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClientMetadata, description)
    }

    pub(crate) fn invalid_redirect_uri(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRedirectUri, description)
    }

    /// For failures inside the shim: the client learns only that it was the server's fault.
    pub(crate) fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the authorization server could not complete the request; the operator's log has the reason",
        )
    }
}

/// `invalid_grant` (RFC 6749 §5.2): the code, refresh token or assertion is not acceptable.
pub(crate) fn invalid_grant(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, why)
}

#[cfg(test)]
mod description_tests {
    use super::*;

    #[test]
    fn descriptions_keep_to_printable_ascii() {
        let e = OAuthError::invalid_request("client_id 'a\nb\"c\\d\u{e9}' is unknown");
        assert_eq!(e.description, "client_id 'a?b\"c?d?' is unknown");
        let plain = "redirect_uris[0]: 'http://x' is not https";
        assert_eq!(OAuthError::invalid_request(plain).description, plain);
    }
}
