//! The `authorization_code` grant (OAuth 2.1 §4.1.3): find the code (a replay revokes the
//! family it started), check it was issued for this client, redirect URI, resource and PKCE
//! verifier, then commit family, claim and refresh token together before handing out the
//! access token (the IdP's, or one the shim mints) and the shim's own refresh token.

use serde_json::{Map, Value};

use super::Tokens;
use super::dpop_binding::{bound_for, invalid_dpop_proof};
use super::response::TokenResponse;
use crate::config::Tenant;
use crate::config::resource::MintedResource;
use crate::crypto::{Handle, HandleKey};
use crate::domain::ClientRecord;
use crate::oauth::error::invalid_grant;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::minted::{SealedGrant, TokenSubject, minted_resource, resource_of_grant};
use crate::oauth::params::Params;
use crate::oauth::records::{
    AuthCode, Family, FamilyId, PendingAuthorization, RefreshRecord, RefreshState,
};
use crate::store::{Versioned, WriteGroup};
use crate::upstream::tokens::UpstreamTokens;

/// `grant_type=authorization_code`.
pub(crate) struct CodeRedemption {
    pub(crate) code: Handle,
    /// Required when the authorization request named one; checked against the code.
    pub(crate) redirect_uri: Option<String>,
    /// Checked after the code is found, so that a replayed code revokes its tokens even when
    /// the replay carries no verifier.
    pub(crate) code_verifier: Option<String>,
    pub(crate) resource: Option<String>,
    /// The code's record, read while the client is authenticated (`token/mod.rs::prepare`).
    pub(crate) stored: Option<Box<Versioned<AuthCode>>>,
    /// The key the request's DPoP proof proved (`dpop_binding.rs`).
    pub(crate) dpop_jkt: Option<String>,
}

impl CodeRedemption {
    pub(crate) fn parse(form: &Params) -> Result<Self, OAuthError> {
        let optional = |name: &str| form.get(name).map(str::to_owned);
        Ok(Self {
            code: form
                .get("code")
                .map(Handle::presented)
                .ok_or_else(|| OAuthError::invalid_request("code is required"))?,
            redirect_uri: optional("redirect_uri"),
            code_verifier: optional("code_verifier"),
            resource: optional("resource"),
            stored: None,
            dpop_jkt: None,
        })
    }
}

/// A code being redeemed, its grant unsealed: what the login granted and what this
/// redemption hands out for it.
struct Redemption<'a> {
    tenant: &'a Tenant,
    client: &'a ClientRecord,
    request: PendingAuthorization,
    subject: Option<String>,
    auth_time: Option<u64>,
    /// The ID token's claims a minted resource's tokens copy.
    claims: Map<String, Value>,
    tokens: UpstreamTokens,
    /// The resource, when its access tokens are minted.
    minted: Option<MintedResource<'a>>,
    /// Whether the client gets a refresh token: the consent page said so (decided at
    /// authorize time) and the IdP gave one, so a client never gets one that cannot work.
    refreshable: bool,
    /// A minted token names its login (`sid`), so a login with one always has a family.
    family_id: Option<FamilyId>,
    /// The grant's end: the idle lifetime from now, within the absolute one from the login.
    grant_until: u64,
    /// The DPoP key its minted token is bound to (`dpop_binding.rs`).
    binding: Option<String>,
    now: u64,
}

