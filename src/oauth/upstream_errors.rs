//! What an MCP client is told when the IdP fails: an OAuth error whose description keeps the
//! IdP's own code (`AADSTS50105`, …) and says what it means. The operator's log line is written
//! by `UpstreamError::log`.

use super::error::{ErrorCode, OAuthError};
use crate::upstream::error::{IdpError, UpstreamError};

/// The error for the client.
pub(crate) fn to_client(e: &UpstreamError) -> OAuthError {
    match e {
        UpstreamError::Idp(e) => idp_to_client(e),
        UpstreamError::Unavailable(_) => OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the identity provider could not be reached; try again shortly",
        ),
        UpstreamError::Misconfigured(_) => OAuthError::server_error(),
    }
}

/// The error for a client at the token endpoint, where only RFC 6749 §5.2's codes mean
/// anything: the interaction codes of an authorization response (`interaction_required`,
/// `consent_required`, `login_required`, `access_denied`) become `invalid_grant`, which makes a
/// client start a new login, the IdP's code and the advice kept in the description.
pub(crate) fn to_token_client(e: &UpstreamError) -> OAuthError {
    let mut error = to_client(e);
    if matches!(
        error.code,
        ErrorCode::InteractionRequired
            | ErrorCode::ConsentRequired
            | ErrorCode::LoginRequired
            | ErrorCode::AccessDenied
    ) {
        error.code = ErrorCode::InvalidGrant;
    }
    error
}

/// The error for the client of an IdP error, with the IdP's own code kept in the description.
pub(crate) fn idp_to_client(e: &IdpError) -> OAuthError {
    let (code, advice) = e.meaning();
    let code = ErrorCode::parse(code).unwrap_or(ErrorCode::ServerError);
    // invalid_client / unauthorized_client from the IdP are about the shim's own app
    // credential, not the MCP client's: telling the client would make it drop its
    // registration. The operator's log has the IdP's words.
    if matches!(
        code,
        ErrorCode::InvalidClient | ErrorCode::UnauthorizedClient
    ) {
        return OAuthError::new(
            ErrorCode::ServerError,
            "the identity provider refused this server's app credentials; the operator's log has the reason",
        );
    }
    let idp_said = e.said();
    let mut description = if advice.is_empty() {
        format!("the identity provider refused: {idp_said}")
    } else {
        format!("the identity provider refused ({advice}): {idp_said}")
    };
    let challenge = e.challenge.as_deref();
    if let Some(suberror) = challenge.and_then(|c| c.suberror.as_deref()) {
        description.push_str(&format!(" (suberror: {})", bounded_text(suberror, 100)));
    }
    if let Some(claims) = challenge.and_then(|c| c.claims.as_deref()) {
        // The claims challenge, so that the client can repeat the authorization with it.
        description.push_str(&format!(" (claims: {})", bounded_text(claims, 2000)));
    }
    OAuthError::new(code, description)
}

/// At most `max` characters of text from the IdP, without control characters.
fn bounded_text(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_codes_are_found_and_mapped() {
        let e = IdpError {
            error: "invalid_request".into(),
            description: Some(
                "AADSTS50105: The signed in user 'x' is not assigned to a role.\r\nTrace ID: 1"
                    .into(),
            ),
            ..Default::default()
        };
        assert_eq!(e.aadsts().as_deref(), Some("AADSTS50105"));
        let c = idp_to_client(&e);
        assert_eq!(c.code, ErrorCode::AccessDenied);
        assert!(c.description.contains("AADSTS50105"));
        let plain = IdpError {
            error: "access_denied".into(),
            ..Default::default()
        };
        assert_eq!(idp_to_client(&plain).code, ErrorCode::AccessDenied);
        let odd = IdpError {
            error: "weird".into(),
            ..Default::default()
        };
        assert_eq!(idp_to_client(&odd).code, ErrorCode::ServerError);
        for (aadsts, code) in [
            ("AADSTS65001", ErrorCode::ConsentRequired),
            ("AADSTS65004", ErrorCode::AccessDenied),
            ("AADSTS90094", ErrorCode::AccessDenied),
            ("AADSTS90095", ErrorCode::AccessDenied),
            ("AADSTS50076", ErrorCode::InteractionRequired),
            ("AADSTS53000", ErrorCode::AccessDenied),
            ("AADSTS53003", ErrorCode::AccessDenied),
            ("AADSTS7000222", ErrorCode::ServerError),
            ("AADSTS9002327", ErrorCode::ServerError),
        ] {
            let e = IdpError {
                error: "invalid_request".into(),
                description: Some(format!("{aadsts}: words")),
                ..Default::default()
            };
            assert_eq!(idp_to_client(&e).code, code, "{aadsts}");
            // At the token endpoint, only RFC 6749 §5.2 codes.
            let at_token = to_token_client(&UpstreamError::Idp(e)).code;
            assert!(
                matches!(at_token, ErrorCode::InvalidGrant | ErrorCode::ServerError),
                "{aadsts}: {at_token}"
            );
        }
        let challenge = IdpError {
            error: "interaction_required".into(),
            description: Some("AADSTS50076: MFA required".into()),
            challenge: crate::upstream::error::IdpChallenge::of(
                Some("basic_action".into()),
                Some(r#"{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}"#.into()),
            ),
            ..Default::default()
        };
        let c = idp_to_client(&challenge);
        assert!(
            c.description.contains("(suberror: basic_action)"),
            "{}",
            c.description
        );
        assert!(c.description.contains(r#""capolids""#), "{}", c.description);
        let creds = IdpError {
            error: "invalid_client".into(),
            ..Default::default()
        };
        assert_eq!(idp_to_client(&creds).code, ErrorCode::ServerError);
    }
}
