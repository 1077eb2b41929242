//! Upstream discovery (OpenID Connect Discovery 1.0 §4): fetch each tenant's provider metadata,
//! check that its issuer is the configured one, and keep retrying in the background while it
//! fails, so that one unreachable IdP neither stops the shim nor hides from `/readyz`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openidconnect::core::CoreProviderMetadata;

use crate::config::Tenant;
use crate::config::tenant::UpstreamConfig;
use crate::domain::TenantId;
use crate::net::fetch::error_chain;

use super::endpoints::UpstreamEndpoints;
use super::http::{UpstreamHttp, is_certificate_error};
use super::provider::Provider;

/// Where one tenant's upstream stands.
#[derive(Clone, Debug)]
pub(crate) enum UpstreamStatus {
    /// The built-in dev IdP: always there.
    BuiltIn,
    Discovered(Arc<CoreProviderMetadata>),
    /// Not discovered yet; the last error says why.
    Unreachable(String),
}

impl UpstreamStatus {
    /// Whether the upstream issues refresh tokens (true unless its metadata says otherwise).
    pub(crate) fn offers_refresh(&self) -> bool {
        match self {
            Self::Discovered(m) => m
                .scopes_supported()
                .is_none_or(|scopes| scopes.iter().any(|s| s.as_str() == "offline_access")),
            _ => true,
        }
    }
}

static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The upstream status of every tenant, updated by the discovery tasks.
#[derive(Clone, Default)]
pub(crate) struct UpstreamDirectory {
    statuses: Arc<RwLock<HashMap<TenantId, UpstreamStatus>>>,
    /// Each tenant's discovery task (finished or not), with the upstream it discovers.
    tasks: Arc<Mutex<HashMap<TenantId, Discovery>>>,
    /// Discovers nothing (the offline admin commands, which call no IdP).
    passive: bool,
}

struct Discovery {
    upstream: UpstreamConfig,
    /// Tells this task's results from those of a task it replaced that has not stopped yet.
    generation: u64,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Discovery {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl UpstreamDirectory {
    /// A directory that starts no discovery: every IdP but the built-in one stays unknown.
    pub(crate) fn passive() -> Self {
        Self {
            passive: true,
            ..Self::default()
        }
    }

    pub(crate) fn status(&self, tenant: &TenantId) -> UpstreamStatus {
        self.statuses
            .read()
            .map(|s| s.get(tenant).cloned())
            .ok()
            .flatten()
            .unwrap_or_else(|| UpstreamStatus::Unreachable("not configured".into()))
    }

    /// The endpoints of `tenant`'s upstream, or why they are not known yet.
    pub(crate) fn endpoints(&self, tenant: &Tenant) -> Result<UpstreamEndpoints, String> {
        match self.status(&tenant.id) {
            UpstreamStatus::BuiltIn => Ok(Provider::built_in_endpoints(&tenant.issuer)),
            UpstreamStatus::Discovered(m) => {
                let offers_refresh = Provider::of(tenant)
                    .offers_refresh(UpstreamStatus::Discovered(m.clone()).offers_refresh());
                Ok(UpstreamEndpoints {
                    issuer: m.issuer().as_str().to_owned(),
                    authorization_endpoint: m.authorization_endpoint().as_str().to_owned(),
                    token_endpoint: m
                        .token_endpoint()
                        .map(|t| t.as_str().to_owned())
                        .ok_or_else(|| {
                            "the upstream's metadata has no token_endpoint".to_owned()
                        })?,
                    offers_refresh,
                    jwks_uri: m.jwks_uri().url().as_str().to_owned(),
                })
            }
            UpstreamStatus::Unreachable(why) => Err(why),
        }
    }

    fn set(&self, tenant: &TenantId, status: UpstreamStatus) {
        let up = i64::from(!matches!(status, UpstreamStatus::Unreachable(_)));
        crate::metrics::metrics()
            .upstream
            .up
            .with_label_values(&[tenant.as_str()])
            .set(up);
        if let Ok(mut s) = self.statuses.write() {
            s.insert(tenant.clone(), status);
        }
    }

    /// Makes the directory follow `tenants`: a tenant whose upstream is new or changed is
    /// marked unreachable (or built in) and gets a discovery task; one whose upstream is
    /// unchanged keeps its status (a reload does not interrupt its logins); a tenant no longer
    /// there is forgotten and its task stopped.
    pub(crate) fn follow(&self, tenants: &[Arc<Tenant>], http: &UpstreamHttp) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<TenantId> = tasks
            .keys()
            .filter(|id| !tenants.iter().any(|t| &t.id == *id))
            .cloned()
            .collect();
        for id in gone {
            tasks.remove(&id);
            if let Ok(mut s) = self.statuses.write() {
                s.remove(&id);
            }
            let _ = crate::metrics::metrics()
                .upstream
                .up
                .remove_label_values(&[id.as_str()]);
        }
        for tenant in tenants {
            // Kept: an unchanged upstream that is known. One not discovered yet is tried
            // again from the start, with the files it names read again (a fixed ca_file).
            let known = !matches!(self.status(&tenant.id), UpstreamStatus::Unreachable(_));
            if known
                && tasks
                    .get(&tenant.id)
                    .is_some_and(|d| &d.upstream == tenant.upstream())
            {
                continue;
            }
            let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let task = if Provider::of(tenant).is_built_in() {
                self.set(&tenant.id, UpstreamStatus::BuiltIn);
                None
            } else if self.passive {
                self.set(
                    &tenant.id,
                    UpstreamStatus::Unreachable("not discovered (offline)".into()),
                );
                None
            } else {
                self.set(
                    &tenant.id,
                    UpstreamStatus::Unreachable("discovery has not finished yet".into()),
                );
                let (dir, tenant, http) = (
                    self.clone(),
                    tenant.clone(),
                    http.for_tenant(&tenant.id).clone(),
                );
                Some(tokio::spawn(async move {
                    dir.discover_until_done(&tenant, &http, generation).await
                }))
            };
            tasks.insert(
                tenant.id.clone(),
                Discovery {
                    upstream: tenant.upstream().clone(),
                    generation,
                    task,
                },
            );
        }
    }

    /// Stops every discovery task (the server is stopping).
    pub(crate) fn stop(&self) {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Retries with backoff until discovery succeeds. A failure is logged at warn when it is
    /// new (the first, or a different reason), at debug while it repeats; success at info.
    async fn discover_until_done(&self, tenant: &Tenant, http: &reqwest::Client, generation: u64) {
        let set = |status| {
            let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
            if tasks
                .get(&tenant.id)
                .is_some_and(|d| d.generation == generation)
            {
                self.set(&tenant.id, status);
            }
        };
        let mut delay = Duration::from_secs(1);
        let mut last_failure: Option<String> = None;
        loop {
            let outcome = discover(tenant.upstream(), http).await;
            if let Err(e) = &outcome {
                let reason = e.to_string();
                if last_failure.as_deref() == Some(reason.as_str()) {
                    tracing::debug!(tenant = %tenant.id, error = %reason, retry_in = ?delay, "upstream still unreachable");
                    set(UpstreamStatus::Unreachable(reason));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                    continue;
                }
                last_failure = Some(reason);
            }
            match outcome {
                Ok(metadata) => {
                    tracing::info!(tenant = %tenant.id, issuer = %metadata.issuer().as_str(), "upstream discovered");
                    set(UpstreamStatus::Discovered(Arc::new(metadata)));
                    return;
                }
                Err(e @ DiscoveryError::Certificate(_)) => {
                    tracing::warn!(tenant = %tenant.id, file = %tenant.file.display(), error = %e, retry_in = ?delay,
                        "upstream discovery failed: the IdP's TLS certificate is not trusted; if a private CA or a TLS-inspecting proxy issued it, set upstream.ca_file to that CA's PEM file (or upstream.roots = \"system\" to trust this machine's store)");
                    set(UpstreamStatus::Unreachable(e.to_string()));
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant.id, file = %tenant.file.display(), error = %e, retry_in = ?delay,
                        "upstream discovery failed; check upstream.issuer / directory_id in the tenant file and that this host can reach the IdP");
                    set(UpstreamStatus::Unreachable(e.to_string()));
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(60));
        }
    }
}

/// Why an upstream's discovery failed.
#[derive(Debug)]
pub enum DiscoveryError {
    /// Not reachable now (network, timeout, an HTTP error): may pass on its own.
    Unreachable(String),
    /// The IdP's TLS certificate is not trusted or not valid for its name: the tenant file's
    /// `upstream.ca_file` or `upstream.roots` must change.
    Certificate(String),
    /// The IdP answered, but not with what the tenant file expects.
    Wrong(String),
}

impl std::fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(m) | Self::Certificate(m) | Self::Wrong(m) => f.write_str(m),
        }
    }
}

