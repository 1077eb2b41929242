//! A resource's `[resources.gateway]` table: the MCP server the shim serves the resource for
//! (`backend`), so that the resource URI clients use, its protected-resource metadata and its
//! tokens' audience are all the shim's. The routing follows from the resource URI: on a host
//! of its own (host routing, the production shape), or under a path on the public URL's host
//! (path routing, for small setups).

use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;
use url::Url;
use wildmatch::WildMatch;

use crate::domain::ResourceUri;

/// `[resources.gateway]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where the MCP server listens (its Streamable HTTP endpoint), reached by the shim only.
    pub(crate) backend: Url,
    /// How the MCP server learns who calls.
    #[serde(default)]
    pub(crate) identity: IdentityForm,
    /// The `aud` of the identity JWT: the MCP server's own name for itself (default: the
    /// backend URL).
    #[serde(default)]
    pub(crate) identity_audience: Option<String>,
    /// Origins (scheme://host[:port]) of browser-based clients allowed to call, besides the
    /// resource's own: a request with another `Origin` is refused (DNS rebinding, and pages
    /// that would use a stolen token from a browser).
    #[serde(default)]
    pub(crate) allowed_origins: Vec<String>,
    /// The largest request body passed to the MCP server.
    #[serde(default = "default_max_body_bytes")]
    pub(crate) max_body_bytes: usize,
    /// How long the MCP server may take to start its answer (its status and headers).
    #[serde(default = "default_answer_timeout", with = "humantime_serde")]
    pub(crate) answer_timeout: Duration,
    /// How long an answer may go without a byte (an event stream's events or keep-alives)
    /// before the gateway ends it.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub(crate) idle_timeout: Duration,
    /// Calls per minute one user may make to this resource (through any client), and one
    /// client (for all its users); no limit when absent. Counted per replica.
    #[serde(default)]
    pub(crate) calls_per_minute_per_user: Option<NonZeroU32>,
    #[serde(default)]
    pub(crate) calls_per_minute_per_client: Option<NonZeroU32>,
    /// A `[[downstream_apis]]` entry whose token, on the caller's behalf, goes to the MCP
    /// server with each call (`X-Dcr-Shim-Downstream-Token`): for a minted resource one of its
    /// `exchange` list, obtained with the login's IdP refresh token; for a passthrough resource
    /// in front of Entra, obtained on behalf of the caller's token by `on_behalf_of_app`.
    #[serde(default)]
    pub(crate) downstream_api: Option<String>,
    /// For a passthrough resource with a `downstream_api`: the `[[apps]]` entry that is the
    /// resource's API's own app registration (the audience of the callers' tokens), whose
    /// credentials make Entra's on-behalf-of request.
    #[serde(default)]
    pub(crate) on_behalf_of_app: Option<String>,
    /// For a passthrough resource: the `aud` values of the IdP's access tokens for its API
    /// (`Provider::access_token_audiences` says what is taken when none are listed).
    #[serde(default)]
    pub(crate) idp_audiences: Vec<String>,
    /// Scopes some calls need beyond the token's audience (`[[resources.gateway.rules]]`).
    #[serde(default)]
    pub(crate) rules: Vec<GatewayRule>,
}

/// A rule: the calls it covers (JSON-RPC methods, and the tool, prompt or resource they
/// name, as globs with `*` and `?`), the scopes a caller needs for them, and who may make them
/// (by app role, group, client or user: one of each list given). A call must satisfy every rule
/// that covers it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GatewayRule {
    /// Methods covered (all when empty).
    #[serde(default)]
    pub(crate) methods: Vec<Glob>,
    /// Names covered: a `tools/call`'s or `prompts/get`'s name, a `resources/read`'s URI (all
    /// when empty; a rule with names covers only calls that name something).
    #[serde(default)]
    pub(crate) names: Vec<Glob>,
    /// The resource's scopes every covered call needs.
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    /// App roles (the token's `roles` claim, copied from the ID token): the caller needs one.
    #[serde(default)]
    pub(crate) roles: Vec<String>,
    /// Groups (the token's `groups` claim): the caller needs to be in one.
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    /// Client ids: the call must come from one of them.
    #[serde(default)]
    pub(crate) clients: Vec<String>,
    /// Users (`sub`): the call must be one of theirs.
    #[serde(default)]
    pub(crate) users: Vec<String>,
    /// A sign-in strength every covered call needs: the token's `acr` is one of these, or its
    /// `acrs` (Entra's Conditional Access authentication contexts, `c1`…`c99`) holds one. A
    /// caller without it is asked to sign in again with them (RFC 9470).
    #[serde(default)]
    pub(crate) acr_values: Vec<String>,
}

