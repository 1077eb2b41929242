//! Token exchange (RFC 8693) at `/{tenant}/token`, for the tenant's resource servers: an MCP
//! server presents a minted access token it received (`subject_token`) and names a downstream
//! API (`resource` or `audience`); the answer is the IdP's access token for that API, on the
//! same user's behalf, obtained with the login's IdP refresh token.
//!
//! That refresh token must then be usable without the client's refresh token, so for a
//! resource with `exchange` it is also kept on the login's family sealed under a server-held
//! key (`ExchangeGrant`): a stolen database alone still opens nothing, but the server can (the
//! trade-off is in SECURITY.md). Refreshes and exchanges of one login use and replace that one
//! copy, one at a time per server (the family lock).

use serde_json::{Map, Value};

use super::Tokens;
use super::client_auth::ClientCredentials;
use super::response::TokenResponse;
use crate::config::Tenant;
use crate::config::downstream_api::DownstreamApi;
use crate::config::resource_server::ResourceServerConfig;
use crate::domain::{ResourceUri, ScopeSet};
use crate::minting::access_token::Invalid;
use crate::oauth::error::invalid_grant;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::oauth::records::{ExchangeGrant, Family, FamilyId};
use crate::store::Versioned;
use crate::upstream::provider::Provider;
use crate::upstream::tokens::{UpstreamGrant, UpstreamTokens};

/// RFC 8693 §2.2.2: a subject token that is invalid or unacceptable is `invalid_request`.
fn unacceptable_subject(why: impl std::fmt::Display) -> OAuthError {
    OAuthError::invalid_request(format!("subject_token: {why}"))
}

fn invalid_target(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, why)
}

fn seal_label(tenant: &Tenant, family: &FamilyId) -> String {
    format!("exchange {} {family}", tenant.id)
}

/// Why no token for a downstream API could be had for a login.
#[derive(Debug)]
pub(crate) enum Unobtainable {
    /// The login cannot be used (revoked, its client gone, no IdP refresh token kept); why.
    Login(String),
    /// The API is reached through another app than the login's; why.
    OtherApp(String),
    /// The store, the seal or the IdP failed (an OAuth error for the client, logged).
    Failed(OAuthError),
}

/// RFC 8693 §3: the token types the exchange takes and issues.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub(crate) const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The parameters of an exchange request (RFC 8693 §2.1).
pub(crate) struct ExchangeRequest<'a> {
    pub(crate) subject_token: &'a str,
    pub(crate) resource: Option<&'a str>,
    pub(crate) audience: Option<&'a str>,
    pub(crate) scope: Option<&'a str>,
}

impl<'a> ExchangeRequest<'a> {
    /// Its parameters from the form (checked after the resource server is authenticated).
    pub(crate) fn parse(form: &'a Params) -> Result<Self, OAuthError> {
        let subject_token = form
            .get("subject_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
        match form.get("subject_token_type") {
            Some(ACCESS_TOKEN_TYPE | JWT_TYPE) => {}
            Some(other) => {
                return Err(OAuthError::invalid_request(format!(
                    "subject_token_type '{other}' is not accepted; the subject token is an access token the shim minted ({ACCESS_TOKEN_TYPE})"
                )));
            }
            None => {
                return Err(OAuthError::invalid_request(
                    "subject_token_type is required",
                ));
            }
        }
        if let Some(t) = form.get("requested_token_type")
            && t != ACCESS_TOKEN_TYPE
        {
            return Err(OAuthError::invalid_request(format!(
                "requested_token_type '{t}' is not offered; only {ACCESS_TOKEN_TYPE}"
            )));
        }
        if form.get("actor_token").is_some() || form.get("actor_token_type").is_some() {
            return Err(OAuthError::invalid_request(
                "actor_token is not supported: the calling resource server is the actor",
            ));
        }
        let request = ExchangeRequest {
            subject_token,
            resource: form.get("resource"),
            audience: form.get("audience"),
            scope: form.get("scope"),
        };
        if request.resource.is_none() && request.audience.is_none() {
            return Err(OAuthError::invalid_request(
                "name the downstream API with resource (its uri) or audience (its name)",
            ));
        }
        Ok(request)
    }
}

impl Tokens {
    /// The exchange grant of a new family whose resource's server may exchange its tokens.
    pub(crate) fn exchange_grant(
        &self,
        tenant: &Tenant,
        family: &FamilyId,
        app: &str,
        upstream_refresh: &str,
    ) -> ExchangeGrant {
        ExchangeGrant {
            app: app.to_owned(),
            sealed_refresh: self
                .sealer
                .seal_server_held(&seal_label(tenant, family), upstream_refresh.as_bytes()),
        }
    }