/// Fetches and checks one upstream's discovery document.
pub async fn discover(
    upstream: &UpstreamConfig,
    http: &reqwest::Client,
) -> Result<CoreProviderMetadata, DiscoveryError> {
    use DiscoveryError::{Certificate, Unreachable, Wrong};
    let (Some(url), Some(issuer)) = (upstream.discovery_url(), upstream.issuer()) else {
        return Err(Wrong("this upstream has no discovery document".into()));
    };
    let response = http.get(&url).send().await.map_err(|e| {
        let message = format!("GET {url}: {}", error_chain(&e));
        if is_certificate_error(&e) {
            Certificate(message)
        } else {
            Unreachable(message)
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(Unreachable(format!("GET {url}: HTTP {status}")));
    }
    let body = super::http::read_capped_body(response)
        .await
        .map_err(|e| Unreachable(format!("GET {url}: {e}")))?;
    let metadata: CoreProviderMetadata = serde_json::from_slice(&body).map_err(|e| {
        Wrong(format!(
            "{url} is not an OpenID provider metadata document: {e}"
        ))
    })?;
    let found = metadata.issuer().as_str().trim_end_matches('/');
    if !Provider::new(upstream).issuer_matches(found, issuer.trim_end_matches('/')) {
        return Err(Wrong(format!(
            "{url} names issuer '{found}' but the tenant file expects '{issuer}'"
        )));
    }
    let token_endpoint = metadata
        .token_endpoint()
        .map(|t| t.as_str().to_owned())
        .ok_or_else(|| Wrong(format!("{url} names no token_endpoint")))?;
    for (what, endpoint) in [
        (
            "authorization_endpoint",
            metadata.authorization_endpoint().as_str(),
        ),
        ("token_endpoint", token_endpoint.as_str()),
    ] {
        if !is_https_or_loopback(endpoint) {
            return Err(Wrong(format!(
                "{url} names {what} '{endpoint}', which is not https; the shim sends credentials there"
            )));
        }
    }
    Ok(metadata)
}

fn is_https_or_loopback(endpoint: &str) -> bool {
    url::Url::parse(endpoint).is_ok_and(|u| crate::domain::is_https_or_loopback(&u))
}
