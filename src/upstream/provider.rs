//! `Provider`: what differs between the kinds of upstream IdP (`entra`, `oidc`, `dev`), in one
//! place. Everything else in the shim treats IdPs alike.
//!
//! | rule | entra | oidc | dev |
//! |---|---|---|---|
//! | discovery | `{authority}/{directory}/v2.0` | issuer or `discovery_url` | none: built in |
//! | issuer check | exact, GUID case-insensitive, or any GUID for a domain-named directory | exact | — |
//! | `openid` scope upstream | yes | yes | yes |
//! | `offline_access` | always | when discovery lists it (or lists no scopes) | always |
//! | `resource` upstream | never (Entra takes it from the scopes) | `upstream_resource` | `upstream_resource`, else the MCP URI |
//! | downstream APIs (token exchange) at login | no | their scopes and `resource`s | no |
//! | `prompt` upstream | the client's, without `consent` | the same, plus `consent` with `offline_access` unless `consent_for_refresh = false` | the client's, without `consent` |

use crate::config::Tenant;
use crate::config::downstream_api::DownstreamApi;
use crate::config::tenant::{ResourceConfig, UpstreamConfig};
use crate::domain::ScopeSet;

use super::endpoints::UpstreamEndpoints;

/// One tenant's upstream, by kind.
#[derive(Clone, Copy)]
pub struct Provider<'t> {
    config: &'t UpstreamConfig,
}

impl<'t> Provider<'t> {
    pub fn of(tenant: &'t Tenant) -> Self {
        Self {
            config: tenant.upstream(),
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
            jwks_uri: format!("{tenant_issuer}/dev-idp/jwks"),
            offers_refresh: true,
        }
    }

    /// Whether refresh tokens are asked for, given what discovery said. Entra always issues
    /// them for `offline_access`, whatever its metadata lists.
    pub(crate) fn offers_refresh(&self, discovered: bool) -> bool {
        discovered || matches!(self.config, UpstreamConfig::Entra { .. })
    }

