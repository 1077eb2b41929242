//! Scope translation: the MCP-facing names a client asks for ↔ the upstream scope strings the
//! IdP understands. Clients may use either form; the shim answers with names.
//!
//! Scopes are granted, not refused (RFC 6749 §3.3: the server may grant less than asked and
//! says what it granted in the token response's `scope`): real clients ask for scopes that are
//! not the resource's (claude.ai sends `scope=claudeai`; Claude Desktop asks for every entry of
//! `scopes_supported`, which lists all of a tenant's resources). What cannot be granted is
//! dropped and logged at debug; `invalid_scope` only when nothing at all can be granted.

use super::error::{ErrorCode, OAuthError};
use crate::config::tenant::{AppConfig, ResourceConfig, ScopeConfig};
use crate::domain::ScopeSet;
use crate::domain::scope::is_scope_token;

/// A translated scope request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScopeGrant {
    /// MCP-facing names, in the resource's order.
    pub(crate) names: ScopeSet,
    /// Upstream scope strings for those names.
    pub(crate) upstream: ScopeSet,
}

/// Scopes every OpenID client may send that the shim handles itself: refresh tokens follow the
/// client's registered grant types, and the ID token is the shim's business with the IdP.
const HANDLED_BY_THE_SHIM: &[&str] = &["offline_access", "openid", "profile", "email"];

/// The resource scopes a `scope` parameter names, by MCP-facing name or upstream string, and
/// the tokens it names that are not the resource's. Tokens are split on any run of spaces.
fn named<'r>(resource: &'r ResourceConfig, requested: &str) -> (Vec<&'r ScopeConfig>, Vec<String>) {
    let mut found = Vec::new();
    let mut dropped = Vec::new();
    for token in requested.split_ascii_whitespace() {
        if HANDLED_BY_THE_SHIM.contains(&token) {
            continue;
        }
        match resource
            .scopes
            .iter()
            .find(|s| s.name == token || s.upstream == token)
        {
            Some(s) => found.push(s),
            // Only well-formed tokens reach the log as they are (RFC 6749 §3.3).
            None if is_scope_token(token) => dropped.push(token.to_owned()),
            None => dropped.push("(a malformed scope token)".to_owned()),
        }
    }
    (found, dropped)
}

pub(crate) fn app_may_have(app: &AppConfig, scope: &ScopeConfig) -> bool {
    app.scopes.is_empty() || app.scopes.contains(&scope.upstream)
}

/// The grant for a requested `scope` at `/authorize`: the named scopes of the resource that the
/// mapped app may have; when the request names none of them, the resource's default scopes (all
/// of its scopes when it lists no defaults) that the app may have. `invalid_scope` only when
/// that leaves nothing. Returns the grant and what was dropped, for the log.
pub(crate) fn translate(
    resource: &ResourceConfig,
    app: &AppConfig,
    requested: Option<&str>,
) -> Result<(ScopeGrant, Vec<String>), OAuthError> {
    let (named, mut dropped) = named(resource, requested.unwrap_or_default());
    let mut wanted: Vec<&ScopeConfig> = Vec::new();
    for s in named {
        if app_may_have(app, s) {
            wanted.push(s);
        } else {
            dropped.push(s.name.clone());
        }
    }
    if wanted.is_empty() {
        wanted = resource
            .scopes
            .iter()
            .filter(|s| {
                resource.default_scopes.is_empty() || resource.default_scopes.contains(&s.name)
            })
            .filter(|s| app_may_have(app, s))
            .collect();
    }
    if wanted.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!(
                "none of the scopes of {} is available to this client",
                resource.uri
            ),
        ));
    }
    Ok((grant_in_resource_order(resource, &wanted), dropped))
}

