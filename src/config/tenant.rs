//! Tenant files: `tenants/<tenant-id>.toml`, one per tenant. The schema is documented in
//! `docs/tenants.md`; `load_tenants` parses every file and reports every problem at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub(crate) use super::app::AppConfig;
pub(crate) use super::app::{CredentialConfig, SecretMethod, SigningAlgorithm};
use super::downstream_api::DownstreamApi;
use super::host_pattern::HostPattern;
pub use super::resource::ResourceConfig;
pub(crate) use super::resource::ScopeConfig;
use super::resource_server::ResourceServerConfig;
use super::token_mode::TokenSigningAlg;
use super::trusted_issuer::TrustedIssuer;
use crate::domain::tenant_id::TenantId;
use crate::domain::{RedirectKind, ResourceUri};

/// A loaded, validated tenant.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: TenantId,
    pub file: PathBuf,
    /// `{public_url}/{id}`, byte for byte what the metadata's `issuer` says.
    pub issuer: String,
    /// The tenant file as validated, read through the methods below (only `config/` reaches
    /// into it).
    pub(super) config: TenantConfig,
}

fn join(hosts: &[super::host_pattern::HostPattern]) -> String {
    hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Tenant {
    /// A tenant of validated settings (`load.rs`; tests).
    pub(crate) fn new(id: TenantId, file: PathBuf, issuer: String, config: TenantConfig) -> Self {
        Self {
            id,
            file,
            issuer,
            config,
        }
    }

    /// A tenant of `config` as parsed, for the unit tests of what reads its settings.
    #[cfg(test)]
    pub(crate) fn of_config(config: TenantConfig) -> Self {
        Self::new(
            TenantId::parse("test").expect("a valid tenant id"),
            PathBuf::from("test.toml"),
            "https://as.example/test".to_owned(),
            config,
        )
    }

    /// The IdP behind the tenant.
    pub fn upstream(&self) -> &UpstreamConfig {
        &self.config.upstream
    }

    /// Who may register and how (DCR, CIMD, their limits and approval).
    pub fn registration(&self) -> &RegistrationPolicy {
        &self.config.registration
    }

    /// The queue of clients waiting for an administrator.
    pub(crate) fn approval(&self) -> &super::approval::ApprovalSettings {
        &self.config.approval
    }

    /// The tenant's app registrations at its IdP.
    pub(crate) fn apps(&self) -> &[AppConfig] {
        &self.config.apps
    }

    /// The rules that map a client onto an app, in order.
    pub(crate) fn mapping_rules(&self) -> &[MappingRule] {
        &self.config.mapping
    }

    /// The name consent and error pages show: `display_name`, else the tenant's id.
    pub(crate) fn display_name(&self) -> &str {
        self.config
            .display_name
            .as_deref()
            .unwrap_or(self.id.as_str())
    }

    /// Whether `other` was read from the same settings (comments and order aside).
    pub(crate) fn same_settings(&self, other: &Tenant) -> bool {
        format!("{:?}", self.config) == format!("{:?}", other.config)
    }

    /// The built-in development IdP's settings.
    pub(crate) fn dev(&self) -> &DevSettings {
        &self.config.dev
    }

    /// Each `private_key_jwt` app's name with when its certificate stops being valid (Unix
    /// seconds), or why that cannot be read.
    pub fn certificate_expiries(&self) -> Vec<(&str, Result<u64, String>)> {
        self.config
            .apps
            .iter()
            .filter_map(|app| match &app.credential {
                CredentialConfig::PrivateKeyJwt {
                    certificate_file,
                    key_file,
                    ..
                } => Some((
                    app.name.as_str(),
                    crate::crypto::app_key::AppSigningKey::load(key_file, certificate_file)
                        .map(|k| k.not_after),
                )),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn app(&self, name: &str) -> Option<&AppConfig> {
        self.config.apps.iter().find(|a| a.name == name)
    }

    /// The resource used when an authorization request names none (RFC 8707 §2).
    pub(crate) fn default_resource(&self) -> &ResourceConfig {
        let resources = &self.config.resources;
        resources
            .iter()
            .find(|r| r.default)
            .unwrap_or(&resources[0])
    }

    /// The resource server of the tenant with this client id.
    pub(crate) fn resource_server(&self, client_id: &str) -> Option<&ResourceServerConfig> {
        self.config
            .resource_servers
            .iter()
            .find(|r| r.client_id == client_id)
    }

    /// The downstream API an exchange request names by `resource` and `audience`.
    pub(crate) fn downstream_api(
        &self,
        resource: Option<&str>,
        audience: Option<&str>,
    ) -> Option<&DownstreamApi> {
        self.config
            .downstream_apis
            .iter()
            .find(|a| a.is_named_by(resource, audience))
    }

    /// The downstream APIs the server of the resource `uri` may reach by token exchange.
    pub(crate) fn exchange_apis<'t>(
        &'t self,
        uri: &ResourceUri,
    ) -> impl Iterator<Item = &'t DownstreamApi> + 't {
        let names: &'t [String] = self
            .resource(uri.as_str())
            .filter(|r| r.is_minted())
            .map(|r| r.exchange.as_slice())
            .unwrap_or_default();
        self.config
            .downstream_apis
            .iter()
            .filter(move |a| names.contains(&a.name))
    }

    /// The enterprise IdP whose `iss` this is, if the tenant trusts it.
    pub(crate) fn trusted_issuer(&self, iss: &str) -> Option<&TrustedIssuer> {
        self.config
            .trusted_issuers
            .iter()
            .find(|t| !iss.is_empty() && t.issuer == iss)
    }

    pub(crate) fn trusted_issuers(&self) -> &[TrustedIssuer] {
        &self.config.trusted_issuers
    }

    /// Whether the tenant accepts ID-JAG grants.
    pub(crate) fn trusts_issuers(&self) -> bool {
        !self.config.trusted_issuers.is_empty()
    }

    /// Who may become a client of this tenant and skip what, one line each, for `check`: the
    /// settings that widen access (on by default: DCR, CIMD from any host) are said, so that a
    /// file that lost its restrictive lines does not pass unnoticed.
    pub fn access_summary(&self) -> Vec<String> {
        let r = &self.config.registration;
        let mut lines = Vec::new();
        lines.push(if r.dcr {
            format!(
                "registration: open (dcr = true): any client on the network may register itself, {} per address and minute",
                r.registrations_per_minute
            )
        } else {
            "registration: off (dcr = false)".to_owned()
        });
        lines.push(match (r.cimd, r.cimd_allowed_hosts.is_empty()) {
            (false, _) => "client metadata documents: off (cimd = false)".to_owned(),
            (true, true) => {
                "client metadata documents: from any host (cimd = true, no cimd_allowed_hosts)"
                    .to_owned()
            }
            (true, false) => format!(
                "client metadata documents: from {} only",
                join(&r.cimd_allowed_hosts)
            ),
        });
        if !r.cimd_trusted_hosts.is_empty() {
            lines.push(format!(
                "consent skipped for the clients of {} (cimd_trusted_hosts)",
                join(&r.cimd_trusted_hosts)
            ));
        }
        lines.extend(approval_summary(&self.config));
        if !self.config.trusted_issuers.is_empty() {
            let issuers: Vec<&str> = self
                .config
                .trusted_issuers
                .iter()
                .map(|t| t.issuer.as_str())
                .collect();
            lines.push(format!(
                "logins without a browser (ID-JAG) for the users of {}",
                issuers.join(", ")
            ));
        }
        lines
    }

    /// The algorithm of the tenant's minted tokens.
    pub fn token_signing_alg(&self) -> TokenSigningAlg {
        self.config.token_signing_alg
    }

    /// Whether any resource has minted tokens (then the tenant has signing keys and a JWKS).
    pub(crate) fn mints_tokens(&self) -> bool {
        self.config.resources.iter().any(|r| r.is_minted())
    }

    /// Whether a resource's server may exchange its tokens (RFC 8693).
    pub(crate) fn offers_token_exchange(&self) -> bool {
        self.config.resources.iter().any(|r| !r.exchange.is_empty())
    }

    pub(crate) fn has_resource_servers(&self) -> bool {
        !self.config.resource_servers.is_empty()
    }

    /// Every resource the tenant fronts.
    pub fn resources(&self) -> &[ResourceConfig] {
        &self.config.resources
    }

    /// How long grants for `resource` last: its own lifetimes, else the tenant's.
    pub fn grant_lifetimes(
        &self,
        resource: &ResourceConfig,
    ) -> super::grant_lifetime::GrantLifetimes {
        self.config
            .grants
            .overridden(resource.grant_lifetime, resource.grant_idle_lifetime)
    }

    /// The resource that `uri` names, compared in normalized form (`ResourceUri`).
    pub fn resource(&self, uri: &str) -> Option<&ResourceConfig> {
        self.config.resources.iter().find(|r| r.uri.matches(uri))
    }
}

/// What `check` says about approval, one line each: off is said too (it is the default that
/// lets any client in), and every exception.
fn approval_summary(config: &TenantConfig) -> Vec<String> {
    use super::approval::Approval;
    let r = &config.registration;
    let mut lines = vec![match r.approval {
        Approval::None => "approval: off: new clients are usable at once (approval = \"admin\" makes them wait for an administrator)".to_owned(),
        Approval::Admin => format!(
            "approval: new clients wait for an administrator (approval = \"admin\"); at most {} requests wait, each for {}",
            config.approval.max_pending,
            humantime::format_duration(config.approval.pending_lifetime)
        ),
    }];
    for entry in &r.cimd_approval {
        lines.push(format!(
            "approval: the clients of {} {} (cimd_approval)",
            join(&entry.hosts),
            entry.approval.describe()
        ));
    }
    for (i, rule) in config.mapping.iter().enumerate() {
        if let Some(approval) = rule.approval {
            lines.push(format!(
                "approval: the clients mapping[{i}] maps onto {} {}",
                rule.app,
                approval.describe()
            ));
        }
    }
    if let Some(url) = &config.approval.webhook_url {
        lines.push(format!(
            "approval: each new request is announced to {} (signed webhook)",
            url.host_str().unwrap_or_default()
        ));
    }
    lines
}

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
    /// APIs reachable by token exchange (`downstream_api.rs`).
    #[serde(default)]
    pub(crate) downstream_apis: Vec<DownstreamApi>,
    /// The algorithm of minted tokens' signatures.
    #[serde(default)]
    pub(crate) token_signing_alg: TokenSigningAlg,
    /// Enterprise IdPs whose ID-JAGs the tenant accepts (`trusted_issuer.rs`).
    #[serde(default)]
    pub(crate) trusted_issuers: Vec<TrustedIssuer>,
    /// How long grants last (`grant_lifetime.rs`); a resource may set its own.
    #[serde(default)]
    pub(crate) grants: super::grant_lifetime::GrantLifetimes,
    /// The queue of clients waiting for an administrator (`approval.rs`).
    #[serde(default)]
    pub(crate) approval: super::approval::ApprovalSettings,
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
