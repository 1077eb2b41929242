//! `AuthServer`: the login flow's dependencies in one place, shared by the flow modules
//! (`authorize`, `consent`, `callback`, `token`).

use std::sync::Arc;

use super::client_auth::ClientCredentials;
use super::context::RequestCtx;
use super::error::OAuthError;
use super::family::Families;
use super::minted::Minter;
use super::params::Params;
use super::registration::ClientRegistry;
use super::token::response::TokenResponse;
use super::token::{TokenParts, Tokens};
use super::upstreams::Upstreams;
use crate::config::Tenant;
use crate::crypto::{Sealer, Signer};
use crate::minting::SigningKeys;
use crate::store::Records;
use crate::upstream::UpstreamDirectory;
use crate::upstream::tokens::UpstreamClient;

pub struct AuthServer {
    /// The token endpoint, introspection and revocation (`token/`).
    tokens: Tokens,
    pub(super) records: Records,
    pub(super) registry: ClientRegistry,
    /// The tenants' IdPs: endpoints and the caller with the apps' credentials.
    pub(super) upstreams: Arc<Upstreams>,
    pub(super) sealer: Arc<Sealer>,
    pub(super) signer: Signer,
    /// Minted access tokens: signing, checking, the claims sealed with refresh tokens.
    pub(super) minter: Arc<Minter>,
    /// Revocation and locks of the refresh families (`family.rs`).
    pub(super) families: Arc<Families>,
}

impl AuthServer {
    pub(crate) fn new(
        records: Records,
        registry: ClientRegistry,
        upstreams: UpstreamDirectory,
        upstream: UpstreamClient,
        (sealer, signer): (Sealer, Signer),
        signing_keys: Arc<SigningKeys>,
    ) -> Self {
        let sealer = Arc::new(sealer);
        let families = Arc::new(Families::new(records.clone()));
        let minter = Arc::new(Minter::new(signing_keys, sealer.clone()));
        let upstreams = Arc::new(Upstreams::new(upstreams, upstream));
        Self {
            tokens: Tokens::new(TokenParts {
                records: records.clone(),
                registry: registry.clone(),
                families: families.clone(),
                minter: minter.clone(),
                upstreams: upstreams.clone(),
                sealer: sealer.clone(),
            }),
            families,
            minter,
            records,
            registry,
            upstreams,
            sealer,
            signer,
        }
    }

    /// Calls the IdPs with `upstream` from now on; calls under way finish with the old one.
    pub(crate) fn install_upstream(&self, upstream: UpstreamClient) {
        self.upstreams.install(upstream);
    }

    /// The tenant's JWKS: the keys its minted tokens are signed with (`Minter::jwks`).
    pub async fn jwks(&self, tenant: &Tenant, now: u64) -> Result<serde_json::Value, OAuthError> {
        self.minter.jwks(tenant, now).await
    }

    /// `POST /{tenant}/token` (`token/mod.rs`).
    pub async fn token(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        ctx: &RequestCtx,
    ) -> Result<TokenResponse, OAuthError> {
        self.tokens.token(tenant, form, creds, ctx).await
    }

    /// `POST /{tenant}/revoke` (`token/revocation.rs`).
    pub async fn revoke(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        ctx: &RequestCtx,
    ) -> Result<(), OAuthError> {
        self.tokens.revoke(tenant, form, creds, ctx).await
    }

    /// `POST /{tenant}/introspect` (`token/introspection.rs`).
    pub async fn introspect(
        &self,
        tenant: &Tenant,
        form: &Params,
        creds: &ClientCredentials,
        ctx: &RequestCtx,
    ) -> Result<serde_json::Value, OAuthError> {
        self.tokens.introspect(tenant, form, creds, ctx).await
    }

    /// The tenants' signing keys (for the admin API).
    pub fn signing_keys(&self) -> &SigningKeys {
        self.minter.keys()
    }
}
