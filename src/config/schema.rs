//! The tenant file's shape, as parsed (serde): its top level and its `[upstream]`,
//! `[[mapping]]`, `[registration]` and `[dev]` tables. Its other parts parse themselves in
//! their own modules (`app.rs`, `resource.rs`, `resource_server.rs`, `downstream_api.rs`,
//! `trusted_issuer.rs`, `trusted_workload.rs`, `approval.rs`, `grant_lifetime.rs`). Nothing here is checked beyond its
//! type: `validate.rs` checks it, `load.rs` turns it into a `Tenant`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::app::AppConfig;
use super::downstream_api::DownstreamApi;
use super::host_pattern::HostPattern;
use super::machine_client::MachineClientConfig;
use super::resource::ResourceConfig;
use super::resource_server::ResourceServerConfig;
use super::token_mode::TokenSigningAlg;
use super::trusted_issuer::TrustedIssuer;
use super::trusted_workload::TrustedWorkload;
use crate::domain::RedirectKind;

/// The contents of a tenant file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Shown on consent and error pages.
    pub(crate) display_name: Option<String>,
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub(crate) apps: Vec<AppConfig>,
    pub(crate) resources: Vec<ResourceConfig>,
    #[serde(default)]
    pub(crate) mapping: Vec<MappingRule>,
    #[serde(default)]
    pub registration: RegistrationPolicy,
    #[serde(default)]
    pub(crate) dev: DevSettings,
    /// APIs that call the shim to introspect minted tokens (`resource_server.rs`).
    #[serde(default)]
    pub(crate) resource_servers: Vec<ResourceServerConfig>,
    /// Agents that get tokens as themselves by the client credentials grant
    /// (`machine_client.rs`).
    #[serde(default)]
    pub(crate) machine_clients: Vec<MachineClientConfig>,
    /// APIs reachable by token exchange (`downstream_api.rs`).
    #[serde(default)]
    pub(crate) downstream_apis: Vec<DownstreamApi>,
    /// The algorithm of minted tokens' signatures.
    #[serde(default)]
    pub(crate) token_signing_alg: TokenSigningAlg,
    /// Enterprise IdPs whose ID-JAGs the tenant accepts (`trusted_issuer.rs`).
    #[serde(default)]
    pub(crate) trusted_issuers: Vec<TrustedIssuer>,
    /// Workloads that get tokens as a machine client with their platform's token
    /// (`trusted_workload.rs`).
    #[serde(default)]
    pub(crate) trusted_workloads: Vec<TrustedWorkload>,
    /// How long grants last (`grant_lifetime.rs`); a resource may set its own.
    #[serde(default)]
    pub(crate) grants: super::grant_lifetime::GrantLifetimes,
    /// The queue of clients waiting for an administrator (`approval.rs`).
    #[serde(default)]
    pub(crate) approval: super::approval::ApprovalSettings,
    /// DPoP-bound tokens (RFC 9449): whether proofs must carry the server's nonce.
    #[serde(default)]
    pub(crate) dpop: DpopSettings,
}

/// `[dpop]`: how the tenant checks DPoP proofs, at its token endpoint and its gateway.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpopSettings {
    /// Every proof must carry a nonce the server gave (RFC 9449 §8, §9): a proof cannot then be
    /// made ahead of time, at the cost of one more round trip when a client starts.
    #[serde(default)]
    pub(crate) require_nonce: bool,
}

