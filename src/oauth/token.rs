//! The token endpoint (OAuth 2.1 §3.2, §4.1.3) for the `authorization_code` grant; the
//! `refresh_token` grant and revocation are in `refresh.rs`.
//!
//! `token`: read the grant type and the grant's parameters, authenticate the client while the
//! record the grant names is read (an authentication error is answered first), run the grant.
//! `redeem_code`: find the code (a replay revokes the family it started), check it was issued
//! for this client, redirect URI, resource and PKCE verifier, then commit family, claim and
//! refresh token together before handing out the IdP's access token (passthrough) and the
//! shim's own refresh token.

use serde_json::{Map, Value};

use super::client_auth::ClientCredentials;
use super::error::{ErrorCode, OAuthError};
use super::minted::{SealedGrant, TokenSubject, minted_resource, resource_of_grant};
use super::params::Params;
use super::records::{
    AuthCode, Family, FamilyId, PendingAuthorization, RefreshRecord, RefreshState,
};
use super::server::AuthServer;
use super::token_request::{
    CodeRedemption, Grant, JwtBearerRequest, OfferedGrants, RefreshRequest, TokenRequest,
    grant_type,
};
use crate::config::Tenant;
use crate::crypto::{Handle, HandleKey};
use crate::domain::ClientRecord;
use crate::store::{Versioned, WriteGroup};

use super::error::invalid_grant;
use super::token_response::TokenResponse;

/// A client's token request with the record it names, read while the client is
/// authenticated (`prepare`).
enum Prepared<'f> {
    Code(CodeRedemption, Option<Box<Versioned<AuthCode>>>),
    Refresh(RefreshRequest, Option<Box<Versioned<RefreshRecord>>>),
    JwtBearer(JwtBearerRequest<'f>),
}

impl AuthServer {
    /// `POST /{tenant}/token`: the grant type, then who authenticates for that grant, then the
    /// grant's own module (`redeem_code` here, `refresh.rs`, `id_jag.rs`, `exchange.rs`).
    pub async fn token(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let offered = OfferedGrants {
            jwt_bearer: tenant.trusts_issuers(),
            token_exchange: tenant.offers_token_exchange(),
        };
        let grant = match grant_type(form, offered)? {
            Grant::TokenExchange => return self.exchange(tenant, form, creds, now).await,
            Grant::Client(grant) => grant,
        };
        let request = TokenRequest::parse(grant, form);
        // The record the grant names is read while the client is authenticated, two reads at
        // once; it is used only once authentication succeeded, and a client error comes first.
        let (client, prepared) = tokio::join!(
            self.authenticate_client(tenant, form, creds, now),
            self.prepare(tenant, request, now),
        );
        let client = client?;
        // A client an administrator has not approved (or denied) gets nothing, whatever it
        // holds: a code or refresh token from before a denial is worth nothing either.
        super::approval::usable(&client)?;
        let response = match prepared? {
            Prepared::Code(r, code) => self.redeem_code(tenant, &client, r, code, now).await?,
            Prepared::Refresh(r, token) => {
                self.refresh(tenant, &client, r, token.map(|b| *b), now)
                    .await?
            }
            Prepared::JwtBearer(r) => return self.id_jag_grant(tenant, &client, r, now).await,
        };
        // The tokens are already stored: a failed touch must not turn them into an error (the
        // client would retry the code, a replay that revokes them). The client's life is
        // extended at a later request.
        self.registry.record_use(tenant, &client, now).await;
        Ok(response)
    }

