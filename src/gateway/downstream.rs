//! A token for the backend's downstream API on the caller's behalf (`[resources.gateway]
//! downstream_api`): the IdP's access token for one of the tenant's `[[downstream_apis]]`,
//! obtained for a minted resource with the login's IdP refresh token as token exchange obtains
//! it (`Tokens::downstream_token`), for a passthrough resource by Entra's on-behalf-of flow
//! with the caller's own token (`Tokens::on_behalf_of`), and sent to the MCP server in
//! `DOWNSTREAM_HEADER`. Kept per login (or caller's token) and API in this replica until a
//! minute before it expires, and never past the caller's token, so that a busy session does
//! not cost a call to the IdP per tool call; the gateway admits a call only for a live login,
//! so a revoked login's kept token is never sent again.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::admission::Caller;
use crate::config::Tenant;
use crate::config::downstream_api::DownstreamApi;
use crate::oauth::AuthServer;
use crate::oauth::records::FamilyId;
use crate::oauth::token::exchange::Unobtainable;
use crate::upstream::tokens::UpstreamTokens;

/// The header that carries the downstream API's token to the MCP server.
pub(crate) const DOWNSTREAM_HEADER: &str = "x-dcr-shim-downstream-token";

/// A kept token is not sent in its last minute (or last half, if it lives less than two):
/// the MCP server needs time to use it.
const MARGIN: u64 = 60;
/// The longest an IdP's token is kept, whatever lifetime it says.
const LONGEST: u64 = 24 * 3600;
/// A token the IdP gives no lifetime for is kept this long.
const UNSAID_LIFETIME: u64 = 300;
/// The most tokens kept in this replica (the oldest go first past it).
const MAX_KEPT: u64 = 100_000;

/// (tenant, login, API).
type Key = (String, String, String);
/// Held while one call obtains the token of a key.
type Gate = std::sync::Arc<tokio::sync::Mutex<()>>;

/// Downstream tokens kept per (tenant, login, API).
pub(crate) struct DownstreamTokens {
    kept: moka::future::Cache<Key, (String, u64)>,
    /// One IdP call at a time per login and API in this replica: concurrent calls of one
    /// session wait for the first's token instead of each spending the refresh token.
    fetching: Mutex<std::collections::HashMap<Key, Gate>>,
}

impl Default for DownstreamTokens {
    fn default() -> Self {
        Self {
            kept: moka::future::Cache::builder()
                .max_capacity(MAX_KEPT)
                .time_to_live(Duration::from_secs(24 * 3600))
                .build(),
            fetching: Mutex::default(),
        }
    }
}

/// Why the MCP server's downstream token could not be had.
pub(crate) enum Missing {
    /// The caller's login cannot be used for it: the user must sign in again (401).
    SignIn(String),
    /// The IdP or the store failed, or the tenant file is wrong (502), and why.
    Failed(String),
}

