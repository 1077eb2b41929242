//! Tenant files: `tenants/<tenant-id>.toml`, one per tenant. The schema is documented in
//! `docs/tenants.md`; `load_tenants` parses every file and reports every problem at once.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

pub(crate) use super::app::AppConfig;
pub(crate) use super::app::{CredentialConfig, SecretMethod, SigningAlgorithm};
use super::downstream_api::DownstreamApi;
use super::host_pattern::HostPattern;
pub use super::resource::ResourceConfig;
pub(crate) use super::resource::ScopeConfig;
use super::resource_server::ResourceServerConfig;
use super::token_mode::TokenSigningAlg;
use super::trusted_issuer::TrustedIssuer;
use crate::domain::scope::is_scope_token;
use crate::domain::tenant_id::TenantId;
use crate::domain::{RedirectKind, ResourceUri, is_loopback_host};

/// One thing wrong with a tenant file: which file, which field, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub(crate) file: PathBuf,
    pub(crate) field: String,
    pub(crate) message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.file.display(),
            self.field,
            self.message
        )
    }
}

/// A loaded, validated tenant.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: TenantId,
    pub file: PathBuf,
    /// `{public_url}/{id}`, byte for byte what the metadata's `issuer` says.
    pub issuer: String,
    pub config: TenantConfig,
}

fn join(hosts: &[super::host_pattern::HostPattern]) -> String {
    hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Tenant {
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

/// Loads every `*.toml` file directly inside `dir` (not its subdirectories).
pub fn load_tenants(dir: &Path, public_url: &Url) -> Result<Vec<Tenant>, Vec<Problem>> {
    load_tenants_with(dir, public_url, CredentialFiles::Read)
}

/// Whether the apps' credential files (secrets, keys, certificates, tokens) are read while
/// validating: always to serve; not for `entra plan`, which is written before they exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialFiles {
    Read,
    Skip,
}

/// `load_tenants`, with the apps' credential files read or not.
pub fn load_tenants_with(
    dir: &Path,
    public_url: &Url,
    credential_files: CredentialFiles,
) -> Result<Vec<Tenant>, Vec<Problem>> {
    let mut problems = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return Err(vec![Problem {
                file: dir.to_owned(),
                field: "(directory)".into(),
                message: format!(
                    "cannot read the tenants directory: {e}; pass --tenants or set DCR_SHIM_TENANTS"
                ),
            }]);
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        problems.push(Problem {
            file: dir.to_owned(),
            field: "(directory)".into(),
            message: "holds no tenant files; add one `<tenant-id>.toml` (see tenants/examples/)"
                .into(),
        });
    }
    let mut tenants = Vec::new();
    for file in files {
        match load_tenant_with(&file, public_url, credential_files) {
            Ok(t) => tenants.push(t),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(tenants)
    } else {
        Err(problems)
    }
}

/// Parses and validates one tenant file.
pub fn load_tenant(file: &Path, public_url: &Url) -> Result<Tenant, Vec<Problem>> {
    load_tenant_with(file, public_url, CredentialFiles::Read)
}

fn load_tenant_with(
    file: &Path,
    public_url: &Url,
    credential_files: CredentialFiles,
) -> Result<Tenant, Vec<Problem>> {
    let mut problems = Problems::new(file);
    problems.credential_files = credential_files;
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let id = TenantId::parse(stem)
        .map_err(|e| {
            problems.add(
                "(file name)",
                format!("tenant id '{stem}' {e}; rename the file"),
            )
        })
        .ok();
    let text = std::fs::read_to_string(file)
        .map_err(|e| problems.add("(file)", format!("cannot be read: {e}")))
        .ok();
    let mut config = text.and_then(|text| parse_config(&text, &mut problems));
    if let Some(config) = &mut config {
        resolve_local_issuers(config, public_url);
        validate(config, public_url, &mut problems);
        check_resource_servers(config, &mut problems);
        let read = problems.credential_files == CredentialFiles::Read;
        for (field, message) in config.approval.load(read) {
            problems.add(&field, message);
        }
    }
    match (id, config) {
        (Some(id), Some(mut config)) if problems.list.is_empty() => Ok(Tenant {
            config: {
                add_dev_app(&mut config);
                config
            },
            issuer: format!("{}/{}", public_url.as_str().trim_end_matches('/'), id),
            id,
            file: file.to_owned(),
        }),
        _ => Err(problems.list),
    }
}

/// A trusted issuer written as a path (`/demo/dev-idp`) is one served by this server: it is
/// taken relative to the public URL, so that a tenant file trusting another tenant's dev IdP
/// follows `--public-url` instead of naming a host and port.
fn resolve_local_issuers(config: &mut TenantConfig, public_url: &Url) {
    let base = public_url.as_str().trim_end_matches('/');
    for t in &mut config.trusted_issuers {
        if t.issuer.starts_with('/') {
            t.issuer = format!("{base}{}", t.issuer);
        }
    }
}

/// Name and client id of the app a `dev` tenant gets when its file lists none.
pub(crate) const DEV_APP: &str = "dev";

fn add_dev_app(config: &mut TenantConfig) {
    if config.apps.is_empty() && matches!(config.upstream, UpstreamConfig::Dev { .. }) {
        config.apps.push(AppConfig {
            name: DEV_APP.to_owned(),
            client_id: DEV_APP.to_owned(),
            scopes: Vec::new(),
            credential: CredentialConfig::None,
        });
    }
}

fn parse_config(text: &str, problems: &mut Problems) -> Option<TenantConfig> {
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.add(
                "(syntax)",
                format!("is not valid TOML: {}", e.to_string().trim()),
            );
            return None;
        }
    };
    match serde_path_to_error::deserialize::<_, TenantConfig>(table) {
        Ok(c) => Some(c),
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." {
                "(top level)".to_owned()
            } else {
                path
            };
            let message = e.into_inner().to_string();
            let first_line = message.lines().next().unwrap_or_default().to_owned();
            problems.add(&field, first_line);
            None
        }
    }
}