    /// The `scope` of the upstream authorization request: `openid`, the granted upstream
    /// scopes, and `offline_access` where refresh tokens are offered.
    pub(crate) fn authorization_scopes(
        &self,
        granted: &ScopeSet,
        offers_refresh: bool,
    ) -> ScopeSet {
        let mut scopes = granted.clone();
        scopes.insert_first("openid");
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

    /// The `prompt` of the upstream authorization request (OpenID Connect Core §3.1.2.1). The
    /// client's `consent` is answered by the shim's own consent page and never forwarded: Entra
    /// would show its own consent screen on every login, and in a directory that restricts user
    /// consent refuse non-admins with AADSTS90094 even after admin consent. An `oidc` provider
    /// gets `consent` when refresh tokens are asked for (OpenID Connect Core §11), unless the
    /// tenant turned that off.
    pub(crate) fn authorization_prompt(
        &self,
        client_prompt: Option<&str>,
        asks_for_refresh: bool,
    ) -> Option<String> {
        let mut values: Vec<&str> = client_prompt
            .unwrap_or_default()
            .split(' ')
            .filter(|v| !v.is_empty() && *v != "consent")
            .collect();
        let oidc_needs_consent = matches!(
            self.config,
            UpstreamConfig::Oidc {
                consent_for_refresh: true,
                ..
            }
        ) && asks_for_refresh;
        // `none` forbids any page, so it cannot be combined with `consent` (§3.1.2.1).
        if oidc_needs_consent && !values.contains(&"none") {
            values.push("consent");
        }
        (!values.is_empty()).then(|| values.join(" "))
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

    /// How a login asks the IdP for the sign-in strengths `wanted`, with the client's own
    /// `claims` request: (`claims`, `acr_values`). Entra takes a Conditional Access
    /// authentication context (`c1`…`c99`) as a `claims` request for `acrs` in the access
    /// token (its developer guide to authentication context), merged into the client's; other
    /// values, and other IdPs, take `acr_values` (OpenID Connect Core §3.1.2.1).
    pub(crate) fn sign_in_request(
        &self,
        wanted: &[String],
        client_claims: Option<&str>,
    ) -> (Option<String>, Option<String>) {
        let (contexts, others): (Vec<&String>, Vec<&String>) = match self.config {
            UpstreamConfig::Entra { .. } => wanted
                .iter()
                .partition(|v| crate::config::entra_rules::is_auth_context(v)),
            _ => (Vec::new(), wanted.iter().collect()),
        };
        let acr_values = (!others.is_empty()).then(|| {
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        });
        if contexts.is_empty() {
            return (client_claims.map(str::to_owned), acr_values);
        }
        let mut claims: serde_json::Map<String, serde_json::Value> = client_claims
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default();
        // The contexts wanted replace whatever the client asked for `acrs` (a client cannot
        // drop them, nor offer another context in their place).
        let access = claims
            .entry("access_token")
            .or_insert_with(|| serde_json::json!({}));
        if !access.is_object() {
            *access = serde_json::json!({});
        }
        let acrs = match contexts.as_slice() {
            [one] => serde_json::json!({"essential": true, "value": one}),
            many => serde_json::json!({"essential": true, "values": many}),
        };
        if let Some(access) = access.as_object_mut() {
            access.insert("acrs".into(), acrs);
        }
        (
            Some(serde_json::Value::Object(claims).to_string()),
            acr_values,
        )
    }

    /// The `aud` values of the IdP's access tokens for `resource`'s API
    /// (`ResourceConfig::idp_token_audiences`).
    pub(crate) fn access_token_audiences(&self, resource: &ResourceConfig) -> Vec<String> {
        self.config.idp_token_audiences(resource)
    }

    /// What a login for `resource` also asks for so that token exchange can reach its
    /// downstream APIs later: their scopes and RFC 8707 resources. Only `oidc`: such providers
    /// tie a refresh token to the resources and scopes granted at login (oidc-provider refuses
    /// any other at refresh), while Entra's refresh tokens reach any consented API and refuse
    /// two resources in one request (AADSTS28000), and the dev IdP grants anything.
    pub(crate) fn login_extras_for_exchange<'a>(
        &self,
        apis: impl Iterator<Item = &'a DownstreamApi>,
    ) -> (Vec<&'a str>, Vec<&'a str>) {
        let mut scopes = Vec::new();
        let mut resources = Vec::new();
        if matches!(self.config, UpstreamConfig::Oidc { .. }) {
            for api in apis {
                scopes.extend(api.scopes.iter().map(String::as_str));
                resources.extend(api.uri.as_deref());
            }
        }
        (scopes, resources)
    }

    /// The RFC 8707 `resource` of a token exchange's upstream refresh: never for Entra (the
    /// scopes name the API), else the downstream API's uri.
    pub(crate) fn downstream_resource(&self, api: &DownstreamApi) -> Option<String> {
        match self.config {
            UpstreamConfig::Entra { .. } => None,
            _ => api.uri.clone(),
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
                ..
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

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(toml_text: &str) -> UpstreamConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn consent_is_never_forwarded_but_a_strict_oidc_provider_gets_it_for_refresh() {
        let entra = upstream(
            r#"kind = "entra"
directory_id = "00000000-0000-0000-0000-000000000000""#,
        );
        let oidc = upstream(
            r#"kind = "oidc"
issuer = "https://idp.example.com""#,
        );
        let lenient = upstream(
            r#"kind = "oidc"
issuer = "https://idp.example.com"
consent_for_refresh = false"#,
        );
        let cases: [(&UpstreamConfig, Option<&str>, bool, Option<&str>); 9] = [
            (&entra, Some("consent"), true, None),
            (&entra, Some("login consent"), true, Some("login")),
            (
                &entra,
                Some("select_account"),
                false,
                Some("select_account"),
            ),
            (&entra, None, true, None),
            (&oidc, Some("consent"), true, Some("consent")),
            (&oidc, None, false, None),
            (&oidc, Some("login"), true, Some("login consent")),
            (&oidc, Some("none"), true, Some("none")),
            (&lenient, Some("consent"), true, None),
        ];
        for (config, client, refresh, expected) in cases {
            assert_eq!(
                Provider::new(config)
                    .authorization_prompt(client, refresh)
                    .as_deref(),
                expected,
                "{} {client:?} {refresh}",
                config.kind()
            );
        }
    }

    #[test]
    fn a_passthrough_gateway_accepts_the_apis_audiences() {
        let resource = |extra: &str| -> ResourceConfig {
            toml::from_str(&format!(
                r#"uri = "https://files.example.com/mcp"
scopes = [
  {{ name = "files.read", upstream = "api://files/Files.Read" }},
  {{ name = "files.write", upstream = "api://files/Files.Write" }},
  {{ name = "reports", upstream = "https://contoso.com/reports/Reports.Read" }},
]
{extra}"#
            ))
            .unwrap()
        };
        let entra = upstream(
            r#"kind = "entra"
directory_id = "00000000-0000-0000-0000-000000000000""#,
        );
        let oidc = upstream(
            r#"kind = "oidc"
issuer = "https://idp.example.com""#,
        );
        assert_eq!(
            Provider::new(&entra).access_token_audiences(&resource("")),
            ["api://files", "https://contoso.com/reports"],
            "each App ID URI of the scopes, once"
        );
        let listed = resource(
            "[gateway]\nbackend = \"http://mcp:3000/mcp\"\nidp_audiences = [\"bbbbbbbb-0000-0000-0000-00000000000a\"]",
        );
        assert_eq!(
            Provider::new(&entra).access_token_audiences(&listed),
            ["bbbbbbbb-0000-0000-0000-00000000000a"],
            "the listed ones replace them"
        );
        assert!(
            Provider::new(&oidc)
                .access_token_audiences(&resource(""))
                .is_empty(),
            "an oidc IdP's audience is its upstream_resource, here none"
        );
        assert_eq!(
            Provider::new(&oidc)
                .access_token_audiences(&resource("upstream_resource = \"api://files\"")),
            ["api://files"]
        );
    }

    #[test]
    fn a_sign_in_strength_reaches_entra_as_a_claims_request_and_others_as_acr_values() {
        let entra = upstream(
            r#"kind = "entra"
directory_id = "00000000-0000-0000-0000-000000000000""#,
        );
        let oidc = upstream(
            r#"kind = "oidc"
issuer = "https://idp.example.com""#,
        );
        let wanted = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (claims, acr) = Provider::new(&entra).sign_in_request(&wanted(&["c1"]), None);
        assert_eq!(
            claims.as_deref(),
            Some(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#)
        );
        assert_eq!(acr, None);
        let client = r#"{"id_token":{"auth_time":{"essential":true}},"access_token":{"acrs":{"essential":true,"value":"c9"}}}"#;
        let (claims, acr) =
            Provider::new(&entra).sign_in_request(&wanted(&["c1", "c12", "urn:x"]), Some(client));
        let claims: serde_json::Value = serde_json::from_str(&claims.unwrap()).unwrap();
        assert_eq!(
            claims["id_token"]["auth_time"]["essential"], true,
            "the client's kept"
        );
        assert!(
            !claims.to_string().contains("c9"),
            "the contexts wanted replace the client's"
        );
        assert_eq!(
            claims["access_token"]["acrs"],
            serde_json::json!({"essential": true, "values": ["c1", "c12"]})
        );
        assert_eq!(acr.as_deref(), Some("urn:x"));
        assert_eq!(
            Provider::new(&oidc).sign_in_request(&wanted(&["urn:mfa", "c1"]), Some(client)),
            (Some(client.to_owned()), Some("urn:mfa c1".to_owned()))
        );
        assert_eq!(
            Provider::new(&oidc).sign_in_request(&[], None),
            (None, None)
        );
        let (claims, _) = Provider::new(&entra)
            .sign_in_request(&wanted(&["c1"]), Some(r#"{"access_token":null}"#));
        assert!(
            claims
                .unwrap()
                .contains(r#""acrs":{"essential":true,"value":"c1"}"#)
        );
    }
}
