//! Token calls to the IdP: code exchange and refresh with the app's credentials, for `oidc` and
//! `entra` upstreams over HTTP (no redirects, no `Origin` header, timeouts) and for the `dev`
//! IdP in process. IdP errors keep the IdP's code and correlation ids.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::credentials::LoadedCredential;
use super::endpoints::UpstreamEndpoints;
use super::error::{IdpError, UpstreamError};
use super::http::UpstreamHttp;
use crate::config::Tenant;
use crate::config::tenant::AppConfig;
use crate::domain::{ScopeSet, TenantId};
use crate::net::fetch::error_chain;
use tracing::Instrument;

/// One of a tenant's app registrations at its IdP, ready to be called: the tenant, the IdP's
/// endpoints as discovered, and the app.
pub(crate) struct UpstreamApp<'t> {
    pub(crate) tenant: &'t Tenant,
    pub(crate) endpoints: UpstreamEndpoints,
    pub(crate) app: &'t AppConfig,
}

/// What a call to the IdP's token endpoint asks for.
pub(crate) enum UpstreamGrant<'a> {
    /// The IdP's authorization code with the login's verifier (RFC 6749 §4.1.3, RFC 7636).
    AuthorizationCode {
        code: &'a str,
        verifier: &'a str,
        redirect_uri: &'a str,
    },
    /// The IdP's refresh token, for `scopes` if any (RFC 6749 §6).
    RefreshToken {
        refresh_token: &'a str,
        scopes: &'a ScopeSet,
    },
    /// Entra's on-behalf-of flow: an access token for the app's own API (`assertion`)
    /// exchanged for one to another API with `scopes`, for the same user (RFC 7523's JWT
    /// bearer grant with `requested_token_use=on_behalf_of`).
    OnBehalfOf {
        assertion: &'a str,
        scopes: &'a ScopeSet,
    },
}

impl UpstreamGrant<'_> {
    /// The `call` label of the IdP metrics.
    fn metric_label(&self) -> &'static str {
        match self {
            Self::AuthorizationCode { .. } => "code",
            Self::RefreshToken { .. } => "refresh",
            Self::OnBehalfOf { .. } => "on_behalf_of",
        }
    }

    fn form(&self) -> Vec<(String, String)> {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        match self {
            Self::AuthorizationCode {
                code,
                verifier,
                redirect_uri,
            } => vec![
                pair("grant_type", "authorization_code"),
                pair("code", code),
                pair("redirect_uri", redirect_uri),
                pair("code_verifier", verifier),
            ],
            Self::RefreshToken {
                refresh_token,
                scopes,
            } => {
                let mut form = vec![
                    pair("grant_type", "refresh_token"),
                    pair("refresh_token", refresh_token),
                ];
                if !scopes.is_empty() {
                    form.push(pair("scope", &scopes.to_string()));
                }
                form
            }
            Self::OnBehalfOf { assertion, scopes } => vec![
                pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                pair("assertion", assertion),
                pair("requested_token_use", "on_behalf_of"),
                pair("scope", &scopes.to_string()),
            ],
        }
    }
}

/// What the IdP handed out; kept only sealed.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct UpstreamTokens {
    pub(crate) access_token: String,
    #[serde(default = "bearer")]
    pub(crate) token_type: String,
    #[serde(default)]
    pub(crate) expires_in: Option<u64>,
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
    #[serde(default)]
    pub(crate) scope: Option<String>,
    #[serde(default, skip_serializing)]
    pub(crate) id_token: Option<String>,
}

impl UpstreamTokens {
    /// No tokens: what a refresh of a minted resource that does not refresh upstream starts
    /// from, before its own access token is put in.
    pub(crate) fn none() -> Self {
        Self {
            access_token: String::new(),
            token_type: bearer(),
            expires_in: None,
            refresh_token: None,
            scope: None,
            id_token: None,
        }
    }
}

fn bearer() -> String {
    "Bearer".into()
}

impl fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .finish()
    }
}

/// An IdP that runs inside the shim (the built-in dev IdP): its token endpoint is called
/// directly, with the form an HTTP token request would carry.
pub(crate) trait InProcessIdp: Send + Sync {
    fn token(&self, params: &HashMap<String, String>, now: u64)
    -> Result<UpstreamTokens, IdpError>;
    /// The JWK Set its tokens are signed with.
    fn jwks(&self) -> serde_json::Value;
}

/// Calls the IdPs of every tenant.
pub(crate) struct UpstreamClient {
    http: UpstreamHttp,
    credentials: HashMap<(TenantId, String), Result<LoadedCredential, String>>,
    in_process: HashMap<TenantId, Arc<dyn InProcessIdp>>,
}

impl UpstreamClient {
    pub(crate) fn new(
        http: UpstreamHttp,
        tenants: &[Arc<Tenant>],
        in_process: HashMap<TenantId, Arc<dyn InProcessIdp>>,
    ) -> Self {
        let mut credentials = HashMap::new();
        for t in tenants {
            for app in t.apps() {
                credentials.insert(
                    (t.id.clone(), app.name.clone()),
                    LoadedCredential::load(&app.credential),
                );
            }
        }
        Self {
            http,
            credentials,
            in_process,
        }
    }