    /// The IdP refresh token kept for exchange.
    pub(crate) fn exchange_refresh_token(
        &self,
        tenant: &Tenant,
        family: &FamilyId,
        grant: &ExchangeGrant,
    ) -> Result<String, OAuthError> {
        self.sealer
            .unseal_server_held(&seal_label(tenant, family), &grant.sealed_refresh)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|_| {
                tracing::error!(tenant = %tenant.id, family = %family.short(), "the IdP refresh token kept for token exchange does not open with the server secret (was it replaced without keeping the previous one?); the user must sign in again");
                invalid_grant("the login can no longer be used; the user must sign in again")
            })
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
    pub(crate) async fn exchange(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let caller = self
            .authenticate_resource_server(tenant, form, creds, now)
            .await?;
        let req = ExchangeRequest::parse(form)?;
        let api = tenant
            .downstream_api(req.resource, req.audience)
            .ok_or_else(|| {
                invalid_target("no downstream API of this tenant has that resource or audience")
            })?;
        let claims = self
            .subject_token_claims(tenant, caller, api, req.subject_token, now)
            .await?;
        let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
        let scopes = requested_scopes(api, req.scope)?;
        if text("sid").is_empty() {
            return Err(unacceptable_subject(
                "it is a machine client's token: there is no user to act for",
            ));
        }
        let family_id = FamilyId::from_admin(text("sid"));
        let tokens = self
            .downstream_token(tenant, &family_id, text("client_id"), api, &scopes, now)
            .await
            .map_err(|refused| match refused {
                Unobtainable::Login(why) => unacceptable_subject(why),
                Unobtainable::OtherApp(why) => invalid_target(why),
                Unobtainable::Failed(e) => e,
            })?;
        tracing::info!(target: "audit", event = "token_exchanged", tenant = %tenant.id, resource_server = %caller.client_id,
            client_id = text("client_id"), subject = text("sub"), api = %api.name);
        Ok(TokenResponse::bearer(&tokens, &scopes).issued_as(ACCESS_TOKEN_TYPE))
    }

    /// The IdP's access token for `api` with `scopes`, on behalf of the user of the login
    /// `family_id` (made through `client_id`), obtained with the login's IdP refresh token kept
    /// for exchange, which the IdP's new one, if it sends one, replaces.
    pub(crate) async fn downstream_token(
        &self,
        tenant: &Tenant,
        family_id: &FamilyId,
        client_id: &str,
        api: &DownstreamApi,
        scopes: &ScopeSet,
        now: u64,
    ) -> Result<UpstreamTokens, Unobtainable> {
        // One use of the login's IdP refresh token at a time in this server: a refresh of the
        // same login waits, and each finds the token the other left.
        let lock = self.families.lock(family_id);
        let _guard = lock.lock().await;
        let (family, client) = tokio::join!(
            self.records.get::<Family>(&tenant.id, family_id, now),
            self.client_standing(tenant, client_id, now),
        );
        let family = family
            .map_err(|e| Unobtainable::Failed(e.into()))?
            .filter(|f| !f.value.revoked)
            .ok_or(Unobtainable::Login("its login was revoked".into()))?;
        if let Some(why) = client.map_err(Unobtainable::Failed)? {
            return Err(Unobtainable::Login(format!("its client {why}")));
        }
        let grant = family.value.exchange.clone().ok_or_else(|| {
            Unobtainable::Login("its login keeps no IdP refresh token for exchange (it began before exchange was enabled for the resource, or the IdP issued none); the user must sign in again".into())
        })?;
        if let Some(app) = &api.app
            && app != &grant.app
        {
            return Err(Unobtainable::OtherApp(format!(
                "the downstream API '{}' is reached through the app '{app}', and this login was made through '{}'",
                api.name, grant.app
            )));
        }
        let used = self
            .exchange_refresh_token(tenant, family_id, &grant)
            .map_err(Unobtainable::Failed)?;
        let tokens = self
            .exchange_upstream(tenant, api, &grant, &used, scopes, now)
            .await
            .map_err(Unobtainable::Failed)?;
        self.keep_exchanged_refresh(tenant, family_id, family, &used, &tokens, now)
            .await;
        Ok(tokens)
    }

    /// The IdP's access token for `api` on behalf of the user of `assertion`, the IdP's own
    /// access token for the API of the app `app` (Entra's on-behalf-of flow, with that app's
    /// credentials). An IdP refusal is an error here, logged with what the IdP said.
    pub(crate) async fn on_behalf_of(
        &self,
        tenant: &Tenant,
        app: &str,
        api: &DownstreamApi,
        assertion: &str,
        now: u64,
    ) -> Result<UpstreamTokens, OAuthError> {
        let at = self.upstreams.app(tenant, app)?;
        let scopes: ScopeSet = api.scopes.iter().cloned().collect();
        self.upstreams
            .client()
            .token(
                &at,
                UpstreamGrant::OnBehalfOf {
                    assertion,
                    scopes: &scopes,
                },
                None,
                now,
            )
            .await
            .map_err(|e| {
                e.log(&tenant.id, app, "on-behalf-of");
                crate::oauth::upstream_errors::to_token_client(&e)
            })
    }

