//! The authorization endpoint (OAuth 2.1 §4.1.1, RFC 7636, RFC 8707, RFC 9207) and the
//! upstream redirect.
//!
//! `validate_authorization`: (1) tenant, client, redirect_uri — failures are shown on a page,
//! never redirected; (2) response_type, PKCE S256, resource, scopes — failures go back to the
//! validated redirect_uri with `state` and `iss`. `begin_upstream` then creates the single-use
//! transaction and builds the redirect to the IdP.

use serde::{Deserialize, Serialize};

use super::Logins;
use crate::config::Tenant;
use crate::config::tenant::{AppConfig, ResourceConfig};
use crate::crypto::pkce::S256Challenge;
use crate::crypto::{Handle, HandleKey, random_token};
use crate::domain::{ApprovalStatus, ClientRecord, GrantType, RedirectUri, ResourceUri};
use crate::net::append_query;
use crate::oauth::context::RequestCtx;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::oauth::records::{PendingAuthorization, Transaction};
use crate::oauth::scopes::{ScopeGrant, translate};
use crate::upstream::UpstreamEndpoints;
use crate::upstream::provider::Provider;

/// Lifetime of an upstream transaction.
pub(crate) const TRANSACTION_SECONDS: u64 = 600;
/// Longest `state`, `login_hint` or `domain_hint` passed along.
const MAX_PASSTHROUGH_LEN: usize = 1024;

/// Why an authorization request was refused, and how to say so.
#[derive(Debug)]
pub(crate) enum AuthorizeError {
    /// Shown on an error page: the redirect URI could not be trusted.
    Page { status: u16, message: String },
    /// Sent back to the client's validated redirect URI.
    Redirect {
        redirect_uri: RedirectUri,
        state: Option<String>,
        error: OAuthError,
    },
}

/// Where a client is sent back to: its validated redirect URI, with the `state` it sent.
struct ReturnTo {
    redirect_uri: RedirectUri,
    state: Option<String>,
}

impl AuthorizeError {
    fn page(status: u16, message: impl Into<String>) -> Self {
        Self::Page {
            status,
            message: message.into(),
        }
    }

    /// The `Location` for a redirect error (RFC 6749 §4.1.2.1 with RFC 9207 `iss`).
    pub(crate) fn location(
        redirect_uri: &RedirectUri,
        state: Option<&str>,
        error: &OAuthError,
        issuer: &str,
    ) -> String {
        let mut params = vec![
            ("error", error.code.as_str()),
            ("error_description", error.description.as_str()),
        ];
        if let Some(s) = state {
            params.push(("state", s));
        }
        params.push(("iss", issuer));
        redirect_uri.with_query(&params)
    }
}

/// Where to send the browser after consent, and the cookie that binds the transaction to it.
pub(crate) struct UpstreamRedirect {
    pub(crate) location: String,
    /// The transaction id (the upstream `state`).
    pub(crate) transaction: Handle,
    /// The value of the cookie that binds the transaction to this browser.
    pub(crate) browser_binding: Handle,
}

/// A validated request and the client it is for.
pub(crate) struct Authorized {
    pub(crate) client: ClientRecord,
    pub(crate) request: PendingAuthorization,
}

/// What the consent page shows, serialized into a signed ticket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ConsentTicket {
    pub(crate) tenant: String,
    pub(crate) request: PendingAuthorization,
    /// SHA-256 of the browser's CSRF cookie.
    pub(crate) csrf_hash: HandleKey,
    pub(crate) expires_at: u64,
    /// Random: every form is a ticket of its own, spent once (two forms opened in the same
    /// second for the same request would otherwise be one).
    #[serde(default)]
    pub(crate) id: String,
}

