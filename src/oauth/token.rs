//! The token endpoint (OAuth 2.1 §3.2, §4.1.3, §4.3) and revocation (RFC 7009).
//!
//! `authorization_code`: authenticate the client, claim the code once (a replay revokes the
//! family it started), check client, redirect_uri and PKCE, hand out the IdP's access token
//! (passthrough) and the shim's own refresh token. `refresh_token`: rotate on every use; a
//! retry within the grace window gets the same successor; reuse after it revokes the family;
//! the IdP's refresh token behind it is used and replaced; IdP `invalid_grant` revokes.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::records::{AuthCode, Family, RefreshRecord, RefreshState};
use super::server::AuthServer;
use crate::config::Tenant;
use crate::crypto::{Handle, pkce, random_token};
use crate::domain::ClientRecord;
use crate::upstream::tokens::UpstreamTokens;

/// A retried refresh within this many seconds gets the same successor.
pub const REFRESH_GRACE_SECONDS: u64 = 60;
/// A refresh token unused this long expires.
pub const REFRESH_TOKEN_SECONDS: u64 = 90 * 24 * 3600;

/// What the client presented to authenticate (RFC 6749 §2.3).
pub struct ClientCredentials {
    /// From an `Authorization: Basic` header, already decoded.
    pub basic: Option<(String, String)>,
}

/// Decodes an `Authorization: Basic` value (RFC 6749 §2.3.1: form-encoded id and secret).
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

/// The successful token response the shim gives, kept sealed for grace-window retries.
#[derive(Clone, Serialize, Deserialize)]
struct IssuedResponse(Value);

fn invalid_grant(why: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, why)
}