    /// The claims of the subject token: a live access token this tenant minted, for a
    /// resource the calling resource server serves and that may reach `api`.
    async fn subject_token_claims(
        &self,
        tenant: &Tenant,
        caller: &ResourceServerConfig,
        api: &DownstreamApi,
        subject_token: &str,
        now: u64,
    ) -> Result<Map<String, Value>, OAuthError> {
        let claims = match self.minter.verify(tenant, subject_token, now).await {
            Ok(c) => c,
            Err(Invalid::Keys(e)) => return Err(e.into()),
            Err(e) => {
                return Err(unacceptable_subject(format!(
                    "not a valid access token of this tenant: {e}"
                )));
            }
        };
        let audience = claims
            .get("aud")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !caller.serves(audience) {
            return Err(unacceptable_subject(
                "issued for a resource this resource server does not serve",
            ));
        }
        if !tenant
            .exchange_apis(&ResourceUri::new(audience))
            .any(|a| a.name == api.name)
        {
            return Err(invalid_target(format!(
                "the resource {audience} may not reach the downstream API '{}'; list it in the resource's exchange",
                api.name
            )));
        }
        Ok(claims)
    }

    /// The IdP refresh with the API's scopes. An IdP refusal is not a revocation here (an API
    /// without consent refuses with `invalid_grant` too): the client's login goes on.
    async fn exchange_upstream(
        &self,
        tenant: &Tenant,
        api: &DownstreamApi,
        grant: &ExchangeGrant,
        refresh_token: &str,
        scopes: &ScopeSet,
        now: u64,
    ) -> Result<UpstreamTokens, OAuthError> {
        let at = self.upstreams.app(tenant, &grant.app)?;
        let provider = Provider::of(tenant);
        let upstream_scopes = provider.refresh_scopes(scopes, at.endpoints.offers_refresh);
        let resource = provider.downstream_resource(api);
        self.upstreams
            .client()
            .token(
                &at,
                UpstreamGrant::RefreshToken {
                    refresh_token,
                    scopes: &upstream_scopes,
                },
                resource.as_deref(),
                now,
            )
            .await
            .map_err(|e| {
                e.log(&tenant.id, &grant.app, "token exchange");
                crate::oauth::upstream_errors::to_token_client(&e)
            })
    }

    /// Keeps the IdP's new refresh token, if it sent one, for the login's next refresh or
    /// exchange. A lost compare-and-swap is tried again over the family as it is now, as long
    /// as it still holds the refresh token this exchange used (else another server kept a
    /// later one, which stays).
    async fn keep_exchanged_refresh(
        &self,
        tenant: &Tenant,
        id: &FamilyId,
        family: Versioned<Family>,
        used: &str,
        tokens: &UpstreamTokens,
        now: u64,
    ) {
        let Some(new) = tokens.refresh_token.as_deref().filter(|n| *n != used) else {
            return;
        };
        let mut family = Some(family);
        for _ in 0..3 {
            let Some(current) = family.take().filter(|f| !f.value.revoked) else {
                return;
            };
            let Some(grant) = &current.value.exchange else {
                return;
            };
            if self
                .exchange_refresh_token(tenant, id, grant)
                .ok()
                .as_deref()
                != Some(used)
            {
                return;
            }
            let mut value = current.value.clone();
            value.exchange = Some(self.exchange_grant(tenant, id, &grant.app, new));
            match self
                .records
                .update(&tenant.id, id, current.revision, &value, current.expires_at)
                .await
            {
                Ok(true) => return,
                Ok(false) => {
                    family = self
                        .records
                        .get::<Family>(&tenant.id, id, now)
                        .await
                        .ok()
                        .flatten()
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant.id, family = %id.short(), error = %e, "the IdP's new refresh token from an exchange could not be kept; the login's next refresh uses the previous one");
                    return;
                }
            }
        }
    }
}

/// The upstream scopes an exchange asks for: the API's, or the subset the request names.
fn requested_scopes(api: &DownstreamApi, scope: Option<&str>) -> Result<ScopeSet, OAuthError> {
    let Some(scope) = scope.filter(|s| !s.trim().is_empty()) else {
        return Ok(api.scopes.iter().cloned().collect());
    };
    let mut out = ScopeSet::default();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !api.scopes.iter().any(|a| a == s) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("'{s}' is not a scope of the downstream API '{}'", api.name),
            ));
        }
        out.insert(s);
    }
    Ok(out)
}
