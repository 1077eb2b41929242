//! The tenants' IdPs as the flows call them: their endpoints as discovered
//! (`UpstreamDirectory`) and the caller with the apps' credentials (`UpstreamClient`), part
//! of the tenant set in force (`serving.rs`).

use std::sync::Arc;

use super::error::{ErrorCode, OAuthError};
use super::serving::Serving;
use crate::config::Tenant;
use crate::domain::ResourceUri;
use crate::upstream::provider::Provider;
use crate::upstream::tokens::{UpstreamApp, UpstreamClient};
use crate::upstream::{UpstreamDirectory, UpstreamEndpoints};

pub(crate) struct Upstreams {
    directory: UpstreamDirectory,
    /// The tenant set in force, with the IdP caller built for it.
    serving: Arc<Serving>,
}

impl Upstreams {
    pub(crate) fn new(directory: UpstreamDirectory, serving: Arc<Serving>) -> Self {
        Self { directory, serving }
    }

    /// The IdP caller of the tenant set in force; calls under way finish with theirs.
    pub(crate) fn client(&self) -> Arc<UpstreamClient> {
        self.serving.upstream()
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