    /// The JWK Set at `jwks_uri`, the keys `tenant`'s IdP signs its tokens with: fetched with
    /// the tenant's IdP client (its trusted CAs), or read from an IdP in this process.
    pub(crate) async fn key_set(
        &self,
        tenant: &Tenant,
        jwks_uri: &str,
    ) -> Result<jsonwebtoken::jwk::JwkSet, String> {
        let value = match self.in_process.get(&tenant.id) {
            Some(idp) => idp.jwks(),
            None => {
                let response = self
                    .http
                    .for_tenant(&tenant.id)
                    .get(jwks_uri)
                    .send()
                    .await
                    .map_err(|e| format!("GET {jwks_uri}: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("GET {jwks_uri}: HTTP {}", response.status()));
                }
                let body = super::http::read_capped_body(response)
                    .await
                    .map_err(|e| format!("GET {jwks_uri}: {e}"))?;
                serde_json::from_slice(&body).map_err(|_| format!("{jwks_uri} is not JSON"))?
            }
        };
        serde_json::from_value(value).map_err(|e| format!("{jwks_uri} is not a JWK Set: {e}"))
    }

    /// When each loaded `private_key_jwt` app's certificate ends (Unix seconds), by tenant
    /// and app name.
    pub(crate) fn certificate_expiries(&self) -> impl Iterator<Item = (&TenantId, &str, u64)> {
        self.credentials
            .iter()
            .filter_map(|((tenant, app), loaded)| {
                let not_after = loaded.as_ref().ok()?.certificate_not_after()?;
                Some((tenant, app.as_str(), not_after))
            })
    }

    /// One call to the token endpoint with `at`'s credentials, timed and its refusals counted
    /// (`metrics.rs`).
    pub(crate) async fn token(
        &self,
        at: &UpstreamApp<'_>,
        grant: UpstreamGrant<'_>,
        resource: Option<&str>,
        now: u64,
    ) -> Result<UpstreamTokens, UpstreamError> {
        let call = grant.metric_label();
        let mut form = grant.form();
        if let Some(r) = resource {
            form.push(("resource".into(), r.into()));
        }
        let (tenant, endpoints) = (at.tenant, &at.endpoints);
        let m = crate::metrics::metrics();
        let started = std::time::Instant::now();
        let span = crate::telemetry::client_span("idp token", "POST", &endpoints.token_endpoint);
        let result = self
            .call_token_endpoint(at, form, now)
            .instrument(span.clone())
            .await;
        crate::telemetry::record_outcome(
            &span,
            result.as_ref().err().map(|e| e.metric_code()).as_deref(),
        );
        m.upstream
            .call_seconds
            .with_label_values(&[tenant.id.as_str(), call])
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            m.upstream
                .errors
                .with_label_values(&[tenant.id.as_str(), call, &e.metric_code()])
                .inc();
            m.upstream
                .failures
                .with_label_values(&[tenant.id.as_str(), call])
                .inc();
        }
        result
    }

    async fn call_token_endpoint(
        &self,
        at: &UpstreamApp<'_>,
        form: Vec<(String, String)>,
        now: u64,
    ) -> Result<UpstreamTokens, UpstreamError> {
        let (tenant, endpoints, app) = (at.tenant, &at.endpoints, at.app);
        if let Some(idp) = self.in_process.get(&tenant.id) {
            let mut params: HashMap<String, String> = form.into_iter().collect();
            params.insert("client_id".into(), app.client_id.clone());
            return idp.token(&params, now).map_err(UpstreamError::Idp);
        }
        let credential = match self.credentials.get(&(tenant.id.clone(), app.name.clone())) {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Err(UpstreamError::Misconfigured(e.clone())),
            None => {
                return Err(UpstreamError::Misconfigured(format!(
                    "no credential loaded for app {}",
                    app.name
                )));
            }
        };
        let json = post_token_form(
            self.http.for_tenant(&tenant.id),
            credential,
            &app.client_id,
            &endpoints.token_endpoint,
            form,
            now,
        )
        .await?;
        serde_json::from_value(json).map_err(|e| {
            UpstreamError::Unavailable(format!(
                "POST {} answered without a usable access_token: {e}",
                endpoints.token_endpoint
            ))
        })
    }
}

/// One POST to a token endpoint as `client_id`, authenticated with `credential`: the JSON of a
/// successful answer, or the IdP's error (its AADSTS code and words), or why it could not be
/// asked. Shared by the logins' calls and `check --live`.
pub(crate) async fn post_token_form(
    http: &reqwest::Client,
    credential: &LoadedCredential,
    client_id: &str,
    token_endpoint: &str,
    mut form: Vec<(String, String)>,
    now: u64,
) -> Result<Value, UpstreamError> {
    let auth = credential
        .authenticate(client_id, token_endpoint, now)
        .await?;
    form.extend(auth.form.iter().cloned());
    let mut request = crate::telemetry::propagate(http.post(token_endpoint))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form);
    if let Some(h) = auth.basic_header() {
        request = request.header(reqwest::header::AUTHORIZATION, h);
    }
    let response = request.send().await.map_err(|e| {
        UpstreamError::Unavailable(format!("POST {token_endpoint}: {}", error_chain(&e)))
    })?;
    let status = response.status();
    let body = super::http::read_capped_body(response)
        .await
        .map_err(|e| UpstreamError::Unavailable(format!("POST {token_endpoint}: {e}")))?;
    let json: Value = serde_json::from_slice(&body).map_err(|_| {
        UpstreamError::Unavailable(format!(
            "POST {token_endpoint} answered HTTP {status} with a body that is not JSON"
        ))
    })?;
    if !status.is_success() || json.get("error").is_some() {
        return Err(UpstreamError::Idp(IdpError::from_json(&json)));
    }
    Ok(json)
}
