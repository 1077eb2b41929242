//! `[[downstream_apis]]`: APIs an MCP server may call on the user's behalf through token
//! exchange (RFC 8693): the shim uses the login's IdP refresh token to get the IdP's access
//! token for the API. A minted resource names the APIs its server may reach (`exchange`).

use std::collections::HashSet;

use serde::Deserialize;

use super::app::AppConfig;
use super::resource::ResourceConfig;
use crate::domain::ResourceUri;
use crate::domain::scope::is_scope_token;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownstreamApi {
    /// What `audience` names in an exchange request, and resources' `exchange` lists.
    pub name: String,
    /// What `resource` names in an exchange request; for `oidc` and `dev` upstreams also the
    /// RFC 8707 `resource` sent to the IdP.
    pub(crate) uri: Option<String>,
    /// The upstream scopes asked for (Entra: fully qualified, of this API).
    pub(crate) scopes: Vec<String>,
    /// The app registration whose logins may reach the API (it holds the permission); any
    /// login's app when absent.
    pub(crate) app: Option<String>,
}

impl DownstreamApi {
    /// Whether an exchange request's `resource` or `audience` names this API.
    pub(crate) fn is_named_by(&self, resource: Option<&str>, audience: Option<&str>) -> bool {
        let by_uri = |v: &str| {
            self.uri
                .as_deref()
                .is_some_and(|u| ResourceUri::new(u).matches(v))
        };
        let resource_ok = resource.is_none_or(by_uri);
        let audience_ok = audience.is_none_or(|a| a == self.name || by_uri(a));
        (resource.is_some() || audience.is_some()) && resource_ok && audience_ok
    }
}

/// Problems with the `[[downstream_apis]]` tables and the resources' `exchange` lists, as
/// (field, message).
pub(crate) fn problems(
    apis: &[DownstreamApi],
    apps: &[AppConfig],
    resources: &[ResourceConfig],
    entra: bool,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, api) in apis.iter().enumerate() {
        let at = |f: &str| format!("downstream_apis[{i}].{f}");
        if api.name.is_empty() || api.name.contains(char::is_whitespace) {
            out.push((at("name"), "must be a name without spaces".to_owned()));
        } else if !names.insert(api.name.as_str()) {
            out.push((at("name"), format!("'{}' is used twice", api.name)));
        }
        if let Some(u) = &api.uri
            && url::Url::parse(u).is_err()
        {
            out.push((at("uri"), format!("'{u}' is not an absolute URI")));
        }
        if api.scopes.is_empty() {
            out.push((
                at("scopes"),
                "at least one upstream scope is required".to_owned(),
            ));
        }
        for s in &api.scopes {
            if !is_scope_token(s) {
                out.push((at("scopes"), format!("'{s}' is not a valid scope")));
            } else if entra && !s.contains('/') {
                out.push((at("scopes"), format!("'{s}' is a bare scope, which Entra reads as Microsoft Graph's; write it fully qualified (api://<app-id>/{s}, or https://graph.microsoft.com/{s} for Graph)")));
            }
        }
        if let Some(app) = &api.app
            && !apps.iter().any(|a| &a.name == app)
        {
            out.push((
                at("app"),
                format!("'{app}' is not the name of an app in this file"),
            ));
        }
    }
    for (i, r) in resources.iter().enumerate() {
        for name in &r.exchange {
            if !apis.iter().any(|a| &a.name == name) {
                out.push((
                    format!("resources[{i}].exchange"),
                    format!("'{name}' is not the name of a [[downstream_apis]] table"),
                ));
            }
        }
        if !r.exchange.is_empty() && !r.is_minted() {
            out.push((format!("resources[{i}].exchange"), "token exchange takes a minted token of this resource as its subject; set token = \"minted\"".to_owned()));
        }
    }
    out
}