impl Logins {
    /// Validates an authorization request in two steps: identify the client and its redirect
    /// URI (errors on a page), then validate the request (errors back to the client where that
    /// is safe). `approval_cookie` is the browser's approval cookie for the client, if any.
    pub(crate) async fn validate_authorization(
        &self,
        tenant: &Tenant,
        params: &Params,
        approval_cookie: Option<&str>,
        ctx: &RequestCtx,
    ) -> Result<Authorized, AuthorizeError> {
        let now = ctx.now;
        let client = self.identify_client(tenant, params, ctx).await?;
        let (redirect_uri, redirect_uri_given) = requested_redirect_uri(&client, params)?;
        let state = params.get("state").map(str::to_owned);
        if client.approval == ApprovalStatus::Denied {
            crate::metrics::metrics()
                .approval
                .requests
                .with_label_values(&[tenant.id.as_str(), "denied"])
                .inc();
            return Err(self.refusal(
                tenant,
                &client,
                ReturnTo {
                    redirect_uri,
                    state,
                },
                OAuthError::new(
                    ErrorCode::AccessDenied,
                    "an administrator of this server denied this application",
                ),
                approval_cookie,
                now,
            ));
        }
        match validate_request(tenant, &client, params) {
            Ok(checked) => Ok(Authorized {
                request: PendingAuthorization {
                    client_id: client.client_id.clone(),
                    redirect_uri,
                    redirect_uri_given,
                    state,
                    code_challenge: checked.code_challenge,
                    resource: checked.resource,
                    scopes: checked.scopes.names,
                    upstream_scopes: checked.scopes.upstream,
                    // Refresh tokens are issued to clients registered for the refresh_token
                    // grant (whether or not they asked for offline_access); the consent page
                    // says so.
                    offline_access: client
                        .metadata
                        .grant_types
                        .contains(&GrantType::RefreshToken),
                    app: checked.app,
                    prompt: checked.prompt,
                    login_hint: checked.login_hint,
                    domain_hint: checked.domain_hint,
                    claims: checked.claims,
                    max_age: checked.max_age,
                    acr_values: checked.acr_values,
                    approval_epoch: client.approval_epoch,
                    approval_pending: client.approval == ApprovalStatus::Pending,
                    dpop_jkt: checked.dpop_jkt,
                },
                client,
            }),
            Err(error) => Err(self.refusal(
                tenant,
                &client,
                ReturnTo {
                    redirect_uri,
                    state,
                },
                error,
                approval_cookie,
                now,
            )),
        }
    }

    /// Step 1: the client named by `client_id`, registered or resolved from its metadata
    /// document. Every failure is shown on a page: nothing is known yet to redirect to.
    async fn identify_client(
        &self,
        tenant: &Tenant,
        params: &Params,
        ctx: &RequestCtx,
    ) -> Result<ClientRecord, AuthorizeError> {
        for name in ["client_id", "redirect_uri"] {
            if params.is_repeated(name) {
                return Err(AuthorizeError::page(
                    400,
                    format!("The request repeats the {name} parameter."),
                ));
            }
        }
        let Some(client_id) = params.get("client_id") else {
            return Err(AuthorizeError::page(400, "The request has no client_id."));
        };
        match self.registry.find(tenant, client_id, ctx).await {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(AuthorizeError::page(
                400,
                "This application is not registered here (unknown client_id). It may have expired; the application should register again.",
            )),
            Err(e) if e.code == ErrorCode::ServerError => Err(AuthorizeError::page(
                500,
                "The server could not look up this application. The operator's log has the reason.",
            )),
            // Busy fetching, or this address's share of fetches spent: nothing wrong with the
            // document, so a 503 (try again), not a refusal of the application.
            Err(e) if e.code == ErrorCode::TemporarilyUnavailable => Err(AuthorizeError::page(
                503,
                format!(
                    "This application's client metadata document cannot be fetched right now: {}",
                    e.description
                ),
            )),
            Err(e) => Err(AuthorizeError::page(
                400,
                format!(
                    "This application's client metadata document was refused: {}",
                    e.description
                ),
            )),
        }
    }

    /// How a refused request is answered. Errors go back to the redirect URI only where that
    /// cannot make this server an open redirector for a client nobody approved (RFC 9700
    /// §4.11.2): loopback URIs (the user's own machine), clients of trusted CIMD hosts, or a
    /// redirect URI this browser approved for this client (not merely the client: one it added
    /// later was never approved). Anything else gets the error on a page.
    fn refusal(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        ReturnTo {
            redirect_uri,
            state,
        }: ReturnTo,
        error: OAuthError,
        approval_cookie: Option<&str>,
        now: u64,
    ) -> AuthorizeError {
        let safe_to_redirect = redirect_uri.is_loopback()
            || self.is_trusted(tenant, client)
            || self.approved_redirect(
                tenant,
                &client.client_id,
                client.approval_epoch,
                &redirect_uri,
                approval_cookie,
                now,
            );
        if safe_to_redirect {
            AuthorizeError::Redirect {
                redirect_uri,
                state,
                error,
            }
        } else {
            AuthorizeError::page(
                400,
                format!(
                    "The application's request was refused ({}: {}). Because this browser has not approved the application, the server does not send you back to it automatically.",
                    error.code, error.description
                ),
            )
        }
    }

