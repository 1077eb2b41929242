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
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    pub(crate) fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
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
