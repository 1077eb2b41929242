//! The `refresh_token` grant (OAuth 2.1 §4.3) and revocation (RFC 7009).
//!
//! `refresh`: one rotation at a time per family; check the token was issued to this client,
//! its family is live, and the request stays within the family's resource and scopes; a
//! retry within the grace window gets the response already given, a reuse after it revokes
//! the family; otherwise use the IdP's refresh token behind it (IdP `invalid_grant` revokes)
//! and rotate: successor, rotated record and family committed together.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Tokens;
use super::dpop_binding::{bound_for, invalid_dpop_proof};
use super::response::TokenResponse;
use crate::config::Tenant;
use crate::config::resource::{MintedResource, ResourceConfig};
use crate::crypto::{Handle, HandleKey};
use crate::domain::{ClientRecord, ScopeSet};
use crate::oauth::error::invalid_grant;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::minted::{TokenSubject, copied_claims, minted_resource, resource_of_grant};
use crate::oauth::params::Params;
use crate::oauth::records::{
    ExchangeGrant, Family, FamilyId, RefreshLease, RefreshRecord, RefreshState,
};
use crate::oauth::scopes::{ScopeGrant, narrow};
use crate::store::{Versioned, WriteGroup};
use crate::upstream::id_token::check_id_token;
use crate::upstream::provider::Provider;
use crate::upstream::tokens::{UpstreamGrant, UpstreamTokens};

/// A retried refresh within this many seconds gets the same successor.
pub const REFRESH_GRACE_SECONDS: u64 = 60;

/// The successful token response the shim gave, kept sealed for grace-window retries.
#[derive(Clone, Serialize, Deserialize)]
struct IssuedResponse(TokenResponse);

/// `grant_type=refresh_token`.
pub(crate) struct RefreshRequest {
    pub(crate) refresh_token: Handle,
    pub(crate) scope: Option<String>,
    pub(crate) resource: Option<String>,
    /// The token's record, read while the client is authenticated (`token/mod.rs::prepare`).
    pub(crate) stored: Option<Box<Versioned<RefreshRecord>>>,
    /// The key the request's DPoP proof proved (`dpop_binding.rs`).
    pub(crate) dpop_jkt: Option<String>,
}

impl RefreshRequest {
    pub(crate) fn parse(form: &Params) -> Result<Self, OAuthError> {
        Ok(Self {
            refresh_token: form
                .get("refresh_token")
                .map(Handle::presented)
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?,
            scope: form.get("scope").map(str::to_owned),
            resource: form.get("resource").map(str::to_owned),
            stored: None,
            dpop_jkt: None,
        })
    }
}

/// How long a lease on a refresh token lasts: longer than a rotation can take (an IdP call
/// bounded by the upstream timeout, 10 s by default, and a few store calls bounded at 15 s
/// each), so that a lease outlives the work it guards, but not forever when its server dies.
const LEASE_SECONDS: u64 = 120;

/// A refresh token held for its rotation (the family lock, and in a shared store a lease), as
/// read under the hold, with its live family.
struct Held<'a> {
    tenant: &'a Tenant,
    client: &'a ClientRecord,
    token: &'a Handle,
    current: Versioned<RefreshRecord>,
    family: Versioned<Family>,
    /// For a minted resource, the DPoP key the request proved: its new tokens are bound to it.
    binding: Option<&'a str>,
    now: u64,
}

/// The token as read with its lease, its family, and the lease (none for a token already
/// rotated).
type Leased = (
    Versioned<RefreshRecord>,
    Versioned<Family>,
    Option<TokenLease>,
);

/// What a rotation hands out.
struct Successor<'g> {
    tokens: UpstreamTokens,
    granted: &'g ScopeSet,
    /// The IdP's refresh token the successor keeps when the IdP sent no new one.
    upstream_refresh: String,
    /// A minted login's copied claims, sealed with the successor.
    claims: Option<Map<String, Value>>,
}