    /// Whether the user must see the consent page: not when the tenant trusts the client's
    /// CIMD host, nor when this browser already approved this client.
    /// `prompt=consent` always shows the page (OpenID Connect Core §3.1.2.1).
    pub(crate) fn needs_consent(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        request: &PendingAuthorization,
        approved_in_browser: bool,
    ) -> bool {
        let asked = request
            .prompt
            .as_deref()
            .is_some_and(|p| p.split(' ').any(|v| v == "consent"));
        // A client waiting for an administrator always shows the page: the user decides to
        // sign in and ask, knowing that the application cannot be used yet.
        asked
            || client.approval == ApprovalStatus::Pending
            || !(self.is_trusted(tenant, client) || approved_in_browser)
    }

    /// The answer to `prompt=none` when the consent page would be needed: `consent_required`
    /// (OpenID Connect Core §3.1.2.6), sent back to the client where that is safe, like any
    /// other refusal, and shown on a page otherwise.
    pub(crate) fn consent_required(
        &self,
        tenant: &Tenant,
        authorized: Authorized,
        approval_cookie: Option<&str>,
        now: u64,
    ) -> AuthorizeError {
        let Authorized { client, request } = authorized;
        self.refusal(
            tenant,
            &client,
            ReturnTo {
                redirect_uri: request.redirect_uri,
                state: request.state,
            },
            OAuthError::new(
                ErrorCode::ConsentRequired,
                "this browser has not approved the application, and prompt=none forbids asking",
            ),
            approval_cookie,
            now,
        )
    }

    /// Whether the tenant trusts the client's CIMD host (its clients skip consent).
    pub(crate) fn is_trusted(&self, tenant: &Tenant, client: &ClientRecord) -> bool {
        client.cimd_host().is_some_and(|h| {
            tenant
                .registration()
                .cimd_trusted_hosts
                .iter()
                .any(|p| p.matches(h))
        })
    }

    /// Creates the transaction and returns the IdP authorization URL to redirect to, with the
    /// cookie to set in this browser.
    pub(crate) async fn begin_upstream(
        &self,
        tenant: &Tenant,
        request: PendingAuthorization,
        now: u64,
    ) -> Result<UpstreamRedirect, AuthorizeError> {
        let (back_to, back_state) = (request.redirect_uri.clone(), request.state.clone());
        let redirect_error = |error: OAuthError| AuthorizeError::Redirect {
            redirect_uri: back_to.clone(),
            state: back_state.clone(),
            error,
        };
        let endpoints = self.upstreams.endpoints(tenant).map_err(|why| {
            tracing::error!(tenant = %tenant.id, reason = %why, "login refused: the upstream IdP has not been discovered");
            redirect_error(OAuthError::new(ErrorCode::TemporarilyUnavailable, "the identity provider is not reachable right now; try again shortly"))
        })?;
        let Some(app) = tenant.app(&request.app) else {
            return Err(redirect_error(OAuthError::server_error()));
        };
        crate::metrics::metrics()
            .logins
            .with_label_values(&[tenant.id.as_str(), "started"])
            .inc();
        let txn_id = Handle::generate();
        let verifier = random_token();
        let nonce = random_token();
        let location = upstream_authorization_url(
            tenant,
            &endpoints,
            app,
            &request,
            &txn_id,
            &S256Challenge::of(&verifier),
            &nonce,
        );
        let binding = Handle::generate();
        let txn = Transaction {
            sealed_verifier: self.sealer.seal(&txn_id, verifier.as_bytes()),
            nonce,
            browser_hash: binding.key(),
            created_at: now,
            request,
        };
        let stored = self
            .records
            .insert_new(
                &tenant.id,
                &txn_id.key(),
                &txn,
                Some(now + TRANSACTION_SECONDS),
                now,
            )
            .await
            .map_err(|e| redirect_error(e.into()))?;
        if !stored {
            tracing::error!(tenant = %tenant.id, "a new transaction id collided with a stored one");
            return Err(redirect_error(OAuthError::server_error()));
        }
        Ok(UpstreamRedirect {
            location,
            transaction: txn_id,
            browser_binding: binding,
        })
    }
}

/// The redirect URI of the request, and whether the request named it (RFC 6749 §3.1.2.3):
/// a registered one, or the only one registered when it is not a loopback URI. Failures are
/// shown on a page: the server will not send the browser to a URI it cannot trust.
fn requested_redirect_uri(
    client: &ClientRecord,
    params: &Params,
) -> Result<(RedirectUri, bool), AuthorizeError> {
    match params.get("redirect_uri") {
        Some(r) => match client.metadata.find_redirect_uri(r) {
            Some(uri) => Ok((uri, true)),
            None => Err(AuthorizeError::page(
                400,
                "The redirect_uri does not match any redirect URI registered by this application, so the server will not send you there.",
            )),
        },
        None => match client.metadata.redirect_uris.as_slice() {
            [only] if !only.is_loopback() => Ok((only.clone(), false)),
            _ => Err(AuthorizeError::page(
                400,
                "The request has no redirect_uri and the application registered several (or a loopback one), so it must name one.",
            )),
        },
    }
}