impl AuthServer {
    /// Authenticates the client of a token or revocation request.
    pub async fn authenticate_client(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        now: u64,
    ) -> Result<ClientRecord, OAuthError> {
        let invalid = |why: &str| OAuthError::new(ErrorCode::InvalidClient, why);
        let form_id = form.get("client_id");
        let form_secret = form.get("client_secret");
        let (client_id, secret) = match (&creds.basic, form_id, form_secret) {
            (Some(_), _, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not both Basic and client_secret",
                ));
            }
            (Some((id, _)), Some(f), _) if f != id => {
                return Err(OAuthError::invalid_request(
                    "client_id differs between the Authorization header and the body",
                ));
            }
            (Some((id, s)), _, None) => (id.as_str(), Some(s.as_str())),
            (None, Some(id), s) => (id, s),
            (None, None, _) => return Err(invalid("client authentication failed: no client_id")),
        };
        let client = self
            .registry
            .find(tenant, client_id, now)
            .await?
            .ok_or_else(|| invalid("client authentication failed: unknown client"))?;
        match (&client.secret_sha256, secret) {
            (Some(hash), Some(s)) if hash.matches(&Handle::presented(s)) => Ok(client),
            (Some(_), _) => Err(invalid(
                "client authentication failed: wrong or missing client secret",
            )),
            (None, None) => Ok(client),
            (None, Some(_)) => Err(invalid(
                "client authentication failed: this is a public client and has no secret",
            )),
        }
    }

    /// `POST /{tenant}/token`.
    pub async fn token(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        now: u64,
    ) -> Result<Value, OAuthError> {
        if let Some(name) = form.repeated.first() {
            return Err(OAuthError::invalid_request(format!(
                "the parameter {name} is repeated"
            )));
        }
        let grant_type = form
            .get("grant_type")
            .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
        if !matches!(grant_type, "authorization_code" | "refresh_token") {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type '{grant_type}' is not supported"),
            ));
        }
        let client = self.authenticate_client(tenant, form, creds, now).await?;
        let response = match grant_type {
            "authorization_code" => self.redeem_code(tenant, &client, form, now).await?,
            _ => self.refresh(tenant, &client, form, now).await?,
        };
        if client.cimd_host().is_none() {
            self.registry.touch(tenant, &client.client_id, now).await?;
        }
        Ok(response)
    }

    async fn redeem_code(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        form: &Params,
        now: u64,
    ) -> Result<Value, OAuthError> {
        let code = form
            .get("code")
            .map(Handle::presented)
            .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
        let id = code.key();
        let Some(mut current) = self
            .records
            .get::<AuthCode>(&tenant.id, id.as_str(), now)
            .await?
        else {
            return Err(invalid_grant(
                "the authorization code is unknown or expired",
            ));
        };
        let r = current.value.request.clone();
        if current.value.used {
            if let Some(family) = &current.value.family_id {
                self.revoke_family(tenant, family, now).await?;
            }
            tracing::warn!(target: "audit", event = "code_replayed", tenant = %tenant.id, client_id = %client.client_id);
            return Err(invalid_grant(
                "the authorization code was already used; the tokens issued for it are revoked",
            ));
        }
        if r.client_id != client.client_id {
            return Err(invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        if current.value.valid_until <= now {
            return Err(invalid_grant("the authorization code has expired"));
        }
        match form.get("redirect_uri") {
            Some(u) if u != r.redirect_uri => {
                return Err(invalid_grant(
                    "redirect_uri does not match the authorization request",
                ));
            }
            None if r.redirect_uri_given => {
                return Err(OAuthError::invalid_request(
                    "redirect_uri is required because the authorization request had one",
                ));
            }
            _ => {}
        }
        if let Some(res) = form.get("resource")
            && res != r.resource
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource differs from the authorization request",
            ));
        }
        let verifier = form
            .get("code_verifier")
            .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
        if !pkce::verify(verifier, &r.code_challenge) {
            return Err(invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let tokens: UpstreamTokens = self
            .sealer
            .unseal(&code, &current.value.sealed_tokens)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(OAuthError::server_error)?;
        // Refresh tokens only where the consent page said so (decided at authorize time).
        let wants_refresh = r.offline_access && tokens.refresh_token.is_some();
        let family_id = wants_refresh.then(random_token);
        // Family, claim and refresh token are written in this order and flushed once before the
        // answer. If a crash kept only some of them, no tokens were handed out, and a retry of
        // the code counts as a replay.
        let batch = self.records.deferred();
        // The family exists before the code is claimed, so that a replay racing this
        // redemption always finds something to revoke.
        if let Some(f) = &family_id {
            let family = Family {
                client_id: client.client_id.clone(),
                revoked: false,
                created_at: now,
            };
            let expires = Some(now + REFRESH_TOKEN_SECONDS);
            if !batch
                .insert_new(&tenant.id, f, &family, expires, now)
                .await?
            {
                tracing::error!(tenant = %tenant.id, "a new refresh family collided with a stored id");
                return Err(OAuthError::server_error());
            }
        }
        current.value.used = true;
        current.value.family_id = family_id.clone();
        // Claiming the code is the compare-and-swap: of two concurrent redemptions one wins.
        let claimed = batch
            .update(
                &tenant.id,
                id.as_str(),
                current.revision,
                &current.value,
                current.expires_at,
            )
            .await?;
        if !claimed {
            if let Some(f) = &family_id {
                self.revoke_family(tenant, f, now).await?;
            }
            if let Some(latest) = self
                .records
                .get::<AuthCode>(&tenant.id, id.as_str(), now)
                .await?
                && let Some(f) = latest.value.family_id
            {
                self.revoke_family(tenant, &f, now).await?;
            }
            return Err(invalid_grant("the authorization code was already used"));
        }
        let mut response = json!({
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "scope": r.scopes.join(" "),
        });
        if let Some(e) = tokens.expires_in {
            response["expires_in"] = json!(e);
        }
        if let (Some(family_id), Some(upstream_refresh)) = (family_id, &tokens.refresh_token) {
            let refresh = Handle::generate();
            let record = RefreshRecord {
                family_id,
                client_id: client.client_id.clone(),
                resource: r.resource.clone(),
                scopes: r.scopes.clone(),
                upstream_scopes: r.upstream_scopes.clone(),
                app: r.app.clone(),
                issued_at: now,
                state: RefreshState::Active {
                    sealed_upstream: self.sealer.seal(&refresh, upstream_refresh.as_bytes()),
                },
            };
            let expires = Some(now + REFRESH_TOKEN_SECONDS);
            if !batch
                .insert_new(&tenant.id, refresh.key().as_str(), &record, expires, now)
                .await?
            {
                tracing::error!(tenant = %tenant.id, "a new refresh token collided with a stored id");
                return Err(OAuthError::server_error());
            }
            response["refresh_token"] = json!(refresh.expose());
        }
        batch.flush().await?;
        tracing::info!(target: "audit", event = "token_issued", grant = "authorization_code", tenant = %tenant.id, client_id = %client.client_id,
            app = %r.app, subject = current.value.subject.as_deref().unwrap_or(""), refresh = response.get("refresh_token").is_some());
        Ok(response)
    }

    async fn refresh(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        form: &Params,
        now: u64,
    ) -> Result<Value, OAuthError> {
        let token = form
            .get("refresh_token")
            .map(Handle::presented)
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let id = token.key();
        let Some(first_look) = self
            .records
            .get::<RefreshRecord>(&tenant.id, id.as_str(), now)
            .await?
        else {
            return Err(invalid_grant(
                "the refresh token is unknown, expired or revoked",
            ));
        };
        if first_look.value.client_id != client.client_id {
            return Err(invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        // One rotation at a time per family: a parallel request waits, then takes the grace path.
        let lock = self.family_lock(&first_look.value.family_id);
        let _guard = lock.lock().await;
        let Some(current) = self
            .records
            .get::<RefreshRecord>(&tenant.id, id.as_str(), now)
            .await?
        else {
            return Err(invalid_grant(
                "the refresh token is unknown, expired or revoked",
            ));
        };
        let rec = &current.value;
        let family = self
            .records
            .get::<Family>(&tenant.id, &rec.family_id, now)
            .await?;
        if family.as_ref().is_none_or(|f| f.value.revoked) {
            return Err(invalid_grant("the refresh token has been revoked"));
        }
        if let Some(res) = form.get("resource")
            && res != rec.resource
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource differs from the one this refresh token was issued for",
            ));
        }
        if let Some(scope) = form.get("scope")
            && let Some(extra) = scope
                .split(' ')
                .find(|s| !rec.scopes.iter().any(|g| g == s) && *s != "offline_access")
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!(
                    "'{extra}' was not granted to this refresh token; ask for it with a new authorization"
                ),
            ));
        }
        let sealed_upstream = match &rec.state {
            RefreshState::Rotated {
                at,
                sealed_response,
            } => {
                if now <= at + REFRESH_GRACE_SECONDS {
                    let issued: IssuedResponse = self
                        .sealer
                        .unseal(&token, sealed_response)
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok())
                        .ok_or_else(OAuthError::server_error)?;
                    // The request that rotated may still be waiting for its flush (or may have
                    // gone away before it): the successor is on disk before it is handed out.
                    self.records.flush().await?;
                    return Ok(issued.0);
                }
                self.revoke_family(tenant, &rec.family_id, now).await?;
                tracing::warn!(target: "audit", event = "refresh_reuse", tenant = %tenant.id, client_id = %client.client_id, family = %&rec.family_id[..8]);
                return Err(invalid_grant(
                    "the refresh token was already used; every token of this login is now revoked",
                ));
            }
            RefreshState::Active { sealed_upstream } => sealed_upstream,
        };
        let upstream_refresh = self
            .sealer
            .unseal(&token, sealed_upstream)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|_| OAuthError::server_error())?;
        let (Ok(endpoints), Some(app)) = (self.upstreams.endpoints(tenant), tenant.app(&rec.app))
        else {
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the identity provider is not reachable right now",
            ));
        };
        let mut scopes = rec.upstream_scopes.clone();
        if endpoints.offers_refresh {
            scopes.push("offline_access".into());
        }
        let resource = self.upstream_resource(tenant, &rec.resource);
        let tokens = match self
            .upstream
            .refresh(
                tenant,
                &endpoints,
                app,
                &upstream_refresh,
                &scopes,
                resource.as_deref(),
                now,
            )
            .await
        {
            Ok(t) => t,
            Err(e) => {
                e.log(&tenant.id, &rec.app, "refresh");
                if e.is_invalid_grant() {
                    self.revoke_family(tenant, &rec.family_id, now).await?;
                }
                return Err(e.to_client());
            }
        };
        let successor = Handle::generate();
        let next_upstream = tokens.refresh_token.clone().unwrap_or(upstream_refresh);
        let next = RefreshRecord {
            issued_at: now,
            state: RefreshState::Active {
                sealed_upstream: self.sealer.seal(&successor, next_upstream.as_bytes()),
            },
            ..rec.clone()
        };
        // Successor, rotation and family are written in this order and flushed once before the
        // answer. If a crash kept only some of them, the worst outcome is a client that must
        // sign in again, never a token that works twice.
        let batch = self.records.deferred();
        if !batch
            .insert_new(
                &tenant.id,
                successor.key().as_str(),
                &next,
                Some(now + REFRESH_TOKEN_SECONDS),
                now,
            )
            .await?
        {
            tracing::error!(tenant = %tenant.id, "the successor refresh token collided with a stored id");
            return Err(OAuthError::server_error());
        }
        let mut response = json!({
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "scope": rec.scopes.join(" "),
            "refresh_token": successor.expose(),
        });
        if let Some(e) = tokens.expires_in {
            response["expires_in"] = json!(e);
        }
        let rotated = RefreshRecord {
            state: RefreshState::Rotated {
                at: now,
                sealed_response: self.sealer.seal(
                    &token,
                    &serde_json::to_vec(&IssuedResponse(response.clone())).unwrap_or_default(),
                ),
            },
            ..rec.clone()
        };
        if !batch
            .update(
                &tenant.id,
                id.as_str(),
                current.revision,
                &rotated,
                current.expires_at,
            )
            .await?
        {
            let _ = self
                .records
                .remove::<RefreshRecord>(&tenant.id, successor.key().as_str())
                .await;
            return Err(invalid_grant(
                "the refresh token was used concurrently; retry",
            ));
        }
        if let Some(f) = family {
            let mut value = f.value;
            value.created_at = value.created_at.min(now);
            let _ = batch
                .update(
                    &tenant.id,
                    &rec.family_id,
                    f.revision,
                    &value,
                    Some(now + REFRESH_TOKEN_SECONDS),
                )
                .await;
        }
        batch.flush().await?;
        tracing::info!(target: "audit", event = "token_issued", grant = "refresh_token", tenant = %tenant.id, client_id = %client.client_id, app = %rec.app);
        Ok(response)
    }

    /// Marks a refresh family revoked; every token of it is refused from then on.
    pub async fn revoke_family(
        &self,
        tenant: &Tenant,
        family_id: &str,
        now: u64,
    ) -> Result<(), OAuthError> {
        loop {
            let Some(f) = self
                .records
                .get::<Family>(&tenant.id, family_id, now)
                .await?
            else {
                return Ok(());
            };
            if f.value.revoked {
                // Revoked by another request that may not have flushed yet.
                self.records.flush().await?;
                return Ok(());
            }
            let mut value = f.value;
            value.revoked = true;
            if self
                .records
                .update(&tenant.id, family_id, f.revision, &value, f.expires_at)
                .await?
            {
                tracing::info!(target: "audit", event = "refresh_family_revoked", tenant = %tenant.id, client_id = %value.client_id);
                return Ok(());
            }
        }
    }

    /// `POST /{tenant}/revoke` (RFC 7009 §2): revokes a refresh token's family; unknown tokens
    /// and access tokens (the IdP's, which the shim cannot revoke) are answered with success.
    pub async fn revoke(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        now: u64,
    ) -> Result<(), OAuthError> {
        if let Some(name) = form.repeated.first() {
            return Err(OAuthError::invalid_request(format!(
                "the parameter {name} is repeated"
            )));
        }
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let client = self.authenticate_client(tenant, form, creds, now).await?;
        if let Some(rec) = self
            .records
            .get::<RefreshRecord>(&tenant.id, Handle::presented(token).key().as_str(), now)
            .await?
            && rec.value.client_id == client.client_id
        {
            self.revoke_family(tenant, &rec.value.family_id, now)
                .await?;
        }
        Ok(())
    }
}
