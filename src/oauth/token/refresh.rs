//! The `refresh_token` grant (OAuth 2.1 §4.3) and revocation (RFC 7009).
//!
//! `refresh`: one rotation at a time per family; check the token was issued to this client,
//! its family is live, and the request stays within the family's resource and scopes; a
//! retry within the grace window gets the response already given, a reuse after it revokes
//! the family; otherwise use the IdP's refresh token behind it (IdP `invalid_grant` revokes)
//! and rotate: successor, rotated record and family committed together.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::request::RefreshRequest;
use super::response::TokenResponse;
use crate::config::Tenant;
use crate::crypto::Handle;
use crate::domain::{ClientRecord, ScopeSet};
use crate::oauth::client_auth::ClientCredentials;
use crate::oauth::error::invalid_grant;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::minted::{minted_resource, resource_of_grant};
use crate::oauth::params::Params;
use crate::oauth::records::{Family, FamilyId, RefreshLease, RefreshRecord, RefreshState};
use crate::oauth::scopes::narrow;
use crate::oauth::server::AuthServer;
use crate::store::{Versioned, WriteGroup};
use crate::upstream::provider::Provider;
use crate::upstream::tokens::UpstreamTokens;

/// A retried refresh within this many seconds gets the same successor.
pub const REFRESH_GRACE_SECONDS: u64 = 60;

/// The successful token response the shim gave, kept sealed for grace-window retries.
#[derive(Clone, Serialize, Deserialize)]
struct IssuedResponse(TokenResponse);

fn unknown_token() -> OAuthError {
    invalid_grant("the refresh token is unknown, expired or revoked")
}