/// What step 2 found acceptable in a request.
struct CheckedRequest {
    code_challenge: S256Challenge,
    resource: ResourceUri,
    app: String,
    scopes: ScopeGrant,
    prompt: Option<String>,
    login_hint: Option<String>,
    domain_hint: Option<String>,
    claims: Option<String>,
    max_age: Option<String>,
    acr_values: Option<String>,
    dpop_jkt: Option<String>,
}

/// Step 2: the request itself, for a known client (OAuth 2.1 §4.1.1): no repeated parameter,
/// `response_type=code`, a client registered for the code grant, PKCE S256, one resource of
/// the tenant (RFC 8707), scopes the mapped app may have, bounded pass-through values.
fn validate_request(
    tenant: &Tenant,
    client: &ClientRecord,
    params: &Params,
) -> Result<CheckedRequest, OAuthError> {
    if let Some(name) = params.repeated.iter().find(|n| n.as_str() != "resource") {
        return Err(OAuthError::invalid_request(format!(
            "the parameter {name} is repeated"
        )));
    }
    bounded(params, "state")?;
    match params.get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("response_type '{other}' is not supported; use code"),
            ));
        }
        None => {
            return Err(OAuthError::invalid_request(
                "response_type is required (code)",
            ));
        }
    }
    if !client
        .metadata
        .grant_types
        .contains(&GrantType::AuthorizationCode)
    {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the authorization_code grant",
        ));
    }
    let code_challenge = pkce_challenge(params)?;
    let resource = requested_resource(tenant, params)?;
    let app = crate::oauth::mapping::mapped_app(tenant, client, resource)?;
    let (scopes, dropped) = translate(resource, app, params.get("scope"))?;
    if !dropped.is_empty() {
        tracing::debug!(tenant = %tenant.id, client_id = %client.client_id, dropped = %dropped.join(" "), granted = %scopes.names, "scopes that cannot be granted were dropped");
    }
    Ok(CheckedRequest {
        code_challenge,
        resource: resource.uri.clone(),
        app: app.name.clone(),
        scopes,
        prompt: bounded(params, "prompt")?,
        login_hint: bounded(params, "login_hint")?,
        domain_hint: bounded(params, "domain_hint")?,
        claims: claims(params)?,
        max_age: max_age(params)?,
        acr_values: bounded(params, "acr_values")?,
        dpop_jkt: dpop_jkt(params)?,
    })
}

/// `dpop_jkt` (RFC 9449 §10): the base64url SHA-256 thumbprint of the DPoP key the code will be
/// redeemed with.
fn dpop_jkt(params: &Params) -> Result<Option<String>, OAuthError> {
    match params.get("dpop_jkt") {
        None => Ok(None),
        Some(v)
            if v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(Some(v.to_owned()))
        }
        Some(_) => Err(OAuthError::invalid_request(
            "dpop_jkt must be the base64url SHA-256 thumbprint of a key (RFC 9449 §10)",
        )),
    }
}

/// A value passed along (`state`, `prompt`, hints), refused when longer than
/// `MAX_PASSTHROUGH_LEN`.
fn bounded(params: &Params, name: &str) -> Result<Option<String>, OAuthError> {
    match params.get(name) {
        Some(v) if v.len() > MAX_PASSTHROUGH_LEN => {
            Err(OAuthError::invalid_request(format!("{name} is too long")))
        }
        v => Ok(v.map(str::to_owned)),
    }
}

/// The sign-in strengths a login asks the IdP for: the client's `acr_values`, and those of the
/// scopes it asks for (`ScopeConfig::acr_values`), once each.
fn sign_in_wanted(tenant: &Tenant, request: &PendingAuthorization) -> Vec<String> {
    let mut wanted: Vec<String> = Vec::new();
    let from_client = request.acr_values.iter().flat_map(|v| v.split(' '));
    let from_scopes = tenant
        .resource(request.resource.as_str())
        .into_iter()
        .flat_map(|r| &r.scopes)
        .filter(|s| request.scopes.iter().any(|n| n == s.name))
        .flat_map(|s| s.acr_values.iter().map(String::as_str));
    for v in from_client.chain(from_scopes).filter(|v| !v.is_empty()) {
        if !wanted.iter().any(|w| w == v) {
            wanted.push(v.to_owned());
        }
    }
    wanted
}

/// Longest `claims` passed along: a claims challenge is a small JSON object.
const MAX_CLAIMS_LEN: usize = 4096;