impl DownstreamTokens {
    /// The header with `caller`'s token for the API named `api_name`; `on_behalf_of` names
    /// the app whose credentials exchange the caller's own `bearer` token (passthrough).
    pub(crate) async fn header(
        &self,
        auth: &AuthServer,
        (tenant, api_name, on_behalf_of): (&Tenant, &str, Option<&str>),
        caller: &Caller,
        bearer: &str,
        now: u64,
    ) -> Result<Option<(&'static str, String)>, Missing> {
        let Some(api) = tenant.downstream_api(None, Some(api_name)) else {
            return Err(Missing::Failed(format!(
                "the downstream API '{api_name}' is not in the tenant file"
            )));
        };
        // Whose token it is: the login's, or for on-behalf-of the caller's token's itself (and
        // the app that asks, so that a reload naming another one asks again).
        let holder = match on_behalf_of {
            Some(_) if bearer.is_empty() => {
                return Err(Missing::SignIn(
                    "no bearer token to act on behalf of".into(),
                ));
            }
            Some(app) => format!("obo {app} {}", crate::crypto::sha256_hex(bearer)),
            // A machine client's token (no login): there is no user to act for, and the MCP
            // server learns from the identity that the caller is the machine itself.
            None if caller.text("sid").is_empty() => return Ok(None),
            None => caller.text("sid").to_owned(),
        };
        let key = (tenant.id.to_string(), holder, api.name.clone());
        if let Some(token) = self.fresh(&key, now).await {
            return Ok(Some((DOWNSTREAM_HEADER, token)));
        }
        let gate = self.gate(&key);
        let _one = gate.lock().await;
        if let Some(token) = self.fresh(&key, now).await {
            return Ok(Some((DOWNSTREAM_HEADER, token)));
        }
        let token = match on_behalf_of {
            Some(app) => obtain_on_behalf_of(auth, tenant, app, api, bearer, now).await?,
            None => fetch(auth, tenant, api, caller, now).await?,
        };
        // Never kept past the caller's own token.
        let caller_exp = caller.claims.get("exp").and_then(Value::as_u64);
        let lifetime = token.1.unwrap_or(UNSAID_LIFETIME).min(LONGEST);
        let send_until = now
            .saturating_add(lifetime - (lifetime / 2).min(MARGIN))
            .min(caller_exp.unwrap_or(u64::MAX));
        self.kept.insert(key, (token.0.clone(), send_until)).await;
        Ok(Some((DOWNSTREAM_HEADER, token.0)))
    }

    async fn fresh(&self, key: &Key, now: u64) -> Option<String> {
        self.kept
            .get(key)
            .await
            .filter(|(_, send_until)| now < *send_until)
            .map(|(token, _)| token)
    }

    fn gate(&self, key: &Key) -> Gate {
        let mut gates = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        // Gates nobody holds are dropped when they pile up.
        if gates.len() > 10_000 {
            gates.retain(|_, g| std::sync::Arc::strong_count(g) > 1);
        }
        gates.entry(key.clone()).or_default().clone()
    }
}

/// The IdP's token for `api` on behalf of the caller's own token `bearer`, by the app `app`.
async fn obtain_on_behalf_of(
    auth: &AuthServer,
    tenant: &Tenant,
    app: &str,
    api: &DownstreamApi,
    bearer: &str,
    now: u64,
) -> Result<(String, Option<u64>), Missing> {
    let tokens = auth
        .tokens()
        .on_behalf_of(tenant, app, api, bearer, now)
        .await
        .map_err(|e| match e.code {
            // The user must sign in again (a policy of the downstream API, consent): 401, so
            // that the client does, rather than a 502 it cannot act on.
            crate::oauth::error::ErrorCode::InvalidGrant => Missing::SignIn(e.description),
            _ => Missing::Failed(e.description),
        })?;
    Ok(with_lifetime(tokens, now))
}

/// The IdP's token for `api` on behalf of `caller`'s login, and its lifetime in seconds.
async fn fetch(
    auth: &AuthServer,
    tenant: &Tenant,
    api: &DownstreamApi,
    caller: &Caller,
    now: u64,
) -> Result<(String, Option<u64>), Missing> {
    let scopes = api.scopes.iter().cloned().collect();
    let family = FamilyId::from_admin(caller.text("sid"));
    let tokens = auth
        .tokens()
        .downstream_token(tenant, &family, caller.text("client_id"), api, &scopes, now)
        .await
        .map_err(|refused| match refused {
            Unobtainable::Login(why) => Missing::SignIn(why),
            Unobtainable::OtherApp(why) => Missing::Failed(why),
            Unobtainable::Failed(e) => Missing::Failed(e.description),
        })?;
    Ok(with_lifetime(tokens, now))
}

/// The IdP's access token and its lifetime in seconds: `expires_in`, else the `exp` of a JWT.
fn with_lifetime(tokens: UpstreamTokens, now: u64) -> (String, Option<u64>) {
    let lifetime = tokens.expires_in.or_else(|| {
        crate::crypto::jwt::unverified_claims::<serde_json::Map<String, Value>>(
            &tokens.access_token,
        )
        .ok()
        .and_then(|c| c.get("exp").and_then(Value::as_u64))
        .map(|exp| exp.saturating_sub(now))
    });
    (tokens.access_token, lifetime)
}
