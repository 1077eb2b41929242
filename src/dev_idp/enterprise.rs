//! The dev IdP as an enterprise IdP for Enterprise-Managed Authorization, at
//! `POST {issuer}/dev-idp/token`, so that a zero-touch login can be tried with no outside
//! service (`docs/ema.md`):
//!
//! - `grant_type=password` (`username`, `client_id`, `scope` with `openid`): the user's ID token.
//!   The dev IdP's sign-in form asks only for a user name; this is that form without a browser.
//! - `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693) with
//!   `requested_token_type=urn:ietf:params:oauth:token-type:id-jag`, `subject_token` (an ID token
//!   of this IdP), `audience` (the authorization server's issuer), `resource`, optional `scope`:
//!   an ID-JAG for the client the request names (`client_id`), which must be that client's id at
//!   the authorization server: a dev IdP has no managed connections to map it.
//!
//! Like the rest of the dev IdP it logs anyone in, which is why it runs on loopback only.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::idp::DevIdp;
use crate::crypto::random_token;
use crate::upstream::error::IdpError;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const ID_JAG_SECONDS: u64 = 300;

impl DevIdp {
    /// The token endpoint over HTTP: a password grant for an ID token, or an ID-JAG.
    pub(crate) fn http_token(
        &self,
        p: &HashMap<String, String>,
        now: u64,
    ) -> Result<Value, IdpError> {
        let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let client_id = || {
            get("client_id").ok_or_else(|| IdpError::new("invalid_client", "client_id is required"))
        };
        match get("grant_type") {
            Some("password") => {
                let user = get("username")
                    .filter(|u| super::is_valid_user_name(u))
                    .ok_or_else(|| {
                        IdpError::new(
                            "invalid_request",
                            "username is required: 1 to 64 letters, digits or ._@-",
                        )
                    })?;
                if !get("scope").is_some_and(|s| super::idp::has_scope(s, "openid")) {
                    return Err(IdpError::new(
                        "invalid_scope",
                        "ask for openid: this grant hands out an ID token",
                    ));
                }
                Ok(json!({
                    "access_token": random_token(),
                    "token_type": "Bearer",
                    "expires_in": super::idp::ACCESS_TOKEN_SECONDS,
                    "id_token": self.id_token(user, client_id()?, None, now)?,
                }))
            }
            Some(TOKEN_EXCHANGE) => self.id_jag(client_id()?, &get, now),
            // The code and refresh grants are the shim's alone, in process.
            other => Err(IdpError::new(
                "unsupported_grant_type",
                &format!(
                    "grant_type '{}' is not offered over HTTP here: password and token-exchange are",
                    other.unwrap_or("")
                ),
            )),
        }
    }

    fn id_jag<'p>(
        &self,
        client_id: &str,
        get: &impl Fn(&str) -> Option<&'p str>,
        now: u64,
    ) -> Result<Value, IdpError> {
        if get("requested_token_type") != Some(ID_JAG) {
            return Err(IdpError::new(
                "invalid_request",
                &format!("requested_token_type must be {ID_JAG}"),
            ));
        }
        if get("subject_token_type") != Some(ID_TOKEN) {
            return Err(IdpError::new(
                "invalid_request",
                &format!("subject_token_type must be {ID_TOKEN}"),
            ));
        }
        let user = get("subject_token")
            .and_then(|t| self.verified_id_token(t, now))
            .ok_or_else(|| {
                IdpError::new(
                    "invalid_grant",
                    "subject_token is not a live ID token of this IdP",
                )
            })?;
        let (Some(audience), Some(resource)) = (get("audience"), get("resource")) else {
            return Err(IdpError::new(
                "invalid_target",
                "audience (the authorization server's issuer) and resource are required",
            ));
        };
        let mut claims = json!({
            "iss": self.issuer,
            "sub": user["sub"],
            "aud": audience,
            "client_id": client_id,
            "resource": resource,
            "iat": now,
            "exp": now + ID_JAG_SECONDS,
            "jti": random_token(),
            "auth_time": user.get("auth_time").cloned().unwrap_or(json!(now)),
        });
        if let Some(scope) = get("scope") {
            claims["scope"] = json!(scope);
        }
        Ok(json!({
            "access_token": self.sign(Some("oauth-id-jag+jwt"), &claims)?,
            "issued_token_type": ID_JAG,
            "token_type": "N_A",
            "expires_in": ID_JAG_SECONDS,
        }))
    }
}