/// The records one rotation writes together.
struct RotationWrites {
    successor: Handle,
    next: RefreshRecord,
    rotated: RefreshRecord,
    exchange: Option<ExchangeGrant>,
    until: u64,
}

fn unknown_token() -> OAuthError {
    invalid_grant("the refresh token is unknown, expired or revoked")
}

impl Tokens {
    pub(crate) async fn refresh(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        req: RefreshRequest,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let result = self.refresh_steps(tenant, client, req, now).await;
        super::count_outcome(&crate::metrics::metrics().refreshes, tenant, &result);
        result
    }

    async fn refresh_steps(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        mut req: RefreshRequest,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let first_look = issued_to(client, req.stored.take().map(|b| *b))?;
        // What the request alone decides is checked before anything is leased or written (a
        // token's resource never changes).
        check_resource(&first_look.value, &req)?;
        check_refresh_key(&first_look.value, req.dpop_jkt.as_deref())?;
        let binding = req
            .dpop_jkt
            .as_deref()
            .filter(|_| minted_resource(tenant, &first_look.value.resource).is_some());
        // One rotation at a time per token: a parallel request waits, then takes the grace
        // path. In this process by a lock (per family); across servers sharing the store by a
        // lease on the token's own record.
        let lock = self.families.lock(&first_look.value.family_id);
        let _guard = lock.lock().await;
        let token = &req.refresh_token;
        let (current, family, lease) = if self.records.backend().is_shared() {
            self.lease_token(tenant, token, first_look).await?
        } else {
            let (current, family) = self
                .live_refresh_record(tenant, token, &first_look.value.family_id, now)
                .await?;
            (current, family, None)
        };
        let held = Held {
            tenant,
            client,
            token,
            current,
            family,
            binding,
            now,
        };
        let result = self.rotate_family(&held, &req).await;
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

    /// Waits until no other server is rotating the token, then leases it for this one (see
    /// `try_lease`). A token already rotated is returned without a lease (the grace path needs
    /// none). Leases are judged by the wall clock (`wall_clock`).
    async fn lease_token(
        &self,
        tenant: &Tenant,
        token: &Handle,
        mut seen: Versioned<RefreshRecord>,
    ) -> Result<Leased, OAuthError> {
        let key = token.key();
        let started = std::time::Instant::now();
        loop {
            let now = wall_clock();
            // A lease ending further ahead than any lease is given was written by a server
            // whose clock runs ahead: it is not waited for.
            let held = seen
                .value
                .lease
                .as_ref()
                .is_some_and(|l| l.until > now && l.until <= now + LEASE_SECONDS);
            let rotated = matches!(seen.value.state, RefreshState::Rotated { .. });
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
            } else if let Some(leased) = self.try_lease(tenant, &key, &seen, now).await? {
                return Ok(leased);
            }
            seen = self.read_token(tenant, &key, wall_clock()).await?;
        }
    }