impl Tokens {
    pub(super) async fn redeem_code(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        mut req: CodeRedemption,
        now: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let stored = req.stored.take();
        let code = self.find_unused_code(tenant, client, stored, now).await?;
        check_code_binding(&code.value, client, &req, now)?;
        let mut red = self
            .unseal_redemption(tenant, client, &req, &code, now)
            .await?;
        // Before the code is spent: a client that forgot its proof may try again.
        red.binding = match red.minted {
            Some(m) => {
                bound_for(m, req.dpop_jkt.as_deref())?;
                req.dpop_jkt.take()
            }
            None => None,
        };
        // Family, claim and refresh token commit together and durably before the answer: a
        // replay racing this redemption finds the family to revoke as soon as the code reads
        // as used, and a crash keeps all three or none (then no tokens were handed out).
        let mut group = WriteGroup::default();
        self.open_family(&mut group, &red)?;
        self.mint_for_code(&mut red).await?;
        let key = req.code.key();
        let mut claimed = code;
        claimed.value.used = true;
        claimed.value.family_id = red.family_id.clone();
        group.update(
            &tenant.id,
            &key,
            claimed.revision,
            &claimed.value,
            claimed.expires_at,
        )?;
        let mut response = TokenResponse::bearer(&red.tokens, &red.request.scopes)
            .bound_to(red.binding.as_deref());
        if let Some((refresh, record)) = self.first_refresh_token(&red) {
            group.insert_new(&tenant.id, &refresh.key(), &record, Some(red.grant_until))?;
            response = response.with_refresh_token(&refresh);
        }
        if !self.records.write_all(group, now).await? {
            return Err(self.lost_claim(tenant, &key, now).await);
        }
        tracing::info!(target: "audit", event = "token_issued", grant = "authorization_code", tenant = %tenant.id, client_id = %client.client_id,
            app = %red.request.app, subject = red.subject.as_deref().unwrap_or(""), refresh = response.has_refresh_token());
        Ok(response)
    }

