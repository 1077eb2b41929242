//! `AuthServer`: the login flow's dependencies in one place, shared by the flow modules
//! (`authorize`, `consent`, `callback`, `token`).

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::error::{ErrorCode, OAuthError};
use super::family::Families;
use super::registration::ClientRegistry;
use crate::config::Tenant;
use crate::crypto::{Sealer, Signer};
use crate::minting::SigningKeys;
use crate::store::Records;
use crate::upstream::UpstreamDirectory;
use crate::upstream::tokens::{UpstreamApp, UpstreamClient};

pub struct AuthServer {
    pub(super) records: Records,
    pub(super) registry: ClientRegistry,
    pub(super) upstreams: UpstreamDirectory,
    /// Replaced whole when the tenant files are reloaded (`install_upstream`).
    upstream: ArcSwap<UpstreamClient>,
    pub(super) sealer: Sealer,
    pub(super) signer: Signer,
    /// The tenants' keys for minted access tokens.
    pub(super) signing_keys: Arc<SigningKeys>,
    /// Revocation and locks of the refresh families (`family.rs`).
    pub(super) families: Families,
}

impl AuthServer {
    pub(crate) fn new(
        records: Records,
        registry: ClientRegistry,
        upstreams: UpstreamDirectory,
        upstream: UpstreamClient,
        sealer: Sealer,
        signer: Signer,
        signing_keys: Arc<SigningKeys>,
    ) -> Self {
        Self {
            families: Families::new(records.clone()),
            records,
            registry,
            upstreams,
            upstream: ArcSwap::from_pointee(upstream),
            sealer,
            signer,
            signing_keys,
        }
    }

    /// Calls the IdPs with `upstream` from now on; calls under way finish with the old one.
    pub(crate) fn install_upstream(&self, upstream: UpstreamClient) {
        self.upstream.store(Arc::new(upstream));
    }

    /// The IdP caller of the current tenant set.
    pub(super) fn upstream(&self) -> Arc<UpstreamClient> {
        self.upstream.load_full()
    }

    /// The tenant's IdP endpoints and its app `app`, for a call to the IdP's token endpoint;
    /// `temporarily_unavailable` (with the reason in the log) while the IdP is not discovered.
    pub(super) fn upstream_app<'t>(
        &self,
        tenant: &'t Tenant,
        app: &str,
    ) -> Result<UpstreamApp<'t>, OAuthError> {
        let unavailable = |why: &str| {
            tracing::warn!(tenant = %tenant.id, app, reason = why, "the IdP cannot be called");
            OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the identity provider is not reachable right now",
            )
        };
        let endpoints = self
            .upstreams
            .endpoints(tenant)
            .map_err(|e| unavailable(&e))?;
        let app = tenant
            .app(app)
            .ok_or_else(|| unavailable("the app is no longer in the tenant file"))?;
        Ok(UpstreamApp {
            tenant,
            endpoints,
            app,
        })
    }
}