struct Problems {
    file: PathBuf,
    list: Vec<Problem>,
    credential_files: CredentialFiles,
}

impl Problems {
    fn new(file: &Path) -> Self {
        Self {
            file: file.to_owned(),
            list: Vec::new(),
            credential_files: CredentialFiles::Read,
        }
    }

    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.list.push(Problem {
            file: self.file.clone(),
            field: field.to_owned(),
            message: message.into(),
        });
    }
}

const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

fn validate(c: &TenantConfig, public_url: &Url, p: &mut Problems) {
    validate_upstream(&c.upstream, public_url, p);
    validate_apps(c, p);
    validate_resources(c, p);
    validate_mapping(c, p);
    let mut issuers = HashSet::new();
    for (i, t) in c.trusted_issuers.iter().enumerate() {
        for (field, message) in t.problems(&c.resources, c.dev.cimd_allow_loopback) {
            p.add(&format!("trusted_issuers[{i}].{field}"), message);
        }
        if !issuers.insert(t.issuer.as_str()) {
            p.add(&format!("trusted_issuers[{i}].issuer"), "is listed twice");
        }
    }
    let entra = matches!(c.upstream, UpstreamConfig::Entra { .. });
    for (field, message) in
        super::downstream_api::problems(&c.downstream_apis, &c.apps, &c.resources, entra)
    {
        p.add(&field, message);
    }
    validate_registration(c, p);
    validate_dev(&c.dev, public_url, p);
    for (field, message) in c.grants.problems() {
        p.add(&format!("grants.{field}"), message);
    }
    for (i, r) in c.resources.iter().enumerate() {
        if r.grant_lifetime.is_none() && r.grant_idle_lifetime.is_none() {
            continue;
        }
        let own = c.grants.overridden(r.grant_lifetime, r.grant_idle_lifetime);
        for (field, message) in own.problems() {
            p.add(&format!("resources[{i}].grant_{field}"), message);
        }
    }
}

/// The `[[resource_servers]]` and `[[trusted_issuers]]` tables, reading their key files.
fn check_resource_servers(c: &mut TenantConfig, p: &mut Problems) {
    for (i, t) in c.trusted_issuers.iter_mut().enumerate() {
        if let Some((field, message)) = t.load_keys() {
            p.add(&format!("trusted_issuers[{i}].{field}"), message);
        }
    }
    let mut ids = HashSet::new();
    for (i, rs) in c.resource_servers.iter_mut().enumerate() {
        for (field, message) in rs.check(&c.resources, &mut ids) {
            p.add(&format!("resource_servers[{i}].{field}"), message);
        }
    }
}

