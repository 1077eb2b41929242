//! One `[[resources]]` table of a tenant file: an MCP server the tenant fronts, its scopes,
//! and what its clients receive as access tokens (`token_mode.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::token_mode::{
    DEFAULT_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME, RESERVED_CLAIMS, TokenMode,
    TokenSigningAlg,
};
use crate::domain::ResourceUri;

/// An MCP server the tenant fronts (an RFC 8707 resource).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    pub uri: ResourceUri,
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) default: bool,
    pub(crate) scopes: Vec<ScopeConfig>,
    /// MCP-facing scope names granted when a request names none; empty means all.
    #[serde(default)]
    pub(crate) default_scopes: Vec<String>,
    /// For `oidc` and `dev` upstreams: the RFC 8707 `resource` to send upstream (the API
    /// identifier the IdP knows). Never sent to Entra, which takes the resource from the scopes.
    pub(crate) upstream_resource: Option<String>,
    /// What the client receives as its access token (`token_mode.rs`).
    #[serde(default)]
    pub token: TokenMode,
    /// Lifetime of a minted access token.
    #[serde(default, with = "humantime_serde")]
    pub token_lifetime: Option<Duration>,
    /// Claims copied from the IdP's ID token into minted tokens: upstream name → name in the
    /// token (`roles = "roles"`, `upn = "email"`).
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// Whether each refresh of a minted token also refreshes at the IdP (default true), so that
    /// a user disabled or blocked there loses access at the next refresh.
    #[serde(default)]
    pub refresh_upstream: Option<bool>,
    /// The `[[downstream_apis]]` its MCP server may reach by token exchange, by name.
    #[serde(default)]
    pub exchange: Vec<String>,
    /// This resource's grants' absolute lifetime, instead of the tenant's `[grants]`.
    #[serde(default, with = "humantime_serde")]
    pub grant_lifetime: Option<Duration>,
    /// This resource's grants' idle lifetime, instead of the tenant's `[grants]`.
    #[serde(default, with = "humantime_serde")]
    pub grant_idle_lifetime: Option<Duration>,
}

/// One MCP-facing scope name and the upstream scope string it stands for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeConfig {
    pub(crate) name: String,
    pub(crate) upstream: String,
    /// Said on the consent page ("Read your files").
    pub(crate) description: Option<String>,
}

/// The minted-token fields of a `[[resources]]` table (`token`, `token_lifetime`, `claims`,
/// `refresh_upstream`). Every one but `token` is refused on a passthrough resource, where it
/// would do nothing.
impl ResourceConfig {
    pub fn is_minted(&self) -> bool {
        self.token == TokenMode::Minted
    }

    pub fn lifetime(&self) -> Duration {
        self.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME)
    }

    /// How long the family (the login) of a minted token with no refresh token is kept: as
    /// long as the token lives, and a minute more.
    pub fn family_seconds_without_refresh(&self) -> u64 {
        self.lifetime().as_secs() + 60
    }

    pub fn refreshes_upstream(&self) -> bool {
        self.refresh_upstream.unwrap_or(true)
    }

    /// One line for `check`: the resource's token mode and what its MCP server must validate.
    pub fn token_summary(&self, issuer: &str, upstream_kind: &str, alg: TokenSigningAlg) -> String {
        let uri = self.uri.as_str();
        match self.token {
            TokenMode::Minted => format!(
                "resource {uri}: minted tokens ({} lifetime); its MCP server validates JWTs with typ at+jwt, alg {}, keys from {issuer}/jwks, iss {issuer}, aud {uri}",
                humantime::format_duration(self.lifetime()),
                alg.as_str()
            ),
            TokenMode::Passthrough => {
                let audience = match (upstream_kind, &self.upstream_resource) {
                    ("entra", _) => "the API of its scopes".to_owned(),
                    (_, Some(r)) => r.clone(),
                    ("dev", None) => uri.to_owned(),
                    _ => "what the IdP sets".to_owned(),
                };
                format!(
                    "resource {uri}: passthrough tokens; its MCP server validates the IdP's access tokens (issuer and keys of the {upstream_kind} IdP, audience {audience})"
                )
            }
        }
    }

    /// Problems with these settings, as (field, message).
    pub(crate) fn token_problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !self.is_minted() {
            let only_minted = "applies only to minted tokens; add token = \"minted\" or remove it";
            if self.token_lifetime.is_some() {
                out.push(("token_lifetime", only_minted.to_owned()));
            }
            if !self.claims.is_empty() {
                out.push(("claims", only_minted.to_owned()));
            }
            if self.refresh_upstream.is_some() {
                out.push(("refresh_upstream", only_minted.to_owned()));
            }
            return out;
        }
        let lifetime = self.lifetime();
        if !(MIN_TOKEN_LIFETIME..=MAX_TOKEN_LIFETIME).contains(&lifetime) {
            out.push((
                "token_lifetime",
                format!(
                    "must be between 1m and 24h (it is {})",
                    humantime::format_duration(lifetime)
                ),
            ));
        }
        let mut targets = std::collections::HashSet::new();
        for (from, to) in &self.claims {
            if from.is_empty() || to.is_empty() {
                out.push(("claims", "claim names must not be empty".to_owned()));
            } else if RESERVED_CLAIMS.contains(&to.as_str()) {
                out.push(("claims", format!("'{from}' would be copied as '{to}', a claim the shim sets itself; copy it under another name")));
            } else if !targets.insert(to.as_str()) {
                out.push(("claims", format!("two claims are copied as '{to}'")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> ResourceConfig {
        toml::from_str(&format!(
            "uri = \"https://mcp.example.com\"\nscopes = []\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn passthrough_is_the_default_and_refuses_minted_fields() {
        let s = parse("");
        assert_eq!(s.token, TokenMode::Passthrough);
        assert!(s.token_problems().is_empty());
        let s = parse("token_lifetime = \"5m\"\nclaims = { roles = \"roles\" }");
        let fields: Vec<_> = s.token_problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["token_lifetime", "claims"]);
    }

    #[test]
    fn minted_settings_are_checked() {
        let s = parse("token = \"minted\"\nclaims = { roles = \"roles\", upn = \"email\" }");
        assert!(s.token_problems().is_empty(), "{:?}", s.token_problems());
        assert_eq!(s.lifetime(), DEFAULT_TOKEN_LIFETIME);
        assert!(s.refreshes_upstream());
        let s = parse("token = \"minted\"\ntoken_lifetime = \"2days\"\nclaims = { upn = \"sub\" }");
        let fields: Vec<_> = s.token_problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["token_lifetime", "claims"]);
        let s = parse("token = \"minted\"\nclaims = { upn = \"who\", email = \"who\" }");
        assert_eq!(s.token_problems().len(), 1);
    }
}
