//! The successful token response (RFC 6749 §5.1; RFC 8693 §2.2.1 adds `issued_token_type`):
//! built by each grant, serialised in one place (the HTTP layer's JSON), and kept sealed for a
//! refresh retried within its grace window.

use serde::{Deserialize, Serialize};

use crate::crypto::Handle;
use crate::domain::ScopeSet;
use crate::upstream::tokens::UpstreamTokens;

/// No `Debug` that shows it: it carries tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub(crate) access_token: String,
    /// RFC 8693: what was issued, for a token exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) issued_token_type: Option<String>,
    pub(crate) token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_in: Option<u64>,
    pub(crate) scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    /// A bearer access token (the IdP's, or one the shim minted into `tokens`) granting
    /// `scopes`, without a refresh token.
    pub(crate) fn bearer(tokens: &UpstreamTokens, scopes: &ScopeSet) -> Self {
        Self {
            access_token: tokens.access_token.clone(),
            issued_token_type: None,
            token_type: "Bearer".to_owned(),
            expires_in: tokens.expires_in,
            scope: scopes.to_string(),
            refresh_token: None,
        }
    }

    /// The same, of type DPoP when its access token is bound to the key `binding` (RFC 9449
    /// §5: the client presents it with a proof, never as a bearer token).
    pub(crate) fn bound_to(mut self, binding: Option<&str>) -> Self {
        if binding.is_some() {
            self.token_type = "DPoP".to_owned();
        }
        self
    }

    /// The same, with the shim's refresh token.
    pub(crate) fn with_refresh_token(mut self, token: &Handle) -> Self {
        self.refresh_token = Some(token.expose().to_owned());
        self
    }

    /// The same, saying what a token exchange issued (RFC 8693 §2.2.1).
    pub(crate) fn issued_as(mut self, token_type: &str) -> Self {
        self.issued_token_type = Some(token_type.to_owned());
        self
    }

    pub(crate) fn has_refresh_token(&self) -> bool {
        self.refresh_token.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialised_as_rfc_6749_says() {
        let tokens = UpstreamTokens {
            access_token: "at".into(),
            token_type: "Bearer".into(),
            expires_in: Some(3600),
            refresh_token: Some("the IdP's, never handed out".into()),
            scope: None,
            id_token: None,
        };
        let mut scopes = ScopeSet::default();
        scopes.insert("files.read");
        let plain = serde_json::to_value(TokenResponse::bearer(&tokens, &scopes)).unwrap();
        assert_eq!(
            plain,
            serde_json::json!({"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "scope": "files.read"})
        );
        let handle = Handle::presented("rt");
        let full = TokenResponse::bearer(&tokens, &scopes)
            .with_refresh_token(&handle)
            .issued_as("urn:ietf:params:oauth:token-type:access_token");
        let value = serde_json::to_value(&full).unwrap();
        assert_eq!(value["refresh_token"], "rt");
        assert_eq!(
            value["issued_token_type"],
            "urn:ietf:params:oauth:token-type:access_token"
        );
        // What the grace window keeps reads back the same.
        let back: TokenResponse = serde_json::from_value(value).unwrap();
        assert!(back == full);
        assert!(!format!("{full:?}").contains("at\""));
    }
}