fn validate_upstream(u: &UpstreamConfig, public_url: &Url, p: &mut Problems) {
    if let Some(ca) = u.tls().and_then(|t| t.ca_file)
        && let Err(e) = read_ca_file(ca)
    {
        p.add("upstream.ca_file", e);
    }
    match u {
        UpstreamConfig::Entra {
            directory_id,
            authority,
            ..
        } => {
            if matches!(
                directory_id.as_str(),
                "common" | "organizations" | "consumers"
            ) {
                p.add("upstream.directory_id", "multi-tenant endpoints are not supported; give the directory id of the tenant whose users log in");
            } else if !is_guid(directory_id) {
                // A verified domain reaches the same endpoints, but Entra's discovery document
                // and tokens name the directory by its GUID, so the issuer would never match.
                p.add("upstream.directory_id", format!("'{}' is not a GUID: give the directory (tenant) id, e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47 (Entra admin center → Overview → Tenant ID); a domain name is not accepted, since Entra's tokens name the directory by its id", directory_id.escape_debug()));
            }
            check_url("upstream.authority", authority, p);
        }
        UpstreamConfig::Oidc {
            issuer,
            discovery_url,
            ..
        } => {
            check_url("upstream.issuer", issuer, p);
            if let Some(d) = discovery_url {
                check_url("upstream.discovery_url", d, p);
            }
        }
        UpstreamConfig::Dev { allow_non_loopback } => {
            if !is_loopback_host(public_url) && !allow_non_loopback {
                p.add("upstream.kind", format!("the built-in dev IdP logs anyone in without a password, so it runs only on a loopback public URL (this server's is {public_url}); use an `entra` or `oidc` upstream, or set upstream.allow_non_loopback = true for a demo"));
            }
        }
    }
}

/// A GUID in its usual text form (8-4-4-4-12 hex digits), as Entra writes ids.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn validate_apps(c: &TenantConfig, p: &mut Problems) {
    let is_dev = matches!(c.upstream, UpstreamConfig::Dev { .. });
    if c.apps.is_empty() && !is_dev {
        p.add("apps", "at least one app (a static registration at the IdP) is required; add an [[apps]] table");
    }
    let mut names = HashSet::new();
    for (i, app) in c.apps.iter().enumerate() {
        let at = |f: &str| format!("apps[{i}].{f}");
        if app.name.is_empty() {
            p.add(&at("name"), "must not be empty");
        } else if crate::domain::text::has_control_or_bidi(&app.name) {
            p.add(
                &at("name"),
                "holds a control or bidirectional formatting character; use plain text",
            );
        } else if !names.insert(app.name.as_str()) {
            p.add(
                &at("name"),
                format!(
                    "'{}' is used by another app; app names must be unique",
                    app.name
                ),
            );
        }
        if app.client_id.trim().is_empty() {
            p.add(
                &at("client_id"),
                "must be the app's client id at the IdP (Entra: the Application (client) ID)",
            );
        } else if matches!(c.upstream, UpstreamConfig::Entra { .. }) && !is_guid(&app.client_id) {
            p.add(&at("client_id"), format!("'{}' is not a GUID: give the app registration's Application (client) ID from its Overview page, not its display name", app.client_id.escape_debug()));
        }
        for (j, s) in app.scopes.iter().enumerate() {
            if !is_scope_token(s) {
                p.add(
                    &at(&format!("scopes[{j}]")),
                    format!("'{s}' is not a valid scope"),
                );
            } else if !c
                .resources
                .iter()
                .flat_map(|r| &r.scopes)
                .any(|rs| &rs.upstream == s)
            {
                p.add(
                    &at(&format!("scopes[{j}]")),
                    format!("'{s}' is not the upstream string of any resource's scope, so it can never be granted; list the `upstream` values of [[resources]] scopes this app may have"),
                );
            }
        }
        validate_credential(&app.credential, &at("credential"), p);
        if matches!(app.credential, CredentialConfig::ManagedIdentity { .. })
            && !matches!(c.upstream, UpstreamConfig::Entra { .. })
        {
            p.add(&at("credential.kind"), "managed_identity works with an `entra` upstream only: the identity's token (audience api://AzureADTokenExchange) would be handed to this IdP, which could present it to Entra as every app that trusts the identity");
        }
    }
}