/// The `claims` request parameter (OpenID Connect Core §5.5): a JSON object.
fn claims(params: &Params) -> Result<Option<String>, OAuthError> {
    let Some(claims) = params.get("claims") else {
        return Ok(None);
    };
    let is_object = claims.len() <= MAX_CLAIMS_LEN
        && serde_json::from_str::<serde_json::Value>(claims).is_ok_and(|v| v.is_object());
    if !is_object {
        return Err(OAuthError::invalid_request(format!(
            "claims must be a JSON object of at most {MAX_CLAIMS_LEN} bytes (OpenID Connect Core §5.5)"
        )));
    }
    Ok(Some(claims.to_owned()))
}

/// `max_age` (OpenID Connect Core §3.1.2.1): seconds, a non-negative integer.
fn max_age(params: &Params) -> Result<Option<String>, OAuthError> {
    match params.get("max_age") {
        Some(v) if v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) => Err(
            OAuthError::invalid_request("max_age must be a number of seconds"),
        ),
        v => Ok(v.map(str::to_owned)),
    }
}

/// The PKCE challenge (RFC 7636 §4.3): required, S256 only.
fn pkce_challenge(params: &Params) -> Result<S256Challenge, OAuthError> {
    match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, _) => Err(OAuthError::invalid_request(
            "code_challenge is required (PKCE with S256)",
        )),
        (Some(_), Some("plain")) => Err(OAuthError::invalid_request(
            "code_challenge_method plain is not allowed; use S256",
        )),
        (Some(_), None) => Err(OAuthError::invalid_request(
            "code_challenge_method is required and must be S256",
        )),
        (Some(_), Some(m)) if m != "S256" => Err(OAuthError::invalid_request(format!(
            "code_challenge_method '{m}' is not supported; use S256"
        ))),
        (Some(c), Some(_)) => S256Challenge::parse(c).ok_or_else(|| {
            OAuthError::invalid_request(
                "code_challenge must be 43 characters of base64url (the S256 hash of the verifier)",
            )
        }),
    }
}

/// The resource the request names (RFC 8707 §2), or the tenant's default.
fn requested_resource<'t>(
    tenant: &'t Tenant,
    params: &Params,
) -> Result<&'t ResourceConfig, OAuthError> {
    if params.is_repeated("resource") {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "name one resource per request",
        ));
    }
    match params.get("resource") {
        Some(r) => tenant.resource(r).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("'{r}' is not a resource of this authorization server"),
            )
        }),
        None => Ok(tenant.default_resource()),
    }
}

/// The IdP's authorization URL for one transaction (OpenID Connect Core §3.1.2.1): the app's
/// client id, the shim's callback, the upstream scopes and resource (`Provider`), the
/// transaction id as `state`, the shim's own PKCE challenge and nonce, and the pass-through
/// values of the client's request.
fn upstream_authorization_url(
    tenant: &Tenant,
    endpoints: &UpstreamEndpoints,
    app: &AppConfig,
    request: &PendingAuthorization,
    txn_id: &Handle,
    challenge: &S256Challenge,
    nonce: &str,
) -> String {
    let provider = Provider::of(tenant);
    let mut scopes =
        provider.authorization_scopes(&request.upstream_scopes, endpoints.offers_refresh);
    let (extra_scopes, extra_resources) =
        provider.login_extras_for_exchange(tenant.exchange_apis(&request.resource));
    for s in extra_scopes {
        scopes.insert(s);
    }
    let scope = scopes.to_string();
    let callback = format!("{}/callback", tenant.issuer);
    let mut query: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &app.client_id),
        ("redirect_uri", &callback),
        ("scope", &scope),
        ("state", txn_id.expose()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("nonce", nonce),
    ];
    let upstream_resource = crate::oauth::upstreams::upstream_resource(tenant, &request.resource);
    if let Some(r) = &upstream_resource {
        query.push(("resource", r));
    }
    for r in extra_resources {
        query.push(("resource", r));
    }
    let prompt = provider.authorization_prompt(request.prompt.as_deref(), endpoints.offers_refresh);
    let (claims, acr_values) =
        provider.sign_in_request(&sign_in_wanted(tenant, request), request.claims.as_deref());
    for (name, value) in [
        ("prompt", &prompt),
        ("login_hint", &request.login_hint),
        ("domain_hint", &request.domain_hint),
        ("claims", &claims),
        ("max_age", &request.max_age),
        ("acr_values", &acr_values),
    ] {
        if let Some(v) = value {
            query.push((name, v));
        }
    }
    append_query(&endpoints.authorization_endpoint, &query)
}