    /// One attempt at the lease: the token's record is moved on (compare-and-swap from the
    /// revision read) with the lease's end in it, while its family is read. The lease's write
    /// is also the proof that nobody rotated the token since it was read, so the token is not
    /// read again. `None` if another server leased or rotated it since it was read.
    async fn try_lease(
        &self,
        tenant: &Tenant,
        key: &HandleKey,
        seen: &Versioned<RefreshRecord>,
        now: u64,
    ) -> Result<Option<Leased>, OAuthError> {
        let family_id = &seen.value.family_id;
        if let RefreshState::Rotated { .. } = seen.value.state {
            // The grace path takes no lease.
            let family = self.records.get::<Family>(&tenant.id, family_id, now);
            return Ok(Some((seen.clone(), live(family.await?)?, None)));
        }
        // A lease only saves the IdP a second call (the rotation's compare-and-swap is what
        // makes a token rotate once), so it need not wait for the disk: deferred.
        let leases = self.records.deferred();
        let leased = RefreshRecord {
            lease: Some(RefreshLease {
                holder: crate::crypto::random_token(),
                until: now + LEASE_SECONDS,
            }),
            ..seen.value.clone()
        };
        // Armed before the write is sent: if the request is dropped meanwhile, or the write's
        // outcome is unknown, the lease is given back if it was taken.
        let lease = TokenLease::new(&leases, tenant, key, &leased);
        let (won, family) = tokio::join!(
            leases.update(&tenant.id, key, seen.revision, &leased, seen.expires_at),
            self.records.get::<Family>(&tenant.id, family_id, now),
        );
        if !won? {
            lease.disarm();
            return Ok(None);
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
        Ok(Some((current, family, Some(lease))))
    }

    /// The refresh token's record as stored at `now`.
    async fn read_token(
        &self,
        tenant: &Tenant,
        key: &HandleKey,
        now: u64,
    ) -> Result<Versioned<RefreshRecord>, OAuthError> {
        self.records
            .get::<RefreshRecord>(&tenant.id, key, now)
            .await?
            .ok_or_else(unknown_token)
    }

    /// The rotation proper, with the token held.
    async fn rotate_family(
        &self,
        held: &Held<'_>,
        req: &RefreshRequest,
    ) -> Result<TokenResponse, OAuthError> {
        let rec = &held.current.value;
        let (resource, until) = self.grant_in_force(held).await?;
        if let Some(m) = resource.minted() {
            bound_for(m, held.binding)?;
        }
        // What this refresh grants (RFC 6749 §6): the scopes the request names within the
        // family's, the family's when it names none of them; never more.
        let grant = narrow(resource, &rec.scopes, req.scope.as_deref());
        let sealed_upstream = match &rec.state {
            RefreshState::Rotated { .. } => return self.answer_rotated(held, &rec.state).await,
            RefreshState::Active { sealed_upstream } => sealed_upstream,
        };
        let upstream_refresh = self.upstream_refresh_token(held, sealed_upstream)?;
        let successor = self.successor(held, &grant, upstream_refresh).await?;
        let Some(response) = self.rotate(held, &successor, until).await? else {
            // Another server rotated it first (a lease that ran out), or the grant was revoked:
            // its answer within the grace window, else the refusal.
            let latest = self
                .read_token(held.tenant, &held.token.key(), held.now)
                .await?;
            return self.answer_rotated(held, &latest.value.state).await;
        };
        tracing::info!(target: "audit", event = "token_issued", grant = "refresh_token", tenant = %held.tenant.id, client_id = %held.client.client_id, app = %rec.app);
        Ok(response)
    }

    /// The token's resource and the grant's new end, if the tenant file still allows the
    /// grant and the login is within its absolute lifetime; a grant the file no longer allows
    /// is revoked.
    async fn grant_in_force<'t>(
        &self,
        held: &Held<'t>,
    ) -> Result<(&'t ResourceConfig, u64), OAuthError> {
        let (tenant, client, rec) = (held.tenant, held.client, &held.current.value);
        let resource = match resource_of_grant(tenant, &rec.resource, rec.is_minted()) {
            Ok(r) => r,
            Err((cause, why)) => {
                self.families
                    .revoke(&tenant.id, &rec.family_id, cause, held.now)
                    .await?;
                tracing::warn!(tenant = %tenant.id, client_id = %client.client_id, resource = %rec.resource, cause,
                    "a refresh for a grant the tenant file no longer allows was refused, and its family revoked");
                return Err(invalid_grant(why));
            }
        };
        let lifetimes = tenant.grant_lifetimes(resource);
        let Some(until) = lifetimes.ends_at(held.family.value.created_at, held.now) else {
            tracing::info!(tenant = %tenant.id, client_id = %client.client_id, resource = %rec.resource,
                "a refresh after the grant's absolute lifetime was refused; the client must sign in again");
            return Err(invalid_grant(format!(
                "the login is older than the {} this tenant's grants last; sign in again",
                crate::config::grant_lifetime::readable(lifetimes.lifetime)
            )));
        };
        Ok((resource, until))
    }