/// A glob of a rule (`*` and `?`), compiled once when the tenant file is read rather than on
/// every call it is matched against.
#[derive(Clone, Debug)]
pub struct Glob {
    text: String,
    pattern: WildMatch,
}

impl Glob {
    pub(crate) fn matches(&self, value: &str) -> bool {
        self.pattern.matches(value)
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Glob {}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(Self {
            pattern: WildMatch::new(&text),
            text,
        })
    }
}

impl GatewayRule {
    /// Whether the rule says who may call (beyond scopes, which a client can ask for).
    pub(crate) fn names_callers(&self) -> bool {
        !(self.roles.is_empty()
            && self.groups.is_empty()
            && self.clients.is_empty()
            && self.users.is_empty())
    }
}

/// How the gateway tells the MCP server who calls (`docs/gateway.md`). The client's own token
/// never reaches it (the MCP specification forbids passing it through).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdentityForm {
    /// A short-lived JWT the shim signs for the MCP server (`X-Dcr-Shim-Identity`), verified
    /// with the tenant's JWKS; its `typ` is not an access token's.
    #[default]
    Jwt,
    /// Plain headers (`X-Dcr-Shim-User`, `-Client`, `-Scope`), for an MCP server only the
    /// shim can reach.
    Headers,
    /// Nothing: the MCP server does not need to know.
    None,
}

fn default_max_body_bytes() -> usize {
    1024 * 1024
}

fn default_answer_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(300)
}

/// How requests for a gateway resource reach the shim.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Routing {
    /// The resource has an authority (host, and port unless the scheme's default) of its own:
    /// every request whose `Host` names it is the resource's.
    Host(String),
    /// The resource is a path on the public URL's host.
    Path(String),
}

