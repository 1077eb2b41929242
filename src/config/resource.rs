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
    /// What the client receives as its access token (`token_mode.rs`); read as a
    /// `TokenPolicy`, which carries the minted-only settings below.
    #[serde(default)]
    pub(super) token: TokenMode,
    /// Lifetime of a minted access token.
    #[serde(default, with = "humantime_serde")]
    pub(super) token_lifetime: Option<Duration>,
    /// Claims copied from the IdP's ID token into minted tokens: upstream name → name in the
    /// token (`roles = "roles"`, `upn = "email"`).
    #[serde(default)]
    pub(super) claims: BTreeMap<String, String>,
    /// Whether each refresh of a minted token also refreshes at the IdP (default true), so that
    /// a user disabled or blocked there loses access at the next refresh.
    #[serde(default)]
    pub(super) refresh_upstream: Option<bool>,
    /// The `[[downstream_apis]]` its MCP server may reach by token exchange, by name.
    #[serde(default)]
    pub(super) exchange: Vec<String>,
    /// This resource's grants' absolute lifetime, instead of the tenant's `[grants]`.
    #[serde(default, with = "humantime_serde")]
    pub grant_lifetime: Option<Duration>,
    /// This resource's grants' idle lifetime, instead of the tenant's `[grants]`.
    #[serde(default, with = "humantime_serde")]
    pub grant_idle_lifetime: Option<Duration>,
    /// The MCP server the shim serves this resource for (`gateway.rs`); none when the MCP
    /// server is reached directly and checks its tokens itself.
    #[serde(default)]
    pub(crate) gateway: Option<super::gateway::GatewayConfig>,
    /// Whether its minted tokens must be DPoP-bound (RFC 9449): `"allowed"` (the default: a
    /// client that sends a proof gets a bound token, others a bearer token) or `"required"`.
    #[serde(default)]
    pub(super) dpop: DpopMode,
}

/// Whether a minted resource's tokens must be bound to a DPoP key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpopMode {
    /// A client that proves a key gets a token bound to it; one that does not, a bearer token.
    #[default]
    Allowed,
    /// Only bound tokens: the token endpoint wants a proof, the gateway refuses bearer tokens.
    Required,
}

/// One MCP-facing scope name and the upstream scope string it stands for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeConfig {
    pub(crate) name: String,
    pub(crate) upstream: String,
    /// Said on the consent page ("Read your files").
    pub(crate) description: Option<String>,
    /// A sign-in strength the scope stands for: a login that asks for it asks the IdP for one
    /// of these (Entra: a Conditional Access authentication context, `c1`…`c99`, sent as a
    /// `claims` request; other IdPs: `acr_values`), and a gateway call that needs the scope
    /// needs the token to show one (`acr`, or Entra's `acrs`). A scope step-up, which every MCP
    /// client makes, is then a step-up of the sign-in too.
    #[serde(default)]
    pub(crate) acr_values: Vec<String>,
}

/// What a resource's clients receive as access tokens, with the settings of each kind.
#[derive(Clone, Copy, Debug)]
pub enum TokenPolicy<'r> {
    /// The IdP's own access token.
    Passthrough,
    /// A JWT the shim signs for this resource alone (RFC 9068).
    Minted(MintedResource<'r>),
}

/// A resource whose tokens are minted, with the settings only such a resource has
/// (`token_lifetime`, `claims`, `refresh_upstream`, `exchange`; each refused on a passthrough
/// resource, where it would do nothing). Derefs to the resource's other settings.
#[derive(Clone, Copy, Debug)]
pub struct MintedResource<'r>(&'r ResourceConfig);

impl<'r> MintedResource<'r> {
    /// The lifetime of its access tokens.
    pub fn lifetime(&self) -> Duration {
        self.0.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME)
    }

    /// How long the family (the login) of a minted token with no refresh token is kept: as
    /// long as the token lives, and a minute more.
    pub fn family_seconds_without_refresh(&self) -> u64 {
        self.lifetime().as_secs() + 60
    }

    /// The ID token's claims its tokens copy: upstream name → name in the token.
    pub fn claims(&self) -> &'r BTreeMap<String, String> {
        &self.0.claims
    }

    /// Whether each refresh also refreshes at the IdP.
    pub fn refreshes_upstream(&self) -> bool {
        self.0.refresh_upstream.unwrap_or(true)
    }

    /// The downstream APIs its MCP server may reach by token exchange, by name.
    pub fn exchange(&self) -> &'r [String] {
        &self.0.exchange
    }

    /// Whether its tokens must be DPoP-bound.
    pub fn requires_dpop(&self) -> bool {
        self.0.dpop == DpopMode::Required
    }
}