    /// The request with the record it names (its code or its refresh token, as stored now);
    /// a request that did not parse is answered with its error, after the client's.
    async fn prepare<'f>(
        &self,
        tenant: &Tenant,
        request: Result<TokenRequest<'f>, OAuthError>,
        now: u64,
    ) -> Result<Prepared<'f>, OAuthError> {
        Ok(match request? {
            TokenRequest::AuthorizationCode(r) => {
                let code = self
                    .records
                    .get::<AuthCode>(&tenant.id, &r.code.key(), now)
                    .await?
                    .map(Box::new);
                Prepared::Code(r, code)
            }
            TokenRequest::RefreshToken(r) => {
                let token = self
                    .records
                    .get::<RefreshRecord>(&tenant.id, &r.refresh_token.key(), now)
                    .await?
                    .map(Box::new);
                Prepared::Refresh(r, token)
            }
            TokenRequest::JwtBearer(r) => Prepared::JwtBearer(r),
        })
    }

    async fn redeem_code(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        req: CodeRedemption,
        stored: Option<Box<Versioned<AuthCode>>>,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let code = self.find_unused_code(tenant, client, stored, now).await?;
        check_code_binding(&code.value, client, &req, now)?;
        let resource = match resource_of_grant(
            tenant,
            &code.value.request.resource,
            code.value.minted,
        ) {
            Ok(r) => r,
            Err((cause, why)) => {
                // Spent, so that it cannot be tried again once the file changes back.
                let mut spent = code.clone();
                spent.value.used = true;
                self.records
                    .update(
                        &tenant.id,
                        &req.code.key(),
                        spent.revision,
                        &spent.value,
                        spent.expires_at,
                    )
                    .await?;
                tracing::warn!(tenant = %tenant.id, client_id = %client.client_id, resource = %code.value.request.resource, cause,
                "a code for a grant the tenant file no longer allows was refused");
                return Err(invalid_grant(why));
            }
        };
        // The grant's end: the idle lifetime from now, within the absolute one from the login.
        let grant_until = tenant
            .grant_lifetimes(resource)
            .ends_at(now, now)
            .unwrap_or(now);
        let SealedGrant {
            mut tokens,
            claims,
            auth_time,
        } = self
            .sealer
            .unseal(&req.code, &code.value.sealed_tokens)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(OAuthError::server_error)?;
        let r = code.value.request.clone();
        let subject = code.value.subject.clone();
        let minted = minted_resource(tenant, &r.resource);
        // Refresh tokens only where the consent page said so (decided at authorize time), and
        // only when the IdP gave one: a client never gets a refresh token that cannot work.
        let refreshable = r.offline_access && tokens.refresh_token.is_some();
        // A minted token names its login (`sid`), so a login with one always has a family.
        let family_id = (refreshable || minted.is_some()).then(FamilyId::generate);
        if r.offline_access && tokens.refresh_token.is_none() {
            tracing::warn!(tenant = %tenant.id, client_id = %client.client_id, app = %r.app,
                "the IdP returned no refresh token although the client is registered for them, so it gets none and must sign in again when its access token expires; for an oidc upstream keep upstream.consent_for_refresh on and let the app request offline_access at the IdP; for entra the app registration needs the offline_access permission");
        }
        // Family, claim and refresh token commit together and durably before the answer: a
        // replay racing this redemption finds the family to revoke as soon as the code reads
        // as used, and a crash keeps all three or none (then no tokens were handed out).
        let mut group = WriteGroup::default();
        if let Some(f) = &family_id {
            // A family without refresh tokens lives as long as its access token.
            let until = match minted {
                Some(m) if !refreshable => now + m.family_seconds_without_refresh(),
                _ => grant_until,
            };
            let exchange = minted
                .filter(|m| !m.exchange.is_empty())
                .and(tokens.refresh_token.as_deref())
                .map(|rt| self.exchange_grant(tenant, f, &r.app, rt));
            let family = Family {
                client_id: client.client_id.clone(),
                revoked: false,
                created_at: now,
                subject: subject.clone(),
                auth_time,
                exchange,
                issuer: None,
            };
            super::family_index::insert_family(&mut group, &tenant.id, f, &family, Some(until))?;
        }
        if let (Some(resource), Some(family)) = (minted, &family_id) {
            // The callback issues no code for a minted resource without a subject: this code
            // was issued before the resource's tokens became minted.
            let subject = subject.as_deref().ok_or_else(|| {
                tracing::error!(tenant = %tenant.id, client_id = %client.client_id, resource = %r.resource,
                    "a code issued before the resource's tokens became minted names no user, so no token can be minted for it; the client must sign in again");
                OAuthError::server_error()
            })?;
            let who = TokenSubject {
                subject,
                client_id: &client.client_id,
                scopes: &r.scopes,
                auth_time: auth_time.unwrap_or(now),
                family,
                claims: &claims,
            };
            self.mint_into(tenant, resource, &who, &mut tokens, now)
                .await?;
        }
        let key = req.code.key();
        let mut claimed = code;
        claimed.value.used = true;
        claimed.value.family_id = family_id.clone();
        group.update(
            &tenant.id,
            &key,
            claimed.revision,
            &claimed.value,
            claimed.expires_at,
        )?;
        let mut response = TokenResponse::bearer(&tokens, &r.scopes);
        if let (true, Some(family_id), Some(upstream_refresh)) =
            (refreshable, family_id, &tokens.refresh_token)
        {
            let refresh = self.first_refresh_token(
                &mut group,
                tenant,
                &r,
                family_id,
                upstream_refresh,
                minted.map(|_| &claims),
                now,
                grant_until,
            )?;
            response = response.with_refresh_token(&refresh);
        }
        if !self.records.write_all(group, now).await? {
            return Err(self.lost_claim(tenant, &key, now).await);
        }
        tracing::info!(target: "audit", event = "token_issued", grant = "authorization_code", tenant = %tenant.id, client_id = %client.client_id,
            app = %r.app, subject = subject.as_deref().unwrap_or(""), refresh = response.has_refresh_token());
        Ok(response)
    }

    /// The code's record, if it exists and was never redeemed. A used code is a replay: the
    /// family it started is revoked (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3).
    async fn find_unused_code(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        stored: Option<Box<Versioned<AuthCode>>>,
        now: u64,
    ) -> Result<Versioned<AuthCode>, OAuthError> {
        let Some(current) = stored.map(|b| *b) else {
            return Err(invalid_grant(
                "the authorization code is unknown or expired",
            ));
        };
        if current.value.used {
            if let Some(family) = &current.value.family_id {
                self.revoke_family(tenant, family, "code_replay", now)
                    .await?;
            }
            crate::metrics::metrics()
                .reuse_detected
                .with_label_values(&[tenant.id.as_str()])
                .inc();
            tracing::warn!(target: "audit", event = "code_replayed", tenant = %tenant.id, client_id = %client.client_id);
            return Err(invalid_grant(
                "the authorization code was already used; the tokens issued for it are revoked",
            ));
        }
        Ok(current)
    }

    /// Another redemption claimed the code first (the group's compare-and-swap on the code
    /// failed; its fresh ids colliding is not a real possibility): the winner's family is
    /// revoked, since one of the two requests replays the code.
    async fn lost_claim(&self, tenant: &Tenant, key: &HandleKey, now: u64) -> OAuthError {
        let winner = self.records.get::<AuthCode>(&tenant.id, key, now).await;
        if let Ok(Some(latest)) = &winner
            && let Some(f) = &latest.value.family_id
            && let Err(e) = self.revoke_family(tenant, f, "code_race", now).await
        {
            return e.into();
        }
        match winner {
            Err(e) => e.into(),
            Ok(_) => invalid_grant("the authorization code was already used"),
        }
    }

    /// The first refresh token of a new family, with the IdP's refresh token (and a minted
    /// resource's copied claims) sealed under it.
    #[allow(clippy::too_many_arguments)]
    fn first_refresh_token(
        &self,
        group: &mut WriteGroup,
        tenant: &Tenant,
        r: &PendingAuthorization,
        family_id: FamilyId,
        upstream_refresh: &str,
        minted_claims: Option<&Map<String, Value>>,
        now: u64,
        until: u64,
    ) -> Result<Handle, OAuthError> {
        let refresh = Handle::generate();
        let sealed_claims = minted_claims.map(|c| self.seal_minted_claims(&refresh, c));
        let record = RefreshRecord {
            family_id,
            client_id: r.client_id.clone(),
            resource: r.resource.clone(),
            scopes: r.scopes.clone(),
            upstream_scopes: r.upstream_scopes.clone(),
            app: r.app.clone(),
            issued_at: now,
            state: RefreshState::Active {
                sealed_upstream: self.sealer.seal(&refresh, upstream_refresh.as_bytes()),
            },
            lease: None,
            sealed_claims,
        };
        group.insert_new(&tenant.id, &refresh.key(), &record, Some(until))?;
        Ok(refresh)
    }
}

/// Whether an unused code may be redeemed by this request: issued to this client, not expired,
/// the same redirect URI and resource as the authorization request, and the PKCE verifier
/// that answers its challenge (RFC 6749 §4.1.3, RFC 8707 §2.2, RFC 7636 §4.6).
fn check_code_binding(
    code: &AuthCode,
    client: &ClientRecord,
    req: &CodeRedemption,
    now: u64,
) -> Result<(), OAuthError> {
    let r = &code.request;
    if r.client_id != client.client_id {
        return Err(invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if code.valid_until <= now {
        return Err(invalid_grant("the authorization code has expired"));
    }
    match req.redirect_uri.as_deref() {
        Some(u) if u != r.redirect_uri.as_str() => {
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
    if let Some(res) = req.resource.as_deref()
        && !r.resource.matches(res)
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the authorization request",
        ));
    }
    let verifier = req
        .code_verifier
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    if !r.code_challenge.is_answered_by(verifier) {
        return Err(invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    Ok(())
}
