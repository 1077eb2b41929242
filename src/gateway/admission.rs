//! Whether a call may reach the MCP server: a page's `Origin` the resource allows, and a bearer
//! token that is a live minted access token for the resource (signature, issuer, expiry,
//! audience, a login not revoked and a client in good standing: `Tokens::live_claims`, read
//! from the store on every call, so a revocation counts at once on every replica), or for a
//! passthrough resource the IdP's access token for its API, issued to one of the tenant's apps
//! (`upstream/access_token.rs`).

use serde_json::{Map, Value};

use crate::config::Tenant;
use crate::config::resource::ResourceConfig;
use crate::oauth::AuthServer;
use crate::oauth::error::OAuthError;

/// Why a call is refused before it reaches the MCP server.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A page of an origin the resource does not allow (403).
    Origin(String),
    /// No token, or one that is not valid here (401 `invalid_token`), and why.
    Token(String),
}

/// The caller of an admitted call: the claims of its access token.
#[derive(Debug)]
pub(crate) struct Caller {
    pub(crate) claims: Map<String, Value>,
}

impl Caller {
    /// A string claim of the caller's token, or "".
    pub(crate) fn text(&self, name: &str) -> &str {
        self.claims
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// Whether a page at `origin` may call `resource`: its own origin, or one the resource lists.
pub(crate) fn origin_allowed(resource: &ResourceConfig, origin: &str) -> bool {
    let own = url::Url::parse(resource.uri.as_str())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    origin == own
        || resource
            .gateway
            .as_ref()
            .is_some_and(|g| g.allowed_origins.iter().any(|o| o == origin))
}

/// Admits a call to `resource` from a page at `origin` (none outside browsers) with `token`.
pub(crate) async fn admit(
    auth: &AuthServer,
    tenant: &Tenant,
    resource: &ResourceConfig,
    origin: Option<&str>,
    token: Option<&str>,
    now: u64,
) -> Result<Result<Caller, Refused>, OAuthError> {
    if let Some(origin) = origin.filter(|o| !origin_allowed(resource, o)) {
        return Ok(Err(Refused::Origin(format!(
            "calls from pages at {origin} are not allowed; the operator lists the origins of browser-based clients in the resource's gateway.allowed_origins"
        ))));
    }
    let Some(token) = token else {
        return Ok(Err(Refused::Token("a bearer token is required".into())));
    };
    let claims = if resource.is_minted() {
        let audience = resource.uri.as_str();
        auth.tokens()
            .live_claims(tenant, token, |aud| aud == audience, now)
            .await?
    } else {
        auth.tokens()
            .idp_token_claims(tenant, resource, token, now)
            .await?
    };
    Ok(claims
        .map(|claims| Caller { claims })
        .map_err(Refused::Token))
}