impl GatewayConfig {
    /// How the resource `uri` is routed, for a server whose public URL is `public_url`.
    pub fn routing(uri: &ResourceUri, public_url: &Url) -> Option<Routing> {
        let url = Url::parse(uri.as_str()).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        let same_origin = url.scheme() == public_url.scheme()
            && Some(host.as_str()) == public_url.host_str()
            && url.port_or_known_default() == public_url.port_or_known_default();
        Some(if same_origin {
            // Without a trailing slash: a client may add one (the lookup drops it too).
            Routing::Path(url.path().trim_end_matches('/').to_owned())
        } else {
            // `Url::port` is `None` for the scheme's default port, which `Host` leaves out too.
            Routing::Host(match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
    }

    /// Problems with the table for the resource `uri`, as (field, message).
    pub(crate) fn problems(
        &self,
        uri: &ResourceUri,
        public_url: &Url,
    ) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let b = &self.backend;
        if !matches!(b.scheme(), "http" | "https") || b.host_str().is_none() {
            out.push((
                "gateway.backend",
                format!("'{b}' must be an http or https URL of the MCP server's endpoint"),
            ));
        }
        if !b.username().is_empty() || b.password().is_some() || b.fragment().is_some() {
            out.push(("gateway.backend", "must not carry credentials or a fragment; the shim passes identity to the backend itself".to_owned()));
        }
        for origin in &self.allowed_origins {
            let canonical = Url::parse(origin)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(|u| u.origin().ascii_serialization());
            if canonical.as_deref() != Some(origin.as_str()) {
                out.push(("gateway.allowed_origins", format!("'{origin}' is not an origin as browsers send it (scheme://host[:port], no path or trailing slash)")));
            }
        }
        if self.max_body_bytes == 0 {
            out.push((
                "gateway.max_body_bytes",
                "must be above 0: every MCP call has a body".to_owned(),
            ));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.scopes.is_empty() && rule.acr_values.is_empty() && !rule.names_callers() {
                out.push((
                    "gateway.rules",
                    format!("rule {i} names no scope, sign-in strength, role, group, client or user: it would require nothing"),
                ));
            }
        }
        for (field, d) in [
            ("gateway.answer_timeout", self.answer_timeout),
            ("gateway.idle_timeout", self.idle_timeout),
        ] {
            if d.is_zero() || d > Duration::from_secs(24 * 3600) {
                out.push((field, "must be above 0 and at most a day".to_owned()));
            }
        }
        match Self::routing(uri, public_url) {
            None => out.push((
                "uri",
                "a gateway resource's uri must be an absolute URL with a host".to_owned(),
            )),
            Some(Routing::Path(path)) => {
                let first = path
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .unwrap_or_default();
                if first.is_empty() || first == ".well-known" {
                    out.push(("uri", format!("'{uri}' is on this server's own host, so its path routes to the gateway; give it a path of its own, such as /mcp/files (not / or /.well-known)")));
                }
            }
            Some(Routing::Host(authority)) => {
                let own = match public_url.port() {
                    Some(port) => format!("{}:{port}", public_url.host_str().unwrap_or_default()),
                    None => public_url.host_str().unwrap_or_default().to_owned(),
                };
                if authority == own.to_ascii_lowercase() {
                    out.push(("uri", format!("'{uri}' names this server's own host with another scheme: as a host of its own it would take every request to this server; use the public URL's scheme (a path route) or another host")));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> Url {
        Url::parse("https://auth.example.com").unwrap()
    }

    fn gateway(backend: &str) -> GatewayConfig {
        toml::from_str(&format!("backend = \"{backend}\"")).unwrap()
    }

    #[test]
    fn the_resource_uri_says_how_it_is_routed() {
        let host = ResourceUri::new("https://files.example.com/mcp");
        assert_eq!(
            GatewayConfig::routing(&host, &public()),
            Some(Routing::Host("files.example.com".into()))
        );
        let path = ResourceUri::new("https://auth.example.com/mcp/files");
        assert_eq!(
            GatewayConfig::routing(&path, &public()),
            Some(Routing::Path("/mcp/files".into()))
        );
        let other_port = ResourceUri::new("https://auth.example.com:8443/mcp");
        assert_eq!(
            GatewayConfig::routing(&other_port, &public()),
            Some(Routing::Host("auth.example.com:8443".into())),
            "the same host on another port is another authority"
        );
    }

    #[test]
    fn a_backend_is_an_http_endpoint_and_a_path_route_has_a_path_of_its_own() {
        let ok = gateway("http://files-mcp.internal:3000/mcp");
        assert!(
            ok.problems(
                &ResourceUri::new("https://files.example.com/mcp"),
                &public()
            )
            .is_empty()
        );
        let fields = |g: &GatewayConfig, uri: &str| -> Vec<&str> {
            g.problems(&ResourceUri::new(uri), &public())
                .into_iter()
                .map(|(f, _)| f)
                .collect()
        };
        assert_eq!(
            fields(&gateway("ftp://x/mcp"), "https://files.example.com/mcp"),
            ["gateway.backend"]
        );
        assert_eq!(
            fields(
                &gateway("http://u:p@x/mcp"),
                "https://files.example.com/mcp"
            ),
            ["gateway.backend"]
        );
        assert_eq!(fields(&ok, "https://auth.example.com/"), ["uri"]);
        assert_eq!(
            fields(&ok, "https://auth.example.com/.well-known/x"),
            ["uri"]
        );
        assert!(fields(&ok, "https://auth.example.com/mcp/files").is_empty());
        assert_eq!(
            fields(&ok, "http://auth.example.com/mcp"),
            ["uri"],
            "the server's own host under another scheme"
        );
    }
}
