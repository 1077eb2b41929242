//! The successful token response (RFC 6749 §5.1), shared by every grant.

use serde_json::{Value, json};

use crate::domain::ScopeSet;
use crate::upstream::tokens::UpstreamTokens;

/// The successful token response (RFC 6749 §5.1), without a refresh token.
pub(crate) fn token_response(tokens: &UpstreamTokens, scopes: &ScopeSet) -> Value {
    let mut response = json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "scope": scopes.to_string(),
    });
    if let Some(e) = tokens.expires_in {
        response["expires_in"] = json!(e);
    }
    response
}