fn validate_credential(cred: &CredentialConfig, at: &str, p: &mut Problems) {
    // What the credential reads (its files, its environment variable) is not looked at when
    // it need not exist yet (`CredentialFiles::Skip`); its shape always is.
    let reads = p.credential_files == CredentialFiles::Read;
    let readable = |path: &Path, field: &str, p: &mut Problems| match std::fs::metadata(path) {
        _ if !reads => {}
        Err(e) => p.add(
            &format!("{at}.{field}"),
            format!("cannot read {}: {e}", path.display()),
        ),
        Ok(m) if m.is_dir() => p.add(
            &format!("{at}.{field}"),
            format!("{} is a directory: name the file inside it", path.display()),
        ),
        Ok(m) if m.len() == 0 => p.add(
            &format!("{at}.{field}"),
            format!("{} is empty", path.display()),
        ),
        Ok(_) => {}
    };
    // A secret: readable, not a directory, not empty, and private (`crypto/private_file.rs`).
    let private = |path: &Path, field: &str, what: &str, p: &mut Problems| {
        use crate::crypto::private_file::{describe, read_private};
        if !reads {
            return;
        }
        match read_private(path) {
            Err(e) => p.add(&format!("{at}.{field}"), describe(what, path, &e)),
            Ok(text) if text.trim().is_empty() => p.add(
                &format!("{at}.{field}"),
                format!("{what} {} is empty", path.display()),
            ),
            Ok(_) => {}
        }
    };
    match cred {
        CredentialConfig::ClientSecret {
            secret_env,
            secret_file,
            ..
        } => match (secret_env, secret_file) {
            (Some(var), None) => {
                if reads && std::env::var_os(var).is_none_or(|v| v.is_empty()) {
                    p.add(&format!("{at}.secret_env"), format!("the environment variable {var} is not set; set it to the app's client secret"));
                }
            }
            (None, Some(file)) => private(file, "secret_file", "the client secret file", p),
            _ => p.add(at, "give exactly one of secret_env (an environment variable name) or secret_file (a path); secrets are never written in tenant files"),
        },
        CredentialConfig::PrivateKeyJwt {
            certificate_file,
            key_file,
            ..
        } => {
            readable(certificate_file, "certificate_file", p);
            private(key_file, "key_file", "the private key file", p);
            if reads && certificate_file.exists() && key_file.exists() {
                // Parse now, so that a wrong key or certificate is reported by `check` and
                // stops `serve`, instead of failing the first login.
                if let Err(e) = crate::crypto::app_key::AppSigningKey::load(key_file, certificate_file) {
                    p.add(at, e);
                }
            }
        }
        CredentialConfig::Federated { assertion_file } => readable(assertion_file, "assertion_file", p),
        CredentialConfig::ManagedIdentity { endpoint, audience, client_id } => {
            if let Some(e) = endpoint
                && !url::Url::parse(e).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            {
                p.add(&format!("{at}.endpoint"), format!("'{e}' is not an http(s) URL; leave it out to use the platform's identity endpoint"));
            }
            if audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
                p.add(&format!("{at}.audience"), "the audience is empty; leave it out for api://AzureADTokenExchange");
            }
            if client_id.as_deref().is_some_and(|c| c.trim().is_empty()) {
                p.add(&format!("{at}.client_id"), "the client id is empty; give the user-assigned identity's client id, or leave it out for the system-assigned identity");
            }
        }
        CredentialConfig::None => {}
    }
}

