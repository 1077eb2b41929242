//! Mapping ephemeral clients onto the tenant's static apps (the `[[mapping]]` rules of
//! docs/tenants.md): ordered rules, first match wins, no match → the first app.

use std::collections::BTreeMap;

use super::error::OAuthError;
use crate::config::Tenant;
use crate::config::tenant::{AppConfig, MappingRule, ResourceConfig};
use crate::domain::{ClientMetadata, ClientRecord, RedirectKind, ResourceUri};

/// What the rules can see of a client.
#[derive(Clone, Debug)]
pub(crate) struct ClientFacts<'a> {
    pub(crate) cimd_host: Option<&'a str>,
    pub(crate) redirect_kinds: Vec<RedirectKind>,
    pub(crate) software_id: Option<&'a str>,
}

impl<'a> ClientFacts<'a> {
    pub(crate) fn of(metadata: &'a ClientMetadata, cimd_host: Option<&'a str>) -> Self {
        Self {
            cimd_host,
            redirect_kinds: metadata.redirect_kinds().collect(),
            software_id: metadata.software_id.as_deref(),
        }
    }
}

fn rule_matches(rule: &MappingRule, facts: &ClientFacts<'_>, resource: &ResourceUri) -> bool {
    let host_ok = rule.cimd_hosts.is_empty()
        || facts
            .cimd_host
            .is_some_and(|h| rule.cimd_hosts.iter().any(|p| p.matches(h)));
    let kinds_ok = rule.redirect_kinds.is_empty()
        || facts
            .redirect_kinds
            .iter()
            .all(|k| rule.redirect_kinds.contains(k));
    let software_ok = rule.software_ids.is_empty()
        || facts
            .software_id
            .is_some_and(|s| rule.software_ids.iter().any(|r| r == s));
    let resource_ok =
        rule.resources.is_empty() || rule.resources.iter().any(|r| resource.matches(r));
    host_ok && kinds_ok && software_ok && resource_ok
}

/// The rule that maps one client for one resource, if any does.
pub(crate) fn choosing_rule<'t>(
    tenant: &'t Tenant,
    facts: &ClientFacts<'_>,
    resource: &ResourceUri,
) -> Option<&'t MappingRule> {
    tenant
        .mapping_rules()
        .iter()
        .find(|rule| rule_matches(rule, facts, resource))
}

/// The app for one client and one requested resource.
pub(crate) fn choose_app<'t>(
    tenant: &'t Tenant,
    facts: &ClientFacts<'_>,
    resource: &ResourceUri,
) -> &'t str {
    choosing_rule(tenant, facts, resource)
        .map(|rule| rule.app.as_str())
        .or_else(|| tenant.apps().first().map(|a| a.name.as_str()))
        .unwrap_or_default()
}

/// The app for each of the tenant's resources: what is recorded with the client.
pub(crate) fn choose_apps(tenant: &Tenant, facts: &ClientFacts<'_>) -> BTreeMap<String, String> {
    tenant
        .resources()
        .iter()
        .map(|r| {
            (
                r.uri.to_string(),
                choose_app(tenant, facts, &r.uri).to_owned(),
            )
        })
        .collect()
}

/// The app `client` is mapped onto for `resource` (by its registration, else the mapping rules).
pub(crate) fn mapped_app<'t>(
    tenant: &'t Tenant,
    client: &ClientRecord,
    resource: &ResourceConfig,
) -> Result<&'t AppConfig, OAuthError> {
    let app_name = client
        .apps
        .get(resource.uri.as_str())
        .cloned()
        .unwrap_or_else(|| {
            choose_app(
                tenant,
                &ClientFacts::of(&client.metadata, client.cimd_host()),
                &resource.uri,
            )
            .to_owned()
        });
    tenant.app(&app_name).ok_or_else(|| {
        tracing::error!(tenant = %tenant.id, client_id = %client.client_id, app = %app_name, "client is mapped to an app that no longer exists; re-map it");
        OAuthError::server_error()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        Tenant::of_config(
            toml::from_str(
                r#"
            upstream = { kind = "dev" }
            [[apps]]
            name = "untrusted"
            client_id = "u"
            credential = { kind = "none" }
            [[apps]]
            name = "trusted"
            client_id = "t"
            credential = { kind = "none" }
            [[apps]]
            name = "admin"
            client_id = "a"
            credential = { kind = "none" }
            [[resources]]
            uri = "https://mcp.example/files"
            default = true
            scopes = [{ name = "files.read", upstream = "files.read" }]
            [[resources]]
            uri = "https://mcp.example/admin"
            scopes = [{ name = "admin", upstream = "admin" }]
            [[mapping]]
            app = "admin"
            resources = ["https://mcp.example/admin"]
            software_ids = ["ops-agent"]
            [[mapping]]
            app = "trusted"
            cimd_hosts = ["claude.ai", "*.vscode.dev"]
            [[mapping]]
            app = "untrusted"
            redirect_kinds = ["loopback"]
            "#,
            )
            .unwrap(),
        )
    }

    #[test]
    fn first_match_wins_and_default_is_first_app() {
        let t = tenant();
        let files = &ResourceUri::new("https://mcp.example/files");
        let admin = &ResourceUri::new("https://mcp.example/admin");
        let facts = |host, kinds: Vec<RedirectKind>, sw| ClientFacts {
            cimd_host: host,
            redirect_kinds: kinds,
            software_id: sw,
        };
        use RedirectKind::*;
        assert_eq!(
            choose_app(&t, &facts(Some("claude.ai"), vec![Https], None), files),
            "trusted"
        );
        assert_eq!(
            choose_app(
                &t,
                &facts(Some("x.vscode.dev"), vec![Loopback], None),
                files
            ),
            "trusted"
        );
        assert_eq!(
            choose_app(
                &t,
                &facts(Some("evil.example"), vec![Loopback], None),
                files
            ),
            "untrusted"
        );
        assert_eq!(
            choose_app(&t, &facts(None, vec![Loopback, Https], None), files),
            "untrusted"
        );
        assert_eq!(
            choose_app(&t, &facts(None, vec![Loopback], Some("ops-agent")), admin),
            "admin"
        );
        assert_eq!(
            choose_app(&t, &facts(None, vec![Loopback], Some("ops-agent")), files),
            "untrusted"
        );
        let apps = choose_apps(&t, &facts(None, vec![Loopback], Some("ops-agent")));
        assert_eq!(apps[admin.as_str()], "admin");
        assert_eq!(apps[files.as_str()], "untrusted");
    }
}