    /// The IdP's refresh token behind the held one. A login whose tokens may be exchanged
    /// keeps the IdP's latest on its family, where an exchange may have replaced it
    /// (`exchange.rs`).
    fn upstream_refresh_token(
        &self,
        held: &Held<'_>,
        sealed_upstream: &str,
    ) -> Result<String, OAuthError> {
        let rec = &held.current.value;
        match &held.family.value.exchange {
            Some(grant) => self.exchange_refresh_token(held.tenant, &rec.family_id, grant),
            None => self
                .sealer
                .unseal(held.token, sealed_upstream)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|_| unreadable_refresh_token(held.tenant, held.client)),
        }
    }

    /// What the rotation hands out: the IdP's tokens from its refresh (none for a minted
    /// resource that does not refresh upstream), with a minted access token in place of the
    /// IdP's for a minted resource.
    async fn successor<'g>(
        &self,
        held: &Held<'_>,
        grant: &'g ScopeGrant,
        upstream_refresh: String,
    ) -> Result<Successor<'g>, OAuthError> {
        let (tenant, rec) = (held.tenant, &held.current.value);
        let minted = minted_resource(tenant, &rec.resource);
        let mut claims = match minted {
            Some(_) => Some(
                self.minter
                    .open_claims(tenant, held.client, held.token, rec)?,
            ),
            None => None,
        };
        let mut tokens = match minted {
            Some(m) if !m.refreshes_upstream() => UpstreamTokens::none(),
            _ => {
                self.refresh_upstream(tenant, rec, &grant.upstream, &upstream_refresh, held.now)
                    .await?
            }
        };
        if let (Some(resource), Some(claims)) = (minted, claims.as_mut()) {
            self.mint_refreshed(held, resource, &grant.names, claims, &mut tokens)
                .await?;
        }
        Ok(Successor {
            tokens,
            granted: &grant.names,
            upstream_refresh,
            claims,
        })
    }

    /// The access token of a refresh of a minted resource. An ID token that came with the
    /// IdP's refresh updates the copied claims (roles or groups changed at the IdP), if it
    /// is valid and names the same user.
    async fn mint_refreshed(
        &self,
        held: &Held<'_>,
        resource: MintedResource<'_>,
        scopes: &ScopeSet,
        claims: &mut Map<String, Value>,
        tokens: &mut UpstreamTokens,
    ) -> Result<(), OAuthError> {
        let (tenant, rec, family) = (held.tenant, &held.current.value, &held.family.value);
        let Some(subject) = family.subject.as_deref() else {
            tracing::warn!(tenant = %tenant.id, client_id = %rec.client_id, resource = %rec.resource,
                "a refresh of a login from before this resource's tokens were minted: its user is unknown, so the client must sign in again");
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "this login predates the resource's current token settings; sign in again",
            ));
        };
        if let Some(id_token) = &tokens.id_token {
            let access = tokens.access_token.clone();
            self.update_copied_claims(held, resource, subject, (id_token, &access), claims)
                .await?;
        }
        let who = TokenSubject {
            subject,
            client_id: &rec.client_id,
            scopes,
            auth_time: family.auth_time.unwrap_or(family.created_at),
            family: &rec.family_id,
            claims,
            confirmation: held.binding,
        };
        self.minter
            .mint_into(tenant, resource, &who, tokens, held.now)
            .await
    }

    /// The copied claims from the ID token of the IdP's refresh, if it is valid and names
    /// the login's user; one naming someone else ends the login.
    async fn update_copied_claims(
        &self,
        held: &Held<'_>,
        resource: MintedResource<'_>,
        subject: &str,
        (id_token, access_token): (&str, &str),
        claims: &mut Map<String, Value>,
    ) -> Result<(), OAuthError> {
        let (tenant, rec) = (held.tenant, &held.current.value);
        let (Ok(endpoints), Some(app)) = (self.upstreams.endpoints(tenant), tenant.app(&rec.app))
        else {
            return Ok(());
        };
        match check_id_token(id_token, &endpoints.issuer, &app.client_id, None, held.now) {
            Ok(user) if user.subject == subject => {
                *claims = copied_claims(resource, &user, Some(access_token));
            }
            Ok(_) => {
                // OpenID Connect Core §12.2: a refreshed ID token names the same user. One
                // that does not is the IdP's login of someone else: the login ends.
                tracing::error!(tenant = %tenant.id, app = %rec.app,
                    "the ID token of a refresh names another user than the login's; the login is revoked");
                self.families
                    .revoke(&tenant.id, &rec.family_id, "idp_subject_changed", held.now)
                    .await?;
                return Err(OAuthError::new(
                    ErrorCode::InvalidGrant,
                    "the identity provider answered for another user; sign in again",
                ));
            }
            Err(why) => tracing::warn!(tenant = %tenant.id, app = %rec.app, reason = %why,
                "the ID token of a refresh failed validation; the login's claims are kept"),
        }
        Ok(())
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

    /// A used refresh token (`state` rotated): within the grace window, the response given
    /// then (the rotation may still be waiting for its flush: the successor is on disk before
    /// it is handed out); after it, a reuse, and the whole family is revoked (OAuth 2.1
    /// §4.3.1). A token still active after its rotation lost had its grant revoked.
    async fn answer_rotated(
        &self,
        held: &Held<'_>,
        state: &RefreshState,
    ) -> Result<TokenResponse, OAuthError> {
        let RefreshState::Rotated {
            at,
            sealed_response,
        } = state
        else {
            return Err(invalid_grant(
                "the refresh token's grant was revoked while it was being refreshed",
            ));
        };
        let (tenant, client, rec) = (held.tenant, held.client, &held.current.value);
        if held.now <= at + REFRESH_GRACE_SECONDS {
            let issued: IssuedResponse = self
                .sealer
                .unseal(held.token, sealed_response)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| unreadable_refresh_token(tenant, client))?;
            self.records.flush().await?;
            return Ok(issued.0);
        }
        self.families
            .revoke(&tenant.id, &rec.family_id, "refresh_reuse", held.now)
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
        let at = self.upstreams.app(tenant, &rec.app)?;
        let scopes =
            Provider::of(tenant).refresh_scopes(granted_upstream, at.endpoints.offers_refresh);
        let resource = crate::oauth::upstreams::upstream_resource(tenant, &rec.resource);
        match self
            .upstreams
            .client()
            .token(
                &at,
                UpstreamGrant::RefreshToken {
                    refresh_token: upstream_refresh,
                    scopes: &scopes,
                },
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
    /// before the answer, until `until`. `None` (nothing written) if the token was rotated or
    /// its family changed (revoked) since they were read.
    async fn rotate(
        &self,
        held: &Held<'_>,
        successor: &Successor<'_>,
        until: u64,
    ) -> Result<Option<TokenResponse>, OAuthError> {
        let (rec, now) = (&held.current.value, held.now);
        let handle = Handle::generate();
        let tokens = &successor.tokens;
        let next_upstream = tokens
            .refresh_token
            .as_deref()
            .unwrap_or(&successor.upstream_refresh);
        let next = RefreshRecord {
            issued_at: now,
            state: RefreshState::Active {
                sealed_upstream: self.sealer.seal(&handle, next_upstream.as_bytes()),
            },
            lease: None,
            sealed_claims: successor
                .claims
                .as_ref()
                .map(|c| self.minter.seal_claims(&handle, c)),
            // Bound once bound; a public client's token is bound from its first proof on.
            dpop_jkt: rec.dpop_jkt.clone().or_else(|| {
                held.binding
                    .filter(|_| {
                        !held
                            .client
                            .metadata
                            .token_endpoint_auth_method
                            .is_confidential()
                    })
                    .map(str::to_owned)
            }),
            ..rec.clone()
        };
        let response = TokenResponse::bearer(tokens, successor.granted)
            .bound_to(held.binding)
            .with_refresh_token(&handle);
        let rotated = RefreshRecord {
            state: RefreshState::Rotated {
                at: now,
                sealed_response: self.sealer.seal(
                    held.token,
                    &serde_json::to_vec(&IssuedResponse(response.clone())).unwrap_or_default(),
                ),
            },
            lease: None,
            ..rec.clone()
        };
        // The IdP's new refresh token for the family's exchange copy, sealed once for every
        // attempt.
        let exchange = match (&held.family.value.exchange, &tokens.refresh_token) {
            (Some(_), Some(new)) => {
                Some(self.exchange_grant(held.tenant, &rec.family_id, &rec.app, new))
            }
            _ => None,
        };
        let writes = RotationWrites {
            successor: handle,
            next,
            rotated,
            exchange,
            until,
        };
        Ok(self
            .commit_rotation(held, &writes)
            .await?
            .then_some(response))
    }

    /// Writes a rotation. The family may move while the IdP is called without the token
    /// moving: a token exchange on another server kept the IdP's new refresh token on it.
    /// Then the rotation is written again over the family as it is now; anything else (the
    /// token rotated, the family revoked) ends it, and `false` says nothing was written.
    async fn commit_rotation(
        &self,
        held: &Held<'_>,
        writes: &RotationWrites,
    ) -> Result<bool, OAuthError> {
        let (tenant, current, now) = (held.tenant, &held.current, held.now);
        let family_id = &current.value.family_id;
        let expires = Some(writes.until);
        let mut family = held.family.clone();
        for _ in 0..3 {
            let mut value = family.value.clone();
            value.created_at = value.created_at.min(now);
            if value.exchange.is_some() && writes.exchange.is_some() {
                value.exchange.clone_from(&writes.exchange);
            }
            let mut group = WriteGroup::default();
            group
                .insert_new(&tenant.id, &writes.successor.key(), &writes.next, expires)?
                .update(
                    &tenant.id,
                    &held.token.key(),
                    current.revision,
                    &writes.rotated,
                    current.expires_at,
                )?
                .update(&tenant.id, family_id, family.revision, &value, expires)?;
            if self.records.write_all(group, now).await? {
                return Ok(true);
            }
            let token_key = held.token.key();
            let (token_now, family_now) = tokio::join!(
                self.records
                    .get::<RefreshRecord>(&tenant.id, &token_key, now),
                self.records.get::<Family>(&tenant.id, family_id, now),
            );
            match (token_now?, family_now?) {
                (Some(t), Some(f)) if t.revision == current.revision && !f.value.revoked => {
                    family = f;
                }
                _ => return Ok(false),
            }
        }
        Ok(false)
    }
}

/// A refresh may name the family's resource again (RFC 8707 §2.2, compared in normalized form).
/// A refresh token bound to a DPoP key (a public client's) is used only with a proof of that
/// key (RFC 9449 §5).
fn check_refresh_key(rec: &RefreshRecord, proved: Option<&str>) -> Result<(), OAuthError> {
    match (&rec.dpop_jkt, proved) {
        (None, _) => Ok(()),
        (Some(bound), Some(proved)) if crate::crypto::ct_eq(bound, proved) => Ok(()),
        (Some(_), Some(_)) => Err(invalid_dpop_proof(
            "the refresh token is bound to another DPoP key than the proof's",
        )),
        (Some(_), None) => Err(invalid_dpop_proof(
            "the refresh token is bound to a DPoP key: send a proof of it with the request",
        )),
    }
}

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

/// Seconds since the Unix epoch, read again at each step of a lease: a lease's end is a
/// wall-clock time that servers sharing the store compare with their own clocks, so it is
/// judged by the clock now, not by the request's `now` (taken before the wait, and possibly
/// before a slow client authentication).
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
    key: HandleKey,
    holder: String,
    armed: bool,
}

impl TokenLease {
    fn new(
        records: &crate::store::Records,
        tenant: &Tenant,
        key: &HandleKey,
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
