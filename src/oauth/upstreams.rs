//! The tenants' IdPs as the flows call them: their endpoints as discovered
//! (`UpstreamDirectory`) and the caller with the apps' credentials (`UpstreamClient`),
//! replaced whole when the tenant files are reloaded.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::error::{ErrorCode, OAuthError};
use crate::config::Tenant;
use crate::domain::ResourceUri;
use crate::upstream::provider::Provider;
use crate::upstream::tokens::{UpstreamApp, UpstreamClient};
use crate::upstream::{UpstreamDirectory, UpstreamEndpoints};

pub(crate) struct Upstreams {
    directory: UpstreamDirectory,
    /// Replaced whole when the tenant files are reloaded (`install`).
    client: ArcSwap<UpstreamClient>,
}

impl Upstreams {
    pub(crate) fn new(directory: UpstreamDirectory, client: UpstreamClient) -> Self {
        Self {
            directory,
            client: ArcSwap::from_pointee(client),
        }
    }

    /// Calls the IdPs with `client` from now on; calls under way finish with the old one.
    pub(crate) fn install(&self, client: UpstreamClient) {
        self.client.store(Arc::new(client));
    }

    /// The IdP caller of the current tenant set.
    pub(crate) fn client(&self) -> Arc<UpstreamClient> {
        self.client.load_full()
    }

    /// The tenant's IdP endpoints, once discovered (why not, else).
    pub(crate) fn endpoints(&self, tenant: &Tenant) -> Result<UpstreamEndpoints, String> {
        self.directory.endpoints(tenant)
    }

    /// The tenant's IdP endpoints and its app `app`, for a call to the IdP's token endpoint;
    /// `temporarily_unavailable` (with the reason in the log) while the IdP is not discovered.
    pub(crate) fn app<'t>(
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
        let endpoints = self.endpoints(tenant).map_err(|e| unavailable(&e))?;
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

/// The `resource` to send upstream for one of the tenant's resources (see `Provider`).
pub(crate) fn upstream_resource(tenant: &Tenant, resource_uri: &ResourceUri) -> Option<String> {
    let resource = tenant.resource(resource_uri.as_str())?;
    Provider::of(tenant).upstream_resource(resource)
}
