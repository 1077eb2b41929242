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
use crate::oauth::dpop::{Expected, ResourceRefusal};
use crate::oauth::error::OAuthError;

/// Why a call is refused before it reaches the MCP server.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A page of an origin the resource does not allow (403).
    Origin(String),
    /// No token, or one that is not valid here (401 `invalid_token`), and why.
    Token(String),
    /// A DPoP-bound token without its proof, a proof that fails, or a token presented in the
    /// wrong scheme (401 with a `DPoP` challenge, RFC 9449 §7.1).
    Dpop(ResourceRefusal),
}

/// How a call presents its access token (RFC 6750 §2.1, RFC 9449 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Bearer,
    Dpop,
}

/// The token a call presents, with what its DPoP proof must match.
pub(crate) struct Presented<'r> {
    pub(crate) scheme: Scheme,
    pub(crate) token: &'r str,
    /// The call's `DPoP` header, if it has one.
    pub(crate) proof: Option<&'r str>,
    /// The call's method and path, for the proof's `htm` and `htu`.
    pub(crate) method: &'r str,
    pub(crate) path: &'r str,
}

/// The URL a call was sent to, as its client sees it (the resource's public origin and the
/// call's path, no query): what a DPoP proof's `htu` names. Made only for DPoP calls.
fn request_url(resource: &ResourceConfig, path: &str) -> String {
    let origin = url::Url::parse(resource.uri.as_str())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    format!("{origin}{path}")
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
    presented: Option<Presented<'_>>,
    now: u64,
) -> Result<Result<Caller, Refused>, OAuthError> {
    if let Some(origin) = origin.filter(|o| !origin_allowed(resource, o)) {
        return Ok(Err(Refused::Origin(format!(
            "calls from pages at {origin} are not allowed; the operator lists the origins of browser-based clients in the resource's gateway.allowed_origins"
        ))));
    }
    let Some(presented) = presented else {
        return Ok(Err(Refused::Token("a bearer token is required".into())));
    };
    let token = presented.token;
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
    let claims = match claims {
        Ok(c) => c,
        Err(why) => return Ok(Err(Refused::Token(why))),
    };
    if let Err(refused) = check_binding(auth, tenant, resource, &presented, &claims, now).await? {
        return Ok(Err(Refused::Dpop(refused)));
    }
    Ok(Ok(Caller { claims }))
}

/// A token bound to a DPoP key (`cnf.jkt`) comes in the DPoP scheme with a proof of that key
/// for this call; an unbound one in the Bearer scheme, where the resource takes such tokens.
async fn check_binding(
    auth: &AuthServer,
    tenant: &Tenant,
    resource: &ResourceConfig,
    presented: &Presented<'_>,
    claims: &Map<String, Value>,
    now: u64,
) -> Result<Result<(), ResourceRefusal>, OAuthError> {
    let cnf = claims.get("cnf");
    let jkt = cnf.and_then(|c| c.get("jkt")).and_then(Value::as_str);
    if cnf.is_some() && jkt.is_none() {
        // Bound some other way (an mTLS certificate's `x5t#S256`): nothing here can check it.
        return Ok(Err(ResourceRefusal::Scheme(
            "the token is bound to a key in a way the gateway cannot check (cnf without jkt)"
                .into(),
        )));
    }
    Ok(match (jkt, presented.scheme) {
        (Some(jkt), Scheme::Dpop) => {
            let url = request_url(resource, presented.path);
            let expected = Expected {
                method: presented.method,
                url: &url,
                access_token: Some(presented.token),
                now,
            };
            return auth
                .tokens()
                .check_resource_proof(tenant, presented.proof, &expected, jkt)
                .await;
        }
        (Some(_), Scheme::Bearer) => Err(ResourceRefusal::Scheme(
            "the token is DPoP-bound: present it as Authorization: DPoP, with a DPoP proof".into(),
        )),
        (None, Scheme::Dpop) => Err(ResourceRefusal::Scheme(
            "the token is not DPoP-bound: present it as a Bearer token".into(),
        )),
        (None, Scheme::Bearer) if resource.minted().is_some_and(|m| m.requires_dpop()) => {
            Err(ResourceRefusal::Scheme(
                "this resource takes DPoP-bound tokens only: get one with a DPoP proof at the token endpoint".into(),
            ))
        }
        (None, Scheme::Bearer) => Ok(()),
    })
}