fn validate_resources(c: &TenantConfig, p: &mut Problems) {
    if c.resources.is_empty() {
        p.add("resources", "at least one resource (an MCP server this tenant fronts) is required; add a [[resources]] table");
    }
    let defaults = c.resources.iter().filter(|r| r.default).count();
    if defaults > 1 {
        p.add(
            "resources",
            "more than one resource says default = true; mark exactly one",
        );
    }
    if defaults == 0 && c.resources.len() > 1 {
        p.add("resources", "several resources and none says default = true; mark the one used when a client names no resource");
    }
    let mut uris = HashSet::new();
    let mut names = HashSet::new();
    let entra = matches!(c.upstream, UpstreamConfig::Entra { .. });
    // The Entra API (identifier URI) of each resource so far, to refuse two on one API.
    let mut apis: Vec<(String, usize)> = Vec::new();
    for (i, r) in c.resources.iter().enumerate() {
        let at = |f: &str| format!("resources[{i}].{f}");
        if check_url(&at("uri"), r.uri.as_str(), p) && !uris.insert(r.uri.normalized()) {
            p.add(&at("uri"), "another resource has the same uri (compared after normalizing case, default port, an empty path and escapes)");
        }
        if r.scopes.is_empty() {
            p.add(&at("scopes"), "at least one scope is required");
        }
        if let Some(u) = &r.upstream_resource {
            if entra {
                p.add(&at("upstream_resource"), "Entra rejects the resource parameter (AADSTS9010010); express the API through fully qualified scopes and remove this field");
            } else {
                // RFC 8707 §2: an absolute URI without a fragment, of any scheme (api://… is usual).
                let ok = Url::parse(u).is_ok_and(|url| url.fragment().is_none());
                if !ok {
                    p.add(&at("upstream_resource"), format!("'{u}' must be an absolute URI without a fragment, such as api://mcp-files or https://api.example.com"));
                }
            }
        }
        for (field, message) in r.token_problems() {
            p.add(&at(field), message);
        }
        let entra_resources = validate_resource_scopes(i, r, entra, &mut names, p);
        if entra_resources.len() > 1 {
            p.add(&at("scopes"), "Entra issues a token for one resource per request (AADSTS28000); all upstream scopes of one MCP resource must belong to the same API");
        }
        // Minted tokens name the resource itself as their audience, so minted resources may
        // share an API; a passthrough resource's token is valid wherever its API is.
        for api in &entra_resources {
            let clash = apis.iter().find(|(a, other)| {
                a.eq_ignore_ascii_case(api) && !(r.is_minted() && c.resources[*other].is_minted())
            });
            if let Some((_, other)) = clash {
                p.add(&at("scopes"), format!("the Entra API '{api}' is also resources[{other}]'s, and the IdP's access token (audience {api}) would be valid at both MCP servers; give each MCP server an API of its own (an app registration with its own identifier URI), or set token = \"minted\" on both so that each receives tokens for itself alone"));
            }
            apis.push(((*api).to_owned(), i));
        }
        if entra && r.scopes.iter().any(|s| s.upstream.ends_with("/.default")) && r.scopes.len() > 1
        {
            p.add(&at("scopes"), "'.default' cannot be combined with named scopes of the same API (AADSTS70011); use either .default alone or named scopes");
        }
        for (j, d) in r.default_scopes.iter().enumerate() {
            if !r.scopes.iter().any(|s| &s.name == d) {
                p.add(
                    &at(&format!("default_scopes[{j}]")),
                    format!("'{d}' is not one of this resource's scope names"),
                );
            }
        }
    }
}

/// The scopes of resource `i`: valid names, unique across the tenant, and upstream strings
/// Entra can use (fully qualified, not Microsoft Graph's). Returns the Entra APIs they belong to.
fn validate_resource_scopes<'c>(
    i: usize,
    r: &'c ResourceConfig,
    entra: bool,
    names: &mut HashSet<&'c str>,
    p: &mut Problems,
) -> HashSet<&'c str> {
    let mut entra_resources = HashSet::new();
    for (j, s) in r.scopes.iter().enumerate() {
        let at = |f: &str| format!("resources[{i}].scopes[{j}].{f}");
        if !is_scope_token(&s.name) {
            p.add(
                &at("name"),
                format!("'{}' is not a valid scope name", s.name),
            );
        } else if s.name == "offline_access" || s.name == "openid" {
            p.add(
                &at("name"),
                format!("'{}' is handled by the shim itself; do not list it", s.name),
            );
        } else if !names.insert(s.name.as_str()) {
            p.add(&at("name"), format!("'{}' is already used in this tenant; scope names must be unique across resources", s.name));
        }
        if !is_scope_token(&s.upstream) {
            p.add(
                &at("upstream"),
                format!("'{}' is not a valid scope", s.upstream),
            );
        } else if entra && !OIDC_SCOPES.contains(&s.upstream.as_str()) {
            let graph = s.upstream.starts_with("https://graph.microsoft.com/")
                || s.upstream
                    .starts_with("00000003-0000-0000-c000-000000000000/");
            match s.upstream.rsplit_once('/') {
                _ if graph => p.add(&at("upstream"), format!("'{}' is a Microsoft Graph scope: a passthrough token for it has Graph as its audience, which no MCP server can accept as its own; expose the MCP server's own API in its app registration and use its scopes", s.upstream)),
                Some((resource, _)) if !resource.is_empty() => {
                    entra_resources.insert(resource);
                }
                _ => p.add(&at("upstream"), format!("'{}' is a bare scope, which Entra reads as Microsoft Graph (AADSTS650053); write it fully qualified, e.g. api://<app-id>/{}", s.upstream, s.upstream)),
            }
        }
    }
    entra_resources
}

