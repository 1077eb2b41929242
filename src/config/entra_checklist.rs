//! What an Entra admin must see in the portal for a tenant file to work, app by app: printed
//! by `dcr-shim check`, so that the first user's login does not discover it.

use std::collections::BTreeMap;

use super::tenant::{AppConfig, CredentialConfig, Tenant, UpstreamConfig};

/// The checklist of an `entra` tenant, as lines to print; empty for other upstreams.
pub fn entra_checklist(t: &Tenant) -> Vec<String> {
    if !matches!(t.config.upstream, UpstreamConfig::Entra { .. }) {
        return Vec::new();
    }
    let mut lines = Vec::new();
    for (api, scopes) in &exposed_apis(t) {
        lines.push(format!(
            "Entra API {api}: on the API's app registration, Expose an API → Application ID URI {api}, scopes {}; Manifest → \"requestedAccessTokenVersion\": 2 (v2 tokens, whose issuer the MCP server checks)",
            scopes.join(", ")
        ));
    }
    for app in &t.config.apps {
        lines.push(format!(
            "Entra app '{}' (Application (client) ID {}):",
            app.name, app.client_id
        ));
        lines.push(format!(
            "  Authentication → Web platform → redirect URI {}/callback (Web, not SPA nor mobile)",
            t.issuer
        ));
        lines.push(format!(
            "  API permissions → delegated {}, with admin consent granted for the directory",
            delegated_permissions(t, app).join(", ")
        ));
        lines.push(format!("  {}", credential_step(&app.credential)));
    }
    lines
}

/// Every upstream scope the resources ask for, grouped by the API (Application ID URI) that
/// must expose it; scopes without an API (`openid`…) are left out.
pub(crate) fn exposed_apis(t: &Tenant) -> BTreeMap<&str, Vec<&str>> {
    let mut apis: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in &t.config.resources {
        for s in &r.scopes {
            let (api, scope) = split_scope(&s.upstream);
            if api.is_empty() {
                continue;
            }
            let scopes = apis.entry(api).or_default();
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
    }
    apis
}

/// The upstream scopes `app` asks for: its own list, else every resource's; once each.
pub(crate) fn delegated_permissions<'a>(t: &'a Tenant, app: &'a AppConfig) -> Vec<&'a str> {
    let all: Vec<&str> = if app.scopes.is_empty() {
        t.config
            .resources
            .iter()
            .flat_map(|r| r.scopes.iter().map(|s| s.upstream.as_str()))
            .collect()
    } else {
        app.scopes.iter().map(String::as_str).collect()
    };
    let mut once = Vec::new();
    for p in all {
        if !once.contains(&p) {
            once.push(p);
        }
    }
    once
}

/// `api://files/files.read` → (`api://files`, `files.read`).
pub(crate) fn split_scope(upstream: &str) -> (&str, &str) {
    match upstream.rsplit_once('/') {
        Some((api, scope)) if !api.is_empty() && !api.ends_with('/') => (api, scope),
        _ => ("", upstream),
    }
}

fn credential_step(c: &CredentialConfig) -> String {
    match c {
        CredentialConfig::ClientSecret { .. } => {
            "Certificates & secrets → a client secret, its value in the secret file or variable (note its expiry: Entra refuses it afterwards with AADSTS7000222)".into()
        }
        CredentialConfig::PrivateKeyJwt {
            certificate_file, ..
        } => format!(
            "Certificates & secrets → Certificates: upload {} (the certificate, never the key)",
            certificate_file.display()
        ),
        CredentialConfig::Federated { .. } => {
            "Certificates & secrets → Federated credentials: the workload's issuer and subject (for AKS: the cluster's OIDC issuer and system:serviceaccount:<namespace>:<service account>)".into()
        }
        CredentialConfig::ManagedIdentity { .. } => {
            "Certificates & secrets → Federated credentials: the managed identity (issuer https://login.microsoftonline.com/<directory>/v2.0, subject its object id)".into()
        }
        CredentialConfig::None => {
            "no credential: a public client (Authentication → Allow public client flows)".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_scope;

    #[test]
    fn scopes_split_into_api_and_name() {
        assert_eq!(
            split_scope("api://mcp-files/files.read"),
            ("api://mcp-files", "files.read")
        );
        assert_eq!(
            split_scope("https://contoso.com/files/Files.Read"),
            ("https://contoso.com/files", "Files.Read")
        );
        assert_eq!(split_scope("offline_access"), ("", "offline_access"));
    }
}