/// The identity provider behind the tenant.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum UpstreamConfig {
    /// Microsoft Entra ID (v2.0 endpoints) by directory (tenant) id.
    Entra {
        directory_id: String,
        /// Sovereign clouds (e.g. `https://login.microsoftonline.us`) or a test double.
        #[serde(default = "default_entra_authority")]
        authority: String,
        /// A PEM file of CA certificates trusted besides the roots (a private CA, or a
        /// TLS-inspecting proxy).
        ca_file: Option<PathBuf>,
        #[serde(default)]
        roots: TrustRoots,
    },
    /// Any OpenID Connect provider, by issuer (and discovery URL when it is not the default).
    Oidc {
        issuer: String,
        discovery_url: Option<String>,
        /// Send `prompt=consent` with a request for refresh tokens: OpenID Connect Core §11 lets
        /// a provider ignore `offline_access` without it, and strict ones (oidc-provider) do.
        #[serde(default = "yes")]
        consent_for_refresh: bool,
        /// A PEM file of CA certificates trusted besides the roots (a private CA, or a
        /// TLS-inspecting proxy).
        ca_file: Option<PathBuf>,
        #[serde(default)]
        roots: TrustRoots,
    },
    /// The built-in development IdP (loopback public URLs only unless allowed).
    Dev {
        #[serde(default)]
        allow_non_loopback: bool,
    },
}

/// The certificates of a PEM file (`upstream.ca_file`); an error when there are none.
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// Which certificates the shim trusts on calls to the IdP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpstreamTls<'a> {
    pub(crate) ca_file: Option<&'a Path>,
    pub(crate) roots: TrustRoots,
}

/// The root certificates trusted on calls to the IdP.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TrustRoots {
    /// Mozilla's roots, built into the binary: the same everywhere.
    #[default]
    Bundled,
    /// This machine's trust store (where a company installs its own CAs).
    System,
}

fn yes() -> bool {
    true
}

fn default_entra_authority() -> String {
    "https://login.microsoftonline.com".to_owned()
}

impl UpstreamConfig {
    /// The `aud` values of the IdP's access tokens for `resource`'s API, which a
    /// passthrough gateway resource accepts: its gateway's `idp_audiences`, else for Entra the
    /// App ID URIs of its scopes (v1.0 tokens carry the one asked for; v2.0 tokens the API's
    /// application id, which only the tenant file can name), else the RFC 8707 `resource` sent
    /// upstream (`upstream_resource`; the dev IdP's default is the resource URI).
    pub(crate) fn idp_token_audiences(&self, resource: &ResourceConfig) -> Vec<String> {
        if let Some(listed) = resource
            .gateway
            .as_ref()
            .map(|g| &g.idp_audiences)
            .filter(|l| !l.is_empty())
        {
            return listed.clone();
        }
        match self {
            UpstreamConfig::Entra { .. } => {
                let mut out: Vec<String> = Vec::new();
                for s in &resource.scopes {
                    if let Some((api, _)) = s.upstream.rsplit_once('/')
                        && api.contains("://")
                        && !out.iter().any(|o| o == api)
                    {
                        out.push(api.to_owned());
                    }
                }
                out
            }
            UpstreamConfig::Oidc { .. } => resource.upstream_resource.iter().cloned().collect(),
            UpstreamConfig::Dev { .. } => vec![
                resource
                    .upstream_resource
                    .clone()
                    .unwrap_or_else(|| resource.uri.to_string()),
            ],
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Entra { .. } => "entra",
            Self::Oidc { .. } => "oidc",
            Self::Dev { .. } => "dev",
        }
    }

    /// What to trust on calls to this IdP; `None` for `dev`, which is never called over HTTP.
    pub(crate) fn tls(&self) -> Option<UpstreamTls<'_>> {
        match self {
            Self::Entra { ca_file, roots, .. } | Self::Oidc { ca_file, roots, .. } => {
                Some(UpstreamTls {
                    ca_file: ca_file.as_deref(),
                    roots: *roots,
                })
            }
            Self::Dev { .. } => None,
        }
    }

    /// The issuer whose discovery document describes this upstream; `None` for `dev`.
    pub(crate) fn issuer(&self) -> Option<String> {
        match self {
            Self::Entra {
                directory_id,
                authority,
                ..
            } => Some(format!(
                "{}/{}/v2.0",
                authority.trim_end_matches('/'),
                directory_id
            )),
            Self::Oidc { issuer, .. } => Some(issuer.clone()),
            Self::Dev { .. } => None,
        }
    }

    /// Where the discovery document is fetched from.
    pub(crate) fn discovery_url(&self) -> Option<String> {
        match self {
            Self::Oidc {
                discovery_url: Some(u),
                ..
            } => Some(u.clone()),
            _ => self.issuer().map(|i| {
                format!(
                    "{}/.well-known/openid-configuration",
                    i.trim_end_matches('/')
                )
            }),
        }
    }
}

