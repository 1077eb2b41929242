//! `Provider`: what differs between the kinds of upstream IdP (`entra`, `oidc`, `dev`), in one
//! place. Everything else in the shim treats IdPs alike.
//!
//! | rule | entra | oidc | dev |
//! |---|---|---|---|
//! | discovery | `{authority}/{directory}/v2.0` | issuer or `discovery_url` | none: built in |
//! | issuer check | exact, GUID case-insensitive, or any GUID for a domain-named directory | exact | — |
//! | `openid` scope upstream | yes | yes | no |
//! | `offline_access` | always | when discovery lists it (or lists no scopes) | always |
//! | `resource` upstream | never (Entra takes it from the scopes) | `upstream_resource` | `upstream_resource`, else the MCP URI |

use crate::config::Tenant;
use crate::config::tenant::{ResourceConfig, UpstreamConfig};
use crate::domain::ScopeSet;

use super::discovery::UpstreamEndpoints;

/// One tenant's upstream, by kind.
#[derive(Clone, Copy)]
pub struct Provider<'t> {
    config: &'t UpstreamConfig,
}

impl<'t> Provider<'t> {
    pub fn of(tenant: &'t Tenant) -> Self {
        Self {
            config: &tenant.config.upstream,
        }
    }

    pub(crate) fn new(config: &'t UpstreamConfig) -> Self {
        Self { config }
    }

    /// The built-in dev IdP: no discovery, token calls in process, its own pages.
    pub fn is_built_in(&self) -> bool {
        matches!(self.config, UpstreamConfig::Dev { .. })
    }

    /// The dev IdP on a non-loopback listener, which the tenant file did not allow.
    pub(crate) fn refuses_listener(&self, listener_is_loopback: bool) -> bool {
        matches!(
            self.config,
            UpstreamConfig::Dev {
                allow_non_loopback: false
            }
        ) && !listener_is_loopback
    }

    /// The built-in IdP's endpoints under the tenant's issuer.
    pub(crate) fn built_in_endpoints(tenant_issuer: &str) -> UpstreamEndpoints {
        UpstreamEndpoints {
            issuer: format!("{tenant_issuer}/dev-idp"),
            authorization_endpoint: format!("{tenant_issuer}/dev-idp/authorize"),
            token_endpoint: format!("{tenant_issuer}/dev-idp/token"),
            offers_refresh: true,
        }
    }

    /// Whether refresh tokens are asked for, given what discovery said. Entra always issues
    /// them for `offline_access`, whatever its metadata lists.
    pub(crate) fn offers_refresh(&self, discovered: bool) -> bool {
        discovered || matches!(self.config, UpstreamConfig::Entra { .. })
    }

    /// The `scope` of the upstream authorization request: `openid` (except for the dev IdP,
    /// which is not an OpenID provider), the granted upstream scopes, and `offline_access`
    /// where refresh tokens are offered.
    pub(crate) fn authorization_scopes(
        &self,
        granted: &ScopeSet,
        offers_refresh: bool,
    ) -> ScopeSet {
        let mut scopes = granted.clone();
        if !self.is_built_in() {
            scopes.insert_first("openid");
        }
        if offers_refresh {
            scopes.insert("offline_access");
        }
        scopes
    }

    /// The `scope` of an upstream refresh (RFC 6749 §6): the granted upstream scopes, and
    /// `offline_access` so that the IdP rotates its refresh token.
    pub(crate) fn refresh_scopes(&self, granted: &ScopeSet, offers_refresh: bool) -> ScopeSet {
        let mut scopes = granted.clone();
        if offers_refresh {
            scopes.insert("offline_access");
        }
        scopes
    }

    /// The RFC 8707 `resource` to send upstream for an MCP resource.
    pub(crate) fn upstream_resource(&self, resource: &ResourceConfig) -> Option<String> {
        match self.config {
            UpstreamConfig::Entra { .. } => None,
            UpstreamConfig::Oidc { .. } => resource.upstream_resource.clone(),
            UpstreamConfig::Dev { .. } => Some(
                resource
                    .upstream_resource
                    .clone()
                    .unwrap_or_else(|| resource.uri.to_string()),
            ),
        }
    }

    /// Whether the issuer a discovery document names is the configured one. Entra names its
    /// issuer by the directory's GUID, so a tenant configured by verified domain
    /// (contoso.onmicrosoft.com) accepts `{authority}/{guid}/v2.0`; GUIDs compare without
    /// regard to case.
    pub(crate) fn issuer_matches(&self, found: &str, expected: &str) -> bool {
        if found == expected {
            return true;
        }
        match self.config {
            UpstreamConfig::Entra { .. } if found.eq_ignore_ascii_case(expected) => true,
            UpstreamConfig::Entra {
                directory_id,
                authority,
            } if directory_id.contains('.') => found
                .strip_prefix(&format!("{}/", authority.trim_end_matches('/')))
                .and_then(|rest| rest.strip_suffix("/v2.0"))
                .is_some_and(|guid| {
                    guid.len() == 36 && guid.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
                }),
            _ => false,
        }
    }
}