impl std::ops::Deref for MintedResource<'_> {
    type Target = ResourceConfig;

    fn deref(&self) -> &ResourceConfig {
        self.0
    }
}

impl ResourceConfig {
    /// What its clients receive as access tokens.
    pub fn token_policy(&self) -> TokenPolicy<'_> {
        match self.token {
            TokenMode::Passthrough => TokenPolicy::Passthrough,
            TokenMode::Minted => TokenPolicy::Minted(MintedResource(self)),
        }
    }

    /// The resource as a minted one, if its tokens are minted.
    pub fn minted(&self) -> Option<MintedResource<'_>> {
        match self.token_policy() {
            TokenPolicy::Minted(m) => Some(m),
            TokenPolicy::Passthrough => None,
        }
    }

    pub fn is_minted(&self) -> bool {
        self.minted().is_some()
    }

    /// One line for `check` about a gateway resource: where the shim serves it and where it
    /// sends its calls; none for a resource whose MCP server is reached directly.
    pub fn gateway_summary(&self, public_url: &url::Url) -> Option<String> {
        use super::gateway::{GatewayConfig, Routing};
        let g = self.gateway.as_ref()?;
        let at = match GatewayConfig::routing(&self.uri, public_url)? {
            Routing::Host(host) => {
                format!("on its own host {host} (point that name at this server)")
            }
            Routing::Path(path) => format!("at {path} on this server's host"),
        };
        let identity = match g.identity {
            super::gateway::IdentityForm::Jwt => format!(
                "a signed identity JWT (X-Dcr-Shim-Identity, aud {})",
                g.identity_audience.as_deref().unwrap_or(g.backend.as_str())
            ),
            super::gateway::IdentityForm::Headers => {
                "plain identity headers (X-Dcr-Shim-User, -Client, -Scope): only the shim may reach it".to_owned()
            }
            super::gateway::IdentityForm::None => "no identity".to_owned(),
        };
        let identity = match &g.downstream_api {
            Some(api) => format!(
                "{identity} and the IdP's token for the downstream API '{api}' (X-Dcr-Shim-Downstream-Token)"
            ),
            None => identity,
        };
        let origins = match g.allowed_origins.as_slice() {
            [] => "no browser origin but its own".to_owned(),
            list => format!("browser origins {}", list.join(", ")),
        };
        Some(format!(
            "gateway: the shim serves {} {at} and calls {} with {identity}; {} rule(s); {origins}; only JSON and event-stream answers pass",
            self.uri,
            g.backend,
            g.rules.len()
        ))
    }

    /// One line for `check`: the resource's token mode and what its MCP server must validate.
    pub fn token_summary(&self, issuer: &str, upstream_kind: &str, alg: TokenSigningAlg) -> String {
        let uri = self.uri.as_str();
        match self.token_policy() {
            TokenPolicy::Minted(m) if self.gateway.is_some() => format!(
                "resource {uri}: minted tokens ({} lifetime), validated by the shim's gateway (its MCP server receives no token of the client's)",
                humantime::format_duration(m.lifetime()),
            ),
            TokenPolicy::Minted(m) => format!(
                "resource {uri}: minted tokens ({} lifetime); its MCP server validates JWTs with typ at+jwt, alg {}, keys from {issuer}/jwks, iss {issuer}, aud {uri}",
                humantime::format_duration(m.lifetime()),
                alg.as_str()
            ),
            TokenPolicy::Passthrough if self.gateway.is_some() => format!(
                "resource {uri}: passthrough tokens, checked by the shim's gateway with the {upstream_kind} IdP's keys (issued to one of this tenant's apps, for the audience in gateway.idp_audiences or the scopes' API); a revocation at the shim does not end them before they expire"
            ),
            TokenPolicy::Passthrough => {
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
        let Some(minted) = self.minted() else {
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
            if self.dpop == DpopMode::Required {
                out.push(("dpop", "applies only to minted tokens: the IdP's own tokens cannot be bound to a client's key by the shim; add token = \"minted\" or remove it".to_owned()));
            }
            return out;
        };
        let lifetime = minted.lifetime();
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
        let minted = s.minted().expect("minted");
        assert_eq!(minted.lifetime(), DEFAULT_TOKEN_LIFETIME);
        assert!(minted.refreshes_upstream());
        let s = parse("token = \"minted\"\ntoken_lifetime = \"2days\"\nclaims = { upn = \"sub\" }");
        let fields: Vec<_> = s.token_problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["token_lifetime", "claims"]);
        let s = parse("token = \"minted\"\nclaims = { upn = \"who\", email = \"who\" }");
        assert_eq!(s.token_problems().len(), 1);
    }
}