fn validate_mapping(c: &TenantConfig, p: &mut Problems) {
    for (i, rule) in c.mapping.iter().enumerate() {
        let at = |f: &str| format!("mapping[{i}].{f}");
        let is_dev_default = c.apps.is_empty() && matches!(c.upstream, UpstreamConfig::Dev { .. });
        if !is_dev_default && !c.apps.iter().any(|a| a.name == rule.app) {
            p.add(
                &at("app"),
                format!("'{}' is not the name of an app in this file", rule.app),
            );
        }
        for (j, r) in rule.resources.iter().enumerate() {
            if !c.resources.iter().any(|res| res.uri.matches(r)) {
                p.add(
                    &at(&format!("resources[{j}]")),
                    format!("'{r}' is not the uri of a resource in this file"),
                );
            }
        }
        if rule.software_ids.iter().any(|s| s.is_empty()) {
            p.add(&at("software_ids"), "must not contain an empty string");
        }
    }
}

fn validate_registration(c: &TenantConfig, p: &mut Problems) {
    let r = &c.registration;
    if !r.dcr && !r.cimd {
        p.add(
            "registration",
            "both dcr and cimd are off, so no client could ever log in; turn one on",
        );
    }
    if r.unused_client_lifetime < Duration::from_secs(3600) {
        p.add("registration.unused_client_lifetime", "must be at least 1h");
    }
    if r.tenant_registrations_per_minute == Some(0) {
        p.add(
            "registration.tenant_registrations_per_minute",
            "must be at least 1; turn registration off with dcr = false instead",
        );
    }
    for (i, entry) in r.cimd_approval.iter().enumerate() {
        if entry.hosts.is_empty() {
            p.add(
                &format!("registration.cimd_approval[{i}].hosts"),
                "is empty, so the entry applies to no client; list hosts or remove it",
            );
        }
    }
    if !r.cimd && !r.cimd_approval.is_empty() {
        p.add(
            "registration.cimd_approval",
            "applies to client metadata documents, which are off (cimd = false); remove it",
        );
    }
    if r.registrations_per_minute == 0 {
        p.add(
            "registration.registrations_per_minute",
            "must be at least 1; turn registration off with dcr = false instead",
        );
    }
}

fn validate_dev(d: &DevSettings, public_url: &Url, p: &mut Problems) {
    if d.cimd_allow_loopback && !is_loopback_host(public_url) {
        p.add("dev.cimd_allow_loopback", format!("turns off the protection against fetches of internal addresses, so it is refused on a public URL that is not loopback ({public_url}); remove it"));
    }
    if let Some(ca) = &d.cimd_extra_ca_file {
        match std::fs::read(ca) {
            Ok(pem) => {
                if reqwest::Certificate::from_pem(&pem).is_err() {
                    p.add(
                        "dev.cimd_extra_ca_file",
                        format!("{} is not a PEM certificate", ca.display()),
                    );
                }
            }
            Err(e) => p.add(
                "dev.cimd_extra_ca_file",
                format!("cannot read {}: {e}", ca.display()),
            ),
        }
    }
}

/// An absolute http(s) URL without fragment or userinfo; plain http only on a loopback host.
fn check_url(field: &str, raw: &str, p: &mut Problems) -> bool {
    let url = match Url::parse(raw) {
        Ok(u) => u,
        Err(e) => {
            p.add(field, format!("'{raw}' is not an absolute URL ({e})"));
            return false;
        }
    };
    if !crate::domain::is_https_or_loopback(&url) {
        p.add(
            field,
            format!("'{raw}' must use https (http is accepted only on a loopback host)"),
        );
        return false;
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        p.add(
            field,
            format!("'{raw}' must not contain a fragment or user information"),
        );
        return false;
    }
    true
}
