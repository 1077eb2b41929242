//! A tenant as served: its id, file and issuer, and its validated settings (`schema.rs`,
//! documented in `docs/tenants.md`), which only `config/` reads directly; the rest asks the
//! methods here. `load_tenants` (`load.rs`) parses every file and reports every problem at
//! once.

use std::path::PathBuf;

pub(crate) use super::app::AppConfig;
pub(crate) use super::app::{CredentialConfig, SecretMethod, SigningAlgorithm};
use super::downstream_api::DownstreamApi;
use super::machine_client::MachineClientConfig;
pub use super::resource::ResourceConfig;
pub(crate) use super::resource::ScopeConfig;
use super::resource_server::ResourceServerConfig;
pub(crate) use super::schema::{DevSettings, MappingRule, read_ca_file};
pub use super::schema::{
    RegistrationPolicy, TenantConfig, TrustRoots, UpstreamConfig, UpstreamTls,
};
use super::token_mode::TokenSigningAlg;
use super::trusted_issuer::TrustedIssuer;
use super::trusted_workload::TrustedWorkload;
use crate::domain::ResourceUri;
use crate::domain::tenant_id::TenantId;

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

    /// The machine client of the tenant with this client id.
    pub(crate) fn machine_client(&self, client_id: &str) -> Option<&MachineClientConfig> {
        self.config
            .machine_clients
            .iter()
            .find(|m| m.client_id == client_id)
    }

    /// The machine clients of the tenant, in file order.
    pub(crate) fn machine_clients(&self) -> &[MachineClientConfig] {
        &self.config.machine_clients
    }

    /// Whether the tenant offers the client credentials grant (it names machine clients).
    pub(crate) fn offers_client_credentials(&self) -> bool {
        !self.config.machine_clients.is_empty()
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

    /// Whether DPoP proofs to this tenant must carry its server nonce (`[dpop] require_nonce`).
    pub(crate) fn dpop_requires_nonce(&self) -> bool {
        self.config.dpop.require_nonce
    }

    /// The workload rules of the tenant, in file order (`trusted_workload.rs`).
    pub(crate) fn trusted_workloads(&self) -> &[TrustedWorkload] {
        &self.config.trusted_workloads
    }

    /// Whether the tenant accepts workload tokens (JWT-bearer grants without a client).
    pub(crate) fn trusts_workloads(&self) -> bool {
        !self.config.trusted_workloads.is_empty()
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
        for m in &self.config.machine_clients {
            lines.push(format!(
                "machine client {} (no user) may get tokens for {}",
                m.client_id,
                m.resources.join(", ")
            ));
        }
        for w in &self.config.trusted_workloads {
            lines.push(format!(
                "workloads of {} with subject '{}'{} become machine client {}",
                w.issuer,
                w.subject,
                if w.claims.is_empty() {
                    ""
                } else {
                    " and the claims listed"
                },
                w.machine_client
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

    /// Whether the tenant signs anything with its keys: minted access tokens, or the identity
    /// JWTs its gateway resources hand their MCP servers (then it has a JWKS).
    pub(crate) fn signs_tokens(&self) -> bool {
        self.mints_tokens()
            || self.config.resources.iter().any(|r| {
                r.gateway
                    .as_ref()
                    .is_some_and(|g| g.identity == super::gateway::IdentityForm::Jwt)
            })
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
