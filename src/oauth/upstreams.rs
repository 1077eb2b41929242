//! The tenants' IdPs as the flows call them: their endpoints as discovered
//! (`UpstreamDirectory`) and the caller with the apps' credentials (`UpstreamClient`), part
//! of the tenant set in force (`serving.rs`).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::client_assertion::{Unverified, signed_claims};
use super::error::{ErrorCode, OAuthError};
use super::serving::Serving;
use crate::config::Tenant;
use crate::config::resource::ResourceConfig;
use crate::domain::ResourceUri;
use crate::upstream::access_token;
use crate::upstream::idp_keys::IdpKeys;
use crate::upstream::provider::Provider;
use crate::upstream::tokens::{UpstreamApp, UpstreamClient};
use crate::upstream::{UpstreamDirectory, UpstreamEndpoints};

pub(crate) struct Upstreams {
    directory: UpstreamDirectory,
    /// The tenant set in force, with the IdP caller built for it.
    serving: Arc<Serving>,
    /// The IdPs' signing keys, for their access tokens at passthrough gateway resources.
    idp_keys: IdpKeys,
}

impl Upstreams {
    pub(crate) fn new(directory: UpstreamDirectory, serving: Arc<Serving>) -> Self {
        Self {
            directory,
            serving,
            idp_keys: IdpKeys::default(),
        }
    }

    /// The caller's claims (in a minted token's shape) if `token` is an access token the
    /// tenant's IdP issued for `resource`'s API to one of the tenant's apps, valid now
    /// (`access_token.rs`); else why not. An error when the IdP's keys cannot be read.
    pub(crate) async fn idp_token_claims(
        &self,
        tenant: &Tenant,
        resource: &ResourceConfig,
        token: &str,
        now: u64,
    ) -> Result<Result<Map<String, Value>, String>, OAuthError> {
        let (alg, kid) = match access_token::signing_of(token) {
            Ok(s) => s,
            Err(why) => return Ok(Err(why)),
        };
        let unavailable = |why: &str| {
            tracing::warn!(tenant = %tenant.id, resource = %resource.uri, reason = why, "an IdP access token cannot be checked");
            OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the identity provider's keys cannot be read right now; the operator's log has the reason",
            )
        };
        let endpoints = self.endpoints(tenant).map_err(|e| unavailable(&e))?;
        let client = self.client();
        let keys = self
            .idp_keys
            .keys(&client, tenant, &endpoints.jwks_uri, kid.as_deref())
            .await
            .map_err(|e| unavailable(&e))?;
        let claims = match signed_claims::<Map<String, Value>>(token, &keys, kid.as_deref(), alg) {
            Ok(c) => c,
            Err(Unverified::NoKey) => {
                return Ok(Err(
                    "no key of the IdP fits the token's kid and algorithm".into()
                ));
            }
            Err(Unverified::Signature) => {
                return Ok(Err(
                    "the signature does not verify with the IdP's keys".into()
                ));
            }
        };
        let expected = access_token::Expected {
            issuers: access_token::issuers_of(&endpoints.issuer),
            audiences: Provider::of(tenant).access_token_audiences(resource),
            apps: tenant.apps().iter().map(|a| a.client_id.as_str()).collect(),
            scopes: &resource.scopes,
        };
        Ok(access_token::check(&claims, &expected, now))
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
