//! Scope translation: the MCP-facing names a client asks for ↔ the upstream scope strings the
//! IdP understands. Clients may use either form; the shim answers with names.

use super::error::{ErrorCode, OAuthError};
use crate::config::tenant::{AppConfig, ResourceConfig};
use crate::domain::ScopeSet;

/// A translated scope request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScopeGrant {
    /// MCP-facing names, in the resource's order.
    pub(crate) names: ScopeSet,
    /// Upstream scope strings for those names.
    pub(crate) upstream: ScopeSet,
}

/// Translates a requested `scope` for one resource and the app it is mapped to.
pub(crate) fn translate(
    resource: &ResourceConfig,
    app: &AppConfig,
    requested: Option<&str>,
) -> Result<ScopeGrant, OAuthError> {
    let tokens = match requested {
        Some(s) => ScopeSet::parse(s).map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e))?,
        None => ScopeSet::default(),
    };
    let mut wanted: Vec<&str> = Vec::new();
    for t in tokens.iter() {
        match t {
            // Refresh tokens follow the client's registered grant types, not this scope.
            "offline_access" | "openid" | "profile" | "email" => {}
            other => {
                let found = resource
                    .scopes
                    .iter()
                    .find(|s| s.name == other || s.upstream == other);
                match found {
                    Some(s) => wanted.push(&s.name),
                    None => {
                        let known: Vec<&str> =
                            resource.scopes.iter().map(|s| s.name.as_str()).collect();
                        return Err(OAuthError::new(
                            ErrorCode::InvalidScope,
                            format!(
                                "'{other}' is not a scope of {}; this resource offers: {}",
                                resource.uri,
                                known.join(" ")
                            ),
                        ));
                    }
                }
            }
        }
    }
    if wanted.is_empty() {
        wanted = if resource.default_scopes.is_empty() {
            resource.scopes.iter().map(|s| s.name.as_str()).collect()
        } else {
            resource.default_scopes.iter().map(String::as_str).collect()
        };
    }
    let mut names = ScopeSet::default();
    let mut upstream = ScopeSet::default();
    for s in &resource.scopes {
        if wanted.contains(&s.name.as_str()) {
            if !app.scopes.is_empty() && !app.scopes.contains(&s.upstream) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("'{}' is not available to this client", s.name),
                ));
            }
            names.insert(s.name.as_str());
            upstream.insert(s.upstream.as_str());
        }
    }
    Ok(ScopeGrant { names, upstream })
}