/// The grant for a refresh (RFC 6749 §6): what the request names within the family's grant, or
/// the whole family's grant when it names nothing of it. Never more than the family has.
pub(crate) fn narrow(
    resource: &ResourceConfig,
    family: &ScopeSet,
    requested: Option<&str>,
) -> ScopeGrant {
    let family_scopes: Vec<&ScopeConfig> = resource
        .scopes
        .iter()
        .filter(|s| family.contains(&s.name))
        .collect();
    let (named, _) = named(resource, requested.unwrap_or_default());
    let within: Vec<&ScopeConfig> = named
        .into_iter()
        .filter(|s| family.contains(&s.name))
        .collect();
    let wanted = if within.is_empty() {
        family_scopes
    } else {
        within
    };
    grant_in_resource_order(resource, &wanted)
}

fn grant_in_resource_order(resource: &ResourceConfig, wanted: &[&ScopeConfig]) -> ScopeGrant {
    let mut names = ScopeSet::default();
    let mut upstream = ScopeSet::default();
    for s in &resource.scopes {
        if wanted.iter().any(|w| w.name == s.name) {
            names.insert(s.name.as_str());
            upstream.insert(s.upstream.as_str());
        }
    }
    ScopeGrant { names, upstream }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tenant::TenantConfig;

    fn tenant(default_scopes: &str, app_scopes: &str) -> TenantConfig {
        toml::from_str(&format!(
            r#"
upstream = {{ kind = "dev" }}
[[apps]]
name = "a"
client_id = "a"
scopes = [{app_scopes}]
credential = {{ kind = "none" }}
[[resources]]
uri = "https://mcp.example.com/files"
default_scopes = [{default_scopes}]
scopes = [
  {{ name = "files.read", upstream = "api://f/files.read" }},
  {{ name = "files.write", upstream = "api://f/files.write" }},
]
"#
        ))
        .unwrap()
    }

    fn names(g: &ScopeGrant) -> String {
        g.names.to_string()
    }

    #[test]
    fn granted_not_refused() {
        let t = tenant("\"files.read\"", "");
        let (r, a) = (&t.resources[0], &t.apps[0]);
        let cases = [
            (None, "files.read", ""),
            (Some("claudeai"), "files.read", "claudeai"),
            (Some("files.write  claudeai"), "files.write", "claudeai"),
            (
                Some("api://f/files.write offline_access openid"),
                "files.write",
                "",
            ),
            (Some("files.read files.write"), "files.read files.write", ""),
            (
                Some("https://other.example/scope"),
                "files.read",
                "https://other.example/scope",
            ),
        ];
        for (requested, granted, dropped) in cases {
            let (g, d) = translate(r, a, requested).unwrap();
            assert_eq!(names(&g), granted, "{requested:?}");
            assert_eq!(d.join(" "), dropped, "{requested:?}");
        }
        // An app restricted to reading: write is dropped, and nothing grantable is an error.
        let t = tenant("", "\"api://f/files.read\"");
        let (r, a) = (&t.resources[0], &t.apps[0]);
        let (g, d) = translate(r, a, Some("files.write")).unwrap();
        assert_eq!(
            (names(&g).as_str(), d.join(" ").as_str()),
            ("files.read", "files.write")
        );
        let t = tenant("\"files.write\"", "\"api://f/files.read\"");
        let (r, a) = (&t.resources[0], &t.apps[0]);
        assert_eq!(
            translate(r, a, Some("files.write")).unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn a_refresh_grants_at_most_the_family() {
        let t = tenant("", "");
        let r = &t.resources[0];
        let family: ScopeSet = ["files.read"].into_iter().collect();
        for (requested, granted) in [
            (None, "files.read"),
            (Some("files.read files.write"), "files.read"),
            (Some("files.write"), "files.read"),
            (Some(" api://f/files.read  offline_access "), "files.read"),
        ] {
            assert_eq!(
                names(&narrow(r, &family, requested)),
                granted,
                "{requested:?}"
            );
        }
        let both: ScopeSet = ["files.read", "files.write"].into_iter().collect();
        let g = narrow(r, &both, Some("files.write"));
        assert_eq!(
            (names(&g).as_str(), g.upstream.to_string().as_str()),
            ("files.write", "api://f/files.write")
        );
    }
}