/// A mapping rule: when every condition given matches, the client is mapped to `app`.
/// Rules are tried in order; the first match wins; no match → the first app.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MappingRule {
    pub(crate) app: String,
    /// The client is a CIMD client whose URL host matches one of these.
    #[serde(default)]
    pub(crate) cimd_hosts: Vec<HostPattern>,
    /// Every redirect URI of the client is of one of these kinds.
    #[serde(default)]
    pub(crate) redirect_kinds: Vec<RedirectKind>,
    /// The client's `software_id` is one of these.
    #[serde(default)]
    pub(crate) software_ids: Vec<String>,
    /// The requested resource is one of these URIs.
    #[serde(default)]
    pub(crate) resources: Vec<String>,
    /// Whether the clients this rule maps wait for an administrator (`approval.rs`); unset:
    /// the CIMD host's or the tenant's setting.
    #[serde(default)]
    pub(crate) approval: Option<super::approval::Approval>,
}

/// Who may register, how, and for how long an unused client is kept.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationPolicy {
    /// Dynamic Client Registration (RFC 7591) at `/{tenant}/register`.
    pub(crate) dcr: bool,
    /// Client ID Metadata Documents.
    pub(crate) cimd: bool,
    /// Hosts whose CIMD documents are accepted; empty means any host.
    pub(crate) cimd_allowed_hosts: Vec<HostPattern>,
    /// CIMD hosts whose clients skip the consent page.
    pub(crate) cimd_trusted_hosts: Vec<HostPattern>,
    /// Whether a new client waits for an administrator's approval (`docs/approval.md`).
    pub(crate) approval: super::approval::Approval,
    /// The approval for the clients of some CIMD hosts, the first match applying.
    pub(crate) cimd_approval: Vec<super::approval::HostApproval>,
    /// A registered client that is not used for this long is deleted.
    #[serde(with = "humantime_serde")]
    pub unused_client_lifetime: Duration,
    /// Registrations accepted per source address per minute.
    pub(crate) registrations_per_minute: u32,
    /// Registrations accepted per minute from all sources together; default: 60 times the
    /// per-address limit.
    pub(crate) tenant_registrations_per_minute: Option<u32>,
    /// Client metadata documents fetched per minute on behalf of one source address (cache
    /// hits are free): bounds what one stranger can make the shim fetch from third parties.
    pub(crate) cimd_fetches_per_minute: u32,
}

impl RegistrationPolicy {
    pub(crate) fn tenant_registrations_per_minute(&self) -> u32 {
        self.tenant_registrations_per_minute
            .unwrap_or(self.registrations_per_minute.saturating_mul(60))
    }
}

impl Default for RegistrationPolicy {
    fn default() -> Self {
        Self {
            dcr: true,
            cimd: true,
            cimd_allowed_hosts: Vec::new(),
            cimd_trusted_hosts: Vec::new(),
            approval: super::approval::Approval::None,
            cimd_approval: Vec::new(),
            unused_client_lifetime: Duration::from_secs(30 * 24 * 3600),
            registrations_per_minute: 20,
            tenant_registrations_per_minute: None,
            cimd_fetches_per_minute: 30,
        }
    }
}

/// Settings for tests and local development only.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DevSettings {
    /// Lets CIMD fetch http URLs and loopback or private addresses.
    #[serde(default)]
    pub(crate) cimd_allow_loopback: bool,
    /// An extra CA certificate (PEM) trusted for CIMD fetches.
    pub(crate) cimd_extra_ca_file: Option<PathBuf>,
}