impl AuthServer {
    pub(crate) async fn refresh(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        req: RefreshRequest,
        first_look: Option<Versioned<RefreshRecord>>,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let result = self
            .refresh_steps(tenant, client, req, first_look, now)
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code.as_str(),
        };
        crate::metrics::metrics()
            .refreshes
            .with_label_values(&[tenant.id.as_str(), outcome])
            .inc();
        result
    }

    async fn refresh_steps(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        req: RefreshRequest,
        first_look: Option<Versioned<RefreshRecord>>,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let first_look = issued_to(client, first_look)?;
        // What the request alone decides is checked before anything is leased or written (a
        // token's resource never changes).
        check_resource(&first_look.value, &req)?;
        // One rotation at a time per token: a parallel request waits, then takes the grace
        // path. In this process by a lock (per family); across servers sharing the store by a
        // lease on the token's own record.
        let lock = self.families.lock(&first_look.value.family_id);
        let _guard = lock.lock().await;
        let (current, family, lease) = if self.records.backend().is_shared() {
            self.lease_token(tenant, &req.refresh_token, first_look)
                .await?
        } else {
            let (current, family) = self
                .live_refresh_record(tenant, &req.refresh_token, &first_look.value.family_id, now)
                .await?;
            (current, family, None)
        };
        let result = self
            .rotate_family(tenant, client, &req, current, family, now)
            .await;
        if let Some(lease) = lease {
            match &result {
                // The rotation replaced the leased record, or another server's rotation did
                // (a lost race answered from the grace window).
                Ok(_) => lease.disarm(),
                Err(_) => lease.release().await,
            }
        }
        result
    }

    /// Waits until no other server is rotating the token, then leases it for this one: the
    /// token's record is moved on (compare-and-swap from the revision read) with the lease's
    /// end in it, while its family is read. The lease's write is also the proof that nobody
    /// rotated the token since it was read, so the token is not read again. A token already
    /// rotated is returned without a lease (the grace path needs none).
    async fn lease_token(
        &self,
        tenant: &Tenant,
        token: &Handle,
        mut seen: Versioned<RefreshRecord>,
    ) -> Result<
        (
            Versioned<RefreshRecord>,
            Versioned<Family>,
            Option<TokenLease>,
        ),
        OAuthError,
    > {
        // Longer than a rotation can take (an IdP call bounded by the upstream timeout, 10 s by
        // default, and a few store calls bounded at 15 s each), so that a lease outlives the
        // work it guards, but not forever when its server dies.
        const LEASE_SECONDS: u64 = 120;
        // A lease only saves the IdP a second call (the rotation's compare-and-swap is what
        // makes a token rotate once), so it need not wait for the disk: deferred.
        let leases = self.records.deferred();
        let key = token.key();
        let started = std::time::Instant::now();
        loop {
            let now = wall_clock();
            let rotated = matches!(seen.value.state, RefreshState::Rotated { .. });
            // A lease ending further ahead than any lease is given was written by a server
            // whose clock runs ahead: it is not waited for.
            let held = seen
                .value
                .lease
                .as_ref()
                .is_some_and(|l| l.until > now && l.until <= now + LEASE_SECONDS);
            if !rotated && held {
                // A holder that is alive finishes well within this; one that died leaves its
                // lease to run out, and the client is told to come back rather than kept
                // waiting.
                if started.elapsed() > std::time::Duration::from_secs(20) {
                    return Err(OAuthError::new(
                        ErrorCode::TemporarilyUnavailable,
                        "another server is still refreshing this grant; try again shortly",
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                seen = self.read_token(tenant, &key).await?;
                continue;
            }
            let family_id = seen.value.family_id.clone();
            if rotated {
                // The grace path takes no lease.
                let family = self.records.get::<Family>(&tenant.id, &family_id, now);
                return Ok((seen, live(family.await?)?, None));
            }
            let leased = RefreshRecord {
                lease: Some(RefreshLease {
                    holder: crate::crypto::random_token(),
                    until: now + LEASE_SECONDS,
                }),
                ..seen.value.clone()
            };
            // Armed before the write is sent: if the request is dropped meanwhile, or the
            // write's outcome is unknown, the lease is given back if it was taken.
            let lease = TokenLease::new(&leases, tenant, &key, &leased);
            let (won, family) = tokio::join!(
                leases.update(&tenant.id, &key, seen.revision, &leased, seen.expires_at),
                self.records.get::<Family>(&tenant.id, &family_id, now),
            );
            if !won? {
                // Leased or rotated by another server since it was read.
                lease.disarm();
                seen = self.read_token(tenant, &key).await?;
                continue;
            }
            let family = match family.map_err(OAuthError::from).and_then(live) {
                Ok(family) => family,
                Err(e) => {
                    lease.release().await;
                    return Err(e);
                }
            };
            let current = Versioned {
                value: leased,
                revision: seen.revision + 1,
                expires_at: seen.expires_at,
            };
            return Ok((current, family, Some(lease)));
        }
    }

    /// The refresh token's record as stored now.
    async fn read_token(
        &self,
        tenant: &Tenant,
        key: &crate::crypto::HandleKey,
    ) -> Result<Versioned<RefreshRecord>, OAuthError> {
        self.records
            .get::<RefreshRecord>(&tenant.id, key, wall_clock())
            .await?
            .ok_or_else(unknown_token)
    }

    /// The rotation proper, with the token held.
    async fn rotate_family(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        req: &RefreshRequest,
        current: Versioned<RefreshRecord>,
        family: Versioned<Family>,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let token = &req.refresh_token;
        let rec = &current.value;
        let resource = match resource_of_grant(tenant, &rec.resource, rec.is_minted()) {
            Ok(r) => r,
            Err((cause, why)) => {
                self.families
                    .revoke(&tenant.id, &rec.family_id, cause, now)
                    .await?;
                tracing::warn!(tenant = %tenant.id, client_id = %client.client_id, resource = %rec.resource, cause,
                    "a refresh for a grant the tenant file no longer allows was refused, and its family revoked");
                return Err(invalid_grant(why));
            }
        };
        let lifetimes = tenant.grant_lifetimes(resource);
        let Some(until) = lifetimes.ends_at(family.value.created_at, now) else {
            tracing::info!(tenant = %tenant.id, client_id = %client.client_id, resource = %rec.resource,
                "a refresh after the grant's absolute lifetime was refused; the client must sign in again");
            return Err(invalid_grant(format!(
                "the login is older than the {} this tenant's grants last; sign in again",
                crate::config::grant_lifetime::readable(lifetimes.lifetime)
            )));
        };
        // What this refresh grants (RFC 6749 §6): the scopes the request names within the
        // family's, the family's when it names none of them; never more.
        let grant = narrow(resource, &rec.scopes, req.scope.as_deref());
        let sealed_upstream = match &rec.state {
            RefreshState::Rotated {
                at,
                sealed_response,
            } => {
                return self
                    .answer_retry(tenant, client, token, rec, *at, sealed_response, now)
                    .await;
            }
            RefreshState::Active { sealed_upstream } => sealed_upstream,
        };
        // A login whose tokens may be exchanged keeps the IdP's latest refresh token on its
        // family, where an exchange may have replaced it (`exchange.rs`).
        let upstream_refresh = match &family.value.exchange {
            Some(grant) => self.exchange_refresh_token(tenant, &rec.family_id, grant)?,
            None => self
                .sealer
                .unseal(token, sealed_upstream)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|_| unreadable_refresh_token(tenant, client))?,
        };
        let minted = minted_resource(tenant, &rec.resource);
        let mut claims = match minted {
            Some(_) => Some(self.minted_claims(tenant, client, token, rec)?),
            None => None,
        };
        let mut tokens = match minted {
            Some(m) if !m.refreshes_upstream() => UpstreamTokens::none(),
            _ => {
                self.refresh_upstream(tenant, rec, &grant.upstream, &upstream_refresh, now)
                    .await?
            }
        };
        if let (Some(resource), Some(claims)) = (minted, claims.as_mut()) {
            self.mint_refreshed(
                tenant,
                resource,
                rec,
                &family.value,
                &grant.names,
                claims,
                &mut tokens,
                now,
            )
            .await?;
        }
        let Some(response) = self
            .rotate(
                tenant,
                token,
                &current,
                family,
                &tokens,
                &grant.names,
                upstream_refresh,
                claims.as_ref(),
                now,
                until,
            )
            .await?
        else {
            // Another server rotated it first (a lease that ran out), or the grant was revoked:
            // its answer within the grace window, else the refusal.
            return match self.read_token(tenant, &token.key()).await?.value.state {
                RefreshState::Rotated {
                    at,
                    sealed_response,
                } => {
                    self.answer_retry(tenant, client, token, rec, at, &sealed_response, now)
                        .await
                }
                RefreshState::Active { .. } => Err(invalid_grant(
                    "the refresh token's grant was revoked while it was being refreshed",
                )),
            };
        };
        tracing::info!(target: "audit", event = "token_issued", grant = "refresh_token", tenant = %tenant.id, client_id = %client.client_id, app = %rec.app);
        Ok(response)
    }

    /// The refresh token's record read again under the family lock, and its family, which
    /// must not be revoked. Both are read at once: the family is the one the first look
    /// found, and the token's family never changes.
    async fn live_refresh_record(
        &self,
        tenant: &Tenant,
        token: &Handle,
        family_id: &FamilyId,
        now: u64,
    ) -> Result<(Versioned<RefreshRecord>, Versioned<Family>), OAuthError> {
        let token_key = token.key();
        let (current, family) = tokio::join!(
            self.records
                .get::<RefreshRecord>(&tenant.id, &token_key, now),
            self.records.get::<Family>(&tenant.id, family_id, now),
        );
        let (Some(current), family) = (current?, family?) else {
            return Err(unknown_token());
        };
        if current.value.family_id != *family_id {
            return Err(unknown_token());
        }
        Ok((current, live(family)?))
    }

    /// A used refresh token: within the grace window, the response given then (the rotation
    /// may still be waiting for its flush: the successor is on disk before it is handed out);
    /// after it, a reuse, and the whole family is revoked (OAuth 2.1 §4.3.1).
    #[allow(clippy::too_many_arguments)]
    async fn answer_retry(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        token: &Handle,
        rec: &RefreshRecord,
        rotated_at: u64,
        sealed_response: &str,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        if now <= rotated_at + REFRESH_GRACE_SECONDS {
            let issued: IssuedResponse = self
                .sealer
                .unseal(token, sealed_response)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| unreadable_refresh_token(tenant, client))?;
            self.records.flush().await?;
            return Ok(issued.0);
        }
        self.families
            .revoke(&tenant.id, &rec.family_id, "refresh_reuse", now)
            .await?;
        crate::metrics::metrics()
            .reuse_detected
            .with_label_values(&[tenant.id.as_str()])
            .inc();
        tracing::warn!(target: "audit", event = "refresh_reuse", tenant = %tenant.id, client_id = %client.client_id, family = %rec.family_id.short());
        Err(invalid_grant(
            "the refresh token was already used; every token of this login is now revoked",
        ))
    }

    /// Uses the IdP's refresh token; an IdP `invalid_grant` revokes the family.
    async fn refresh_upstream(
        &self,
        tenant: &Tenant,
        rec: &RefreshRecord,
        granted_upstream: &ScopeSet,
        upstream_refresh: &str,
        now: u64,
    ) -> Result<UpstreamTokens, OAuthError> {
        let (endpoints, app) = self.upstream_app(tenant, &rec.app)?;
        let scopes =
            Provider::of(tenant).refresh_scopes(granted_upstream, endpoints.offers_refresh);
        let resource = crate::oauth::authorize::upstream_resource(tenant, &rec.resource);
        match self
            .upstream()
            .refresh(
                tenant,
                &endpoints,
                app,
                upstream_refresh,
                &scopes,
                resource.as_deref(),
                now,
            )
            .await
        {
            Ok(t) => Ok(t),
            Err(e) => {
                e.log(&tenant.id, &rec.app, "refresh");
                if e.is_invalid_grant() {
                    self.families
                        .revoke(&tenant.id, &rec.family_id, "idp_refused", now)
                        .await?;
                }
                Err(crate::oauth::upstream_errors::to_token_client(&e))
            }
        }
    }

    /// Hands out a successor: successor, rotation and family commit together and durably
    /// before the answer. `None` (nothing written) if the token was rotated or its family
    /// changed (revoked) since they were read.
    #[allow(clippy::too_many_arguments)]
    async fn rotate(
        &self,
        tenant: &Tenant,
        token: &Handle,
        current: &Versioned<RefreshRecord>,
        family: Versioned<Family>,
        tokens: &UpstreamTokens,
        granted: &ScopeSet,
        upstream_refresh: String,
        minted_claims: Option<&Map<String, Value>>,
        now: u64,
        until: u64,
    ) -> Result<Option<TokenResponse>, OAuthError> {
        let rec = &current.value;
        let successor = Handle::generate();
        let next_upstream = tokens.refresh_token.clone().unwrap_or(upstream_refresh);
        let next = RefreshRecord {
            issued_at: now,
            state: RefreshState::Active {
                sealed_upstream: self.sealer.seal(&successor, next_upstream.as_bytes()),
            },
            lease: None,
            sealed_claims: minted_claims.map(|c| self.seal_minted_claims(&successor, c)),
            ..rec.clone()
        };
        let response = TokenResponse::bearer(tokens, granted).with_refresh_token(&successor);
        let rotated = RefreshRecord {
            state: RefreshState::Rotated {
                at: now,
                sealed_response: self.sealer.seal(
                    token,
                    &serde_json::to_vec(&IssuedResponse(response.clone())).unwrap_or_default(),
                ),
            },
            lease: None,
            ..rec.clone()
        };
        let expires = Some(until);
        // The IdP's new refresh token for the family's exchange copy, sealed once for every
        // attempt below.
        let exchange = match (&family.value.exchange, &tokens.refresh_token) {
            (Some(_), Some(new)) => {
                Some(self.exchange_grant(tenant, &rec.family_id, &rec.app, new))
            }
            _ => None,
        };
        let mut family = family;
        // The family may move while the IdP is called without the token moving: a token
        // exchange on another server kept the IdP's new refresh token on it. Then the rotation
        // is written again over the family as it is now; anything else (the token rotated, the
        // family revoked) ends it.
        for _ in 0..3 {
            let mut value = family.value.clone();
            value.created_at = value.created_at.min(now);
            if value.exchange.is_some() && exchange.is_some() {
                value.exchange.clone_from(&exchange);
            }
            let mut group = WriteGroup::default();
            group
                .insert_new(&tenant.id, &successor.key(), &next, expires)?
                .update(
                    &tenant.id,
                    &token.key(),
                    current.revision,
                    &rotated,
                    current.expires_at,
                )?
                .update(&tenant.id, &rec.family_id, family.revision, &value, expires)?;
            if self.records.write_all(group, now).await? {
                return Ok(Some(response));
            }
            let token_key = token.key();
            let (token_now, family_now) = tokio::join!(
                self.records
                    .get::<RefreshRecord>(&tenant.id, &token_key, now),
                self.records.get::<Family>(&tenant.id, &rec.family_id, now),
            );
            match (token_now?, family_now?) {
                (Some(t), Some(f)) if t.revision == current.revision && !f.value.revoked => {
                    family = f;
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// `POST /{tenant}/revoke` (RFC 7009 §2): revokes the family of a refresh token, or of a
    /// minted access token (its `sid`), issued to the requesting client; unknown tokens and the
    /// IdP's access tokens (which the shim cannot revoke) are answered with success.
    pub(crate) async fn revoke(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        now: u64,
    ) -> Result<(), OAuthError> {
        form.refuse_repeated()?;
        let token = form
            .get("token")
            .map(Handle::presented)
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let client = self.authenticate_client(tenant, form, creds, now).await?;
        if let Some(rec) = self
            .records
            .get::<RefreshRecord>(&tenant.id, &token.key(), now)
            .await?
            && rec.value.client_id == client.client_id
        {
            self.families
                .revoke(&tenant.id, &rec.value.family_id, "client_revoked", now)
                .await?;
        } else if let Some(family) = self
            .minted_token_login(tenant, token.expose(), &client.client_id, now)
            .await?
        {
            self.families
                .revoke(&tenant.id, &family, "client_revoked", now)
                .await?;
        }
        Ok(())
    }
}

/// A refresh may name the family's resource again (RFC 8707 §2.2, compared in normalized form).
fn check_resource(rec: &RefreshRecord, req: &RefreshRequest) -> Result<(), OAuthError> {
    if let Some(res) = req.resource.as_deref()
        && !rec.resource.matches(res)
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the one this refresh token was issued for",
        ));
    }
    Ok(())
}

/// A refresh token whose sealed data no key opens: the server secret changed without
/// `--previous-secret-file`. The client must log in again; the operator learns why.
fn unreadable_refresh_token(tenant: &Tenant, client: &ClientRecord) -> OAuthError {
    tracing::warn!(tenant = %tenant.id, client_id = %client.client_id,
        "a refresh token's sealed data cannot be opened with the server secret: the secret changed without --previous-secret-file naming the old one; the client must sign in again");
    invalid_grant("the refresh token can no longer be read by this server; sign in again")
}

/// The refresh token as first read, which must have been issued to this client.
fn issued_to(
    client: &ClientRecord,
    first_look: Option<Versioned<RefreshRecord>>,
) -> Result<Versioned<RefreshRecord>, OAuthError> {
    let Some(first_look) = first_look else {
        return Err(unknown_token());
    };
    if first_look.value.client_id != client.client_id {
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    Ok(first_look)
}

/// Seconds since the Unix epoch now (a lease is timed by the clock while it waits, not by the
/// request's start).
fn wall_clock() -> u64 {
    crate::clock::unix_now()
}

/// A token leased in a shared store (`lease_token`). Given back (the record written again
/// without the lease, if it still holds this lease) when the rotation fails, and also when the
/// request is dropped midway (a client that hangs up), so that the token's next refresh need
/// not wait for the lease to run out; a successful rotation replaces the record and disarms it.
struct TokenLease {
    records: crate::store::Records,
    tenant: crate::domain::TenantId,
    key: crate::crypto::HandleKey,
    holder: String,
    armed: bool,
}

impl TokenLease {
    fn new(
        records: &crate::store::Records,
        tenant: &Tenant,
        key: &crate::crypto::HandleKey,
        leased: &RefreshRecord,
    ) -> Self {
        Self {
            records: records.clone(),
            tenant: tenant.id.clone(),
            key: key.clone(),
            holder: leased
                .lease
                .as_ref()
                .map(|l| l.holder.clone())
                .unwrap_or_default(),
            armed: true,
        }
    }

    fn disarm(mut self) {
        self.armed = false;
    }

    async fn release(mut self) {
        self.give_back().await;
        // Only now: if the write above is cancelled, the drop still gives the lease back.
        self.armed = false;
    }

    /// Writes the record back without the lease if it still holds this one (a lease that ran
    /// out and was taken by another server is theirs; a record never leased is left alone).
    fn give_back(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (records, tenant, key, holder) = (
            self.records.clone(),
            self.tenant.clone(),
            self.key.clone(),
            self.holder.clone(),
        );
        async move {
            let given_back = async {
                let Some(current) = records
                    .get::<RefreshRecord>(&tenant, &key, wall_clock())
                    .await?
                else {
                    return Ok(true);
                };
                if current
                    .value
                    .lease
                    .as_ref()
                    .is_none_or(|l| l.holder != holder)
                {
                    return Ok(true);
                }
                let value = RefreshRecord {
                    lease: None,
                    ..current.value
                };
                records
                    .update(&tenant, &key, current.revision, &value, current.expires_at)
                    .await
            };
            match given_back.await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(tenant = %tenant, "refresh lease not given back: the token changed meanwhile");
                }
                // It runs out by itself; meanwhile the token's next refresh waits for it.
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "refresh lease not given back")
                }
            }
        }
    }
}

impl Drop for TokenLease {
    fn drop(&mut self) {
        if self.armed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(self.give_back());
        }
    }
}

/// The family, if it is still live.
fn live(family: Option<Versioned<Family>>) -> Result<Versioned<Family>, OAuthError> {
    family
        .filter(|f| !f.value.revoked)
        .ok_or_else(|| invalid_grant("the refresh token has been revoked"))
}