    /// What the code grants: its resource (if the tenant file still allows the grant) and its
    /// sealed tokens and claims.
    async fn unseal_redemption<'a>(
        &self,
        tenant: &'a Tenant,
        client: &'a ClientRecord,
        req: &CodeRedemption,
        code: &Versioned<AuthCode>,
        now: u64,
    ) -> Result<Redemption<'a>, OAuthError> {
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
        let SealedGrant {
            tokens,
            claims,
            auth_time,
        } = self
            .sealer
            .unseal(&req.code, &code.value.sealed_tokens)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(OAuthError::server_error)?;
        let request = code.value.request.clone();
        let minted = minted_resource(tenant, &request.resource);
        let refreshable = request.offline_access && tokens.refresh_token.is_some();
        if request.offline_access && tokens.refresh_token.is_none() {
            tracing::warn!(tenant = %tenant.id, client_id = %client.client_id, app = %request.app,
                "the IdP returned no refresh token although the client is registered for them, so it gets none and must sign in again when its access token expires; for an oidc upstream keep upstream.consent_for_refresh on and let the app request offline_access at the IdP; for entra the app registration needs the offline_access permission");
        }
        Ok(Redemption {
            tenant,
            client,
            subject: code.value.subject.clone(),
            auth_time,
            claims,
            tokens,
            minted,
            refreshable,
            family_id: (refreshable || minted.is_some()).then(FamilyId::generate),
            grant_until: tenant
                .grant_lifetimes(resource)
                .ends_at(now, now)
                .unwrap_or(now),
            binding: None,
            request,
            now,
        })
    }

    /// Writes the login's refresh family, if it has one, into `group`.
    fn open_family(&self, group: &mut WriteGroup, red: &Redemption<'_>) -> Result<(), OAuthError> {
        let Some(f) = &red.family_id else {
            return Ok(());
        };
        // A family without refresh tokens lives as long as its access token.
        let until = match red.minted {
            Some(m) if !red.refreshable => red.now + m.family_seconds_without_refresh(),
            _ => red.grant_until,
        };
        let exchange = red
            .minted
            .filter(|m| !m.exchange().is_empty())
            .and(red.tokens.refresh_token.as_deref())
            .map(|rt| self.exchange_grant(red.tenant, f, &red.request.app, rt));
        let family = Family {
            client_id: red.client.client_id.clone(),
            revoked: false,
            created_at: red.now,
            subject: red.subject.clone(),
            auth_time: red.auth_time,
            exchange,
            issuer: None,
        };
        crate::oauth::family_index::insert_family(group, &red.tenant.id, f, &family, Some(until))?;
        Ok(())
    }

    /// Puts a minted access token in place of the IdP's, for a minted resource.
    async fn mint_for_code(&self, red: &mut Redemption<'_>) -> Result<(), OAuthError> {
        let (Some(resource), Some(family)) = (red.minted, &red.family_id) else {
            return Ok(());
        };
        let (tenant, r) = (red.tenant, &red.request);
        // The callback issues no code for a minted resource without a subject: this code
        // was issued before the resource's tokens became minted.
        let subject = red.subject.as_deref().ok_or_else(|| {
            tracing::error!(tenant = %tenant.id, client_id = %red.client.client_id, resource = %r.resource,
                "a code issued before the resource's tokens became minted names no user, so no token can be minted for it; the client must sign in again");
            OAuthError::server_error()
        })?;
        let who = TokenSubject {
            subject,
            client_id: &red.client.client_id,
            scopes: &r.scopes,
            auth_time: red.auth_time.unwrap_or(red.now),
            family,
            claims: &red.claims,
            confirmation: red.binding.as_deref(),
        };
        self.minter
            .mint_into(tenant, resource, &who, &mut red.tokens, red.now)
            .await
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
                self.families
                    .revoke(&tenant.id, family, "code_replay", now)
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
            && let Err(e) = self.families.revoke(&tenant.id, f, "code_race", now).await
        {
            return e.into();
        }
        match winner {
            Err(e) => e.into(),
            Ok(_) => invalid_grant("the authorization code was already used"),
        }
    }

    /// The first refresh token of a new family and its record, with the IdP's refresh token
    /// (and a minted resource's copied claims) sealed under it; none if the client gets none.
    fn first_refresh_token(&self, red: &Redemption<'_>) -> Option<(Handle, RefreshRecord)> {
        let (true, Some(family_id), Some(upstream_refresh)) =
            (red.refreshable, &red.family_id, &red.tokens.refresh_token)
        else {
            return None;
        };
        let r = &red.request;
        let refresh = Handle::generate();
        let sealed_claims = red
            .minted
            .map(|_| self.minter.seal_claims(&refresh, &red.claims));
        let record = RefreshRecord {
            family_id: family_id.clone(),
            client_id: r.client_id.clone(),
            resource: r.resource.clone(),
            scopes: r.scopes.clone(),
            upstream_scopes: r.upstream_scopes.clone(),
            app: r.app.clone(),
            issued_at: red.now,
            state: RefreshState::Active {
                sealed_upstream: self.sealer.seal(&refresh, upstream_refresh.as_bytes()),
            },
            lease: None,
            sealed_claims,
            // A public client's refresh token is bound to its key; a confidential client's is
            // bound to the client already (RFC 9449 §5).
            dpop_jkt: red.binding.clone().filter(|_| {
                !red.client
                    .metadata
                    .token_endpoint_auth_method
                    .is_confidential()
            }),
        };
        Some((refresh, record))
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
    // RFC 9449 §10: a code the client bound to its key at /authorize is redeemed only with a
    // proof of that key.
    match (&r.dpop_jkt, req.dpop_jkt.as_deref()) {
        (Some(bound), Some(proved)) if crate::crypto::ct_eq(bound, proved) => {}
        (Some(_), Some(_)) => {
            return Err(invalid_dpop_proof(
                "the DPoP proof is not of the key the authorization request named (dpop_jkt)",
            ));
        }
        (Some(_), None) => {
            return Err(invalid_dpop_proof(
                "the authorization request named a DPoP key (dpop_jkt): send a proof of it",
            ));
        }
        (None, _) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pkce::S256Challenge;
    use crate::domain::{ClientId, RedirectUri, ResourceUri, ScopeSet};

    const VERIFIER: &str = "a-verifier-of-the-length-pkce-wants-0123456789";

    fn client(id: &str) -> ClientRecord {
        serde_json::from_value(serde_json::json!({
            "client_id": id,
            "source": {"kind": "dcr"},
            "metadata": {
                "redirect_uris": ["http://127.0.0.1/cb"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "application_type": "native",
            },
            "apps": {},
            "issued_at": 0,
            "last_used_at": 0,
        }))
        .unwrap()
    }

    fn code(redirect_uri_given: bool) -> AuthCode {
        AuthCode {
            request: PendingAuthorization {
                client_id: ClientId::new("c1"),
                redirect_uri: RedirectUri::parse("http://127.0.0.1:4000/cb").unwrap(),
                redirect_uri_given,
                state: None,
                code_challenge: S256Challenge::of(VERIFIER),
                resource: ResourceUri::new("https://mcp.example.com/files"),
                scopes: ScopeSet::default(),
                upstream_scopes: ScopeSet::default(),
                offline_access: false,
                app: "a".into(),
                prompt: None,
                login_hint: None,
                domain_hint: None,
                claims: None,
                max_age: None,
                acr_values: None,
                approval_epoch: 0,
                approval_pending: false,
                dpop_jkt: None,
            },
            sealed_tokens: String::new(),
            subject: None,
            valid_until: 1_000,
            used: false,
            family_id: None,
            minted: false,
        }
    }

    fn redemption(
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        resource: Option<&str>,
    ) -> CodeRedemption {
        CodeRedemption {
            code: Handle::presented("code"),
            redirect_uri: redirect_uri.map(str::to_owned),
            code_verifier: verifier.map(str::to_owned),
            resource: resource.map(str::to_owned),
            stored: None,
            dpop_jkt: None,
        }
    }

    fn refused(
        code: &AuthCode,
        client: &ClientRecord,
        req: &CodeRedemption,
        now: u64,
    ) -> (ErrorCode, String) {
        let e = check_code_binding(code, client, req, now).unwrap_err();
        (e.code, e.description)
    }

    #[test]
    fn a_code_binds_client_time_redirect_uri_resource_and_verifier() {
        let (c1, good) = (
            client("c1"),
            redemption(Some("http://127.0.0.1:4000/cb"), Some(VERIFIER), None),
        );
        assert!(check_code_binding(&code(true), &c1, &good, 999).is_ok());
        // The resource compared in normalized form (RFC 8707; `ResourceUri`).
        let resource = redemption(
            Some("http://127.0.0.1:4000/cb"),
            Some(VERIFIER),
            Some("HTTPS://MCP.example.com:443/files"),
        );
        assert!(check_code_binding(&code(true), &c1, &resource, 999).is_ok());
        assert_eq!(
            refused(&code(true), &client("c2"), &good, 999).0,
            ErrorCode::InvalidGrant
        );
        let (error, why) = refused(&code(true), &c1, &good, 1_000);
        assert_eq!(
            (error, why.as_str()),
            (
                ErrorCode::InvalidGrant,
                "the authorization code has expired"
            )
        );
        let other_port = redemption(Some("http://127.0.0.1:4001/cb"), Some(VERIFIER), None);
        assert_eq!(
            refused(&code(true), &c1, &other_port, 999).0,
            ErrorCode::InvalidGrant
        );
        let without = redemption(None, Some(VERIFIER), None);
        assert_eq!(
            refused(&code(true), &c1, &without, 999).0,
            ErrorCode::InvalidRequest
        );
        assert!(
            check_code_binding(&code(false), &c1, &without, 999).is_ok(),
            "none was given at authorize"
        );
        let other_resource = redemption(None, Some(VERIFIER), Some("https://mcp.example.com/mail"));
        assert_eq!(
            refused(&code(false), &c1, &other_resource, 999).0,
            ErrorCode::InvalidTarget
        );
        let no_verifier = redemption(None, None, None);
        assert_eq!(
            refused(&code(false), &c1, &no_verifier, 999).0,
            ErrorCode::InvalidRequest
        );
        let wrong = redemption(
            None,
            Some("another-verifier-of-the-length-pkce-wants-012345"),
            None,
        );
        assert_eq!(
            refused(&code(false), &c1, &wrong, 999).0,
            ErrorCode::InvalidGrant
        );
    }
}
