//! Reloading the tenant files while serving (SIGHUP, `--watch-tenants`). The new set is read
//! and validated whole, and everything built from it (IdP clients, CIMD resolvers, dev IdPs)
//! is made, before anything is replaced: one invalid file and the running set stays. Then the
//! tenants, their CIMD resolvers and the IdP caller are swapped in as one generation
//! (`oauth/serving.rs`), after the IdPs' discovery and the dev IdP's pages have learnt of the
//! new set. Clients, grants and transactions live in the store and are not touched: a
//! login begun before a reload finishes after it, and a removed tenant's data waits for its
//! file to come back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use sha2::{Digest, Sha256};

use crate::config::{Problem, Settings, Tenant, load_tenants};
use crate::dev_idp::DevIdps;
use crate::dev_idp::idp::DevIdp;
use crate::domain::TenantId;
use crate::http::state::AppState;
use crate::net::{FetchPolicy, SafeFetcher};
use crate::oauth::cimd::CimdResolver;
use crate::oauth::serving::GenerationParts;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::tokens::UpstreamClient;

/// Why a tenant set cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TenantSetError {
    #[error("{} problem(s) in the tenant files:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Tenants(Vec<Problem>),
    #[error("cannot set up the built-in dev IdP: {0}")]
    DevIdp(String),
    #[error("cannot set up outbound HTTP: {0}")]
    Fetcher(String),
}

/// A tenant set, validated, with what serving it needs.
pub(crate) struct TenantSet {
    pub(crate) tenants: Vec<Arc<Tenant>>,
    pub(crate) http: UpstreamHttp,
    pub(crate) resolvers: HashMap<TenantId, Arc<CimdResolver>>,
    pub(crate) dev_idps: HashMap<TenantId, Arc<DevIdp>>,
}

impl TenantSet {
    /// Reads the tenant files and builds what they need; every problem in them reported at
    /// once. Nothing that serves requests changes.
    pub(crate) fn prepare(settings: &Settings, dev_idps: &DevIdps) -> Result<Self, TenantSetError> {
        let tenants: Vec<Arc<Tenant>> = load_tenants(&settings.tenants_dir, &settings.public_url)
            .map_err(TenantSetError::Tenants)?
            .into_iter()
            .map(Arc::new)
            .collect();
        let http = UpstreamHttp::new(&tenants, settings.upstream_timeout)
            .map_err(TenantSetError::Fetcher)?;
        let resolvers = cimd_resolvers(&tenants)?;
        let dev_idps = dev_idps
            .prepare(
                &tenants,
                settings.listen,
                settings.dev_idp_any_interface,
                &settings.data_dir,
            )
            .map_err(TenantSetError::DevIdp)?;
        Ok(Self {
            tenants,
            http,
            resolvers,
            dev_idps,
        })
    }
}

/// One CIMD resolver per tenant, all fetching through the same guarded fetcher.
fn cimd_resolvers(
    tenants: &[Arc<Tenant>],
) -> Result<HashMap<TenantId, Arc<CimdResolver>>, TenantSetError> {
    let strict = SafeFetcher::new(FetchPolicy::default())
        .map_err(|e| TenantSetError::Fetcher(e.to_string()))?;
    tenants
        .iter()
        .map(|t| {
            let resolver = CimdResolver::for_tenant(t, &strict)
                .map_err(|e| TenantSetError::Fetcher(format!("tenant {}: {e}", t.id)))?;
            Ok((t.id.clone(), Arc::new(resolver)))
        })
        .collect()
}

/// What a reload changed, by tenant id.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// Reloads the tenant files of a running server, one reload at a time.
#[derive(Clone)]
pub struct Reloader {
    settings: Settings,
    state: web::Data<AppState>,
    dev_idps: DevIdps,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl Reloader {
    pub(crate) fn new(settings: Settings, state: web::Data<AppState>, dev_idps: DevIdps) -> Self {
        Self {
            settings,
            state,
            dev_idps,
            one_at_a_time: Arc::default(),
        }
    }

    /// Reads the tenant files again and serves them, or keeps the running set when any file is
    /// invalid. Either way the outcome is logged and counted.
    pub async fn reload(&self) -> Result<Reloaded, TenantSetError> {
        let _one = self.one_at_a_time.lock().await;
        let (settings, dev_idps) = (self.settings.clone(), self.dev_idps.clone());
        let prepared =
            tokio::task::spawn_blocking(move || TenantSet::prepare(&settings, &dev_idps))
                .await
                .unwrap_or_else(|e| {
                    Err(TenantSetError::Fetcher(format!("reload task failed: {e}")))
                });
        let outcome = prepared.map(|set| self.install(set));
        match &outcome {
            Ok(r) => {
                crate::metrics::metrics()
                    .tenant_reloads
                    .with_label_values(&["applied"])
                    .inc();
                tracing::info!(
                    tenants = self.state.tenants().len(),
                    added = ?r.added,
                    removed = ?r.removed,
                    changed = ?r.changed,
                    "tenant files reloaded"
                );
            }
            Err(e) => {
                crate::metrics::metrics()
                    .tenant_reloads
                    .with_label_values(&["refused"])
                    .inc();
                tracing::error!(error = %e, "tenant files not reloaded; the running tenants stay as they were until the files are fixed");
            }
        }
        outcome
    }

    /// Swaps `set` in: the discovery of its IdPs and the dev IdP's pages first, then the
    /// tenants with their resolvers and IdP caller in one step (`Serving::install`). A request
    /// under way may hold a tenant this reload removes: the parts that serve it (its metadata
    /// document resolver, its IdP credentials and in-process IdP, its discovered endpoints)
    /// stay until the next reload, while the tenant list, the probes and the dev IdP's pages
    /// forget it at once.
    /// A resolver whose tenant's settings for it did not change is kept, with its cache and
    /// its per-address budgets.
    pub(crate) fn install(&self, mut set: TenantSet) -> Reloaded {
        let before = self.state.tenants();
        let resolvers = self.state.serving().resolvers();
        let dev_idps = self.dev_idps.current();
        let removed: Vec<Arc<Tenant>> = before
            .iter()
            .filter(|old| !set.tenants.iter().any(|t| t.id == old.id))
            .cloned()
            .collect();
        for t in &set.tenants {
            let unchanged = before
                .iter()
                .find(|old| old.id == t.id)
                .is_some_and(|old| same_resolver_settings(old, t));
            if let Some(r) = resolvers.get(&t.id).filter(|_| unchanged) {
                set.resolvers.insert(t.id.clone(), r.clone());
            }
        }
        let mut in_process = set.dev_idps.clone();
        for t in &removed {
            if let Some(r) = resolvers.get(&t.id) {
                set.resolvers.insert(t.id.clone(), r.clone());
            }
            if let Some(idp) = dev_idps.get(&t.id) {
                in_process.insert(t.id.clone(), idp.clone());
            }
        }
        let serving: Vec<Arc<Tenant>> = set.tenants.iter().chain(&removed).cloned().collect();
        let upstream =
            UpstreamClient::new(set.http.clone(), &serving, DevIdps::in_process(&in_process));
        self.state.upstreams().follow(&serving, &set.http);
        report_certificates(&upstream, &set.tenants);
        self.dev_idps.install(set.dev_idps);
        for t in &set.tenants {
            crate::metrics::metrics().initialize_tenant(t.id.as_str());
        }
        // The tenants, their resolvers and the IdP caller, in one step.
        self.state.serving().install(GenerationParts {
            tenants: set.tenants.clone(),
            public_url: self.settings.public_url.clone(),
            resolvers: set.resolvers,
            upstream,
        });
        difference(&before, &set.tenants)
    }

    /// Reloads whenever the tenant files' contents change from `seen` (their `fingerprint`
    /// when the running set was read), checking every `every`. A change is loaded only once two
    /// polls in a row have seen the same contents: an editor or a copy that is still writing a
    /// file would otherwise have its first half loaded, and what a truncated file leaves out
    /// takes its permissive default (`dcr = false` lost is registration open).
    pub(crate) async fn watch(self, seen: [u8; 32], every: Duration) {
        let dir = self.settings.tenants_dir.clone();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut changes = Settled::new(seen);
        loop {
            tick.tick().await;
            if changes.observe(fingerprint(&dir).await) {
                // Logged and counted inside; a refused set is tried again at its next change.
                let _ = self.reload().await;
            }
        }
    }
}

/// The tenant files' fingerprints as the watch sees them, poll after poll: a change counts once
/// two polls in a row have seen it.
struct Settled {
    loaded: [u8; 32],
    changing_to: Option<[u8; 32]>,
}

impl Settled {
    fn new(loaded: [u8; 32]) -> Self {
        Self {
            loaded,
            changing_to: None,
        }
    }

    /// Takes one poll's fingerprint; `true` when the files should be loaded now.
    fn observe(&mut self, now: [u8; 32]) -> bool {
        if now == self.loaded {
            self.changing_to = None;
            return false;
        }
        if self.changing_to != Some(now) {
            self.changing_to = Some(now);
            tracing::debug!(
                "tenant files changed; they are loaded once they stay unchanged for one more poll"
            );
            return false;
        }
        self.loaded = now;
        self.changing_to = None;
        true
    }
}

/// Whether a tenant's metadata document resolver can serve `new` as it served `old`: it is
/// built from the dev settings and the per-address budget (the rest of the policy is read
/// from the tenant at each resolution).
fn same_resolver_settings(old: &Tenant, new: &Tenant) -> bool {
    format!("{:?}", old.dev()) == format!("{:?}", new.dev())
        && old.registration().cimd_fetches_per_minute == new.registration().cimd_fetches_per_minute
}

/// Which tenants `after` adds, removes and changes relative to `before`.
fn difference(before: &[Arc<Tenant>], after: &[Arc<Tenant>]) -> Reloaded {
    let find = |set: &[Arc<Tenant>], id: &TenantId| set.iter().find(|t| &t.id == id).cloned();
    let mut r = Reloaded::default();
    for t in after {
        match find(before, &t.id) {
            None => r.added.push(t.id.to_string()),
            // Compared by their parsed contents: a comment or a reordering is no change.
            Some(old) if !old.same_settings(t) => r.changed.push(t.id.to_string()),
            Some(_) => {}
        }
    }
    for t in before {
        if find(after, &t.id).is_none() {
            r.removed.push(t.id.to_string());
        }
    }
    r
}

/// A digest of the names and contents of the tenant files (`*.toml`) in `dir`.
pub(crate) async fn fingerprint(dir: &std::path::Path) -> [u8; 32] {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut hash = Sha256::new();
        for f in files {
            for part in [
                f.as_os_str().as_encoded_bytes(),
                &std::fs::read(&f).unwrap_or_default(),
            ] {
                hash.update((part.len() as u64).to_le_bytes());
                hash.update(part);
            }
        }
        hash.finalize().into()
    })
    .await
    .unwrap_or_default()
}

/// The loaded tenants' app certificates: their ends as `dcr_shim_credential_expiry_timestamp_seconds`
/// (a removed tenant's no longer), and a log line for one that has ended or ends within
/// `CERTIFICATE_WARNING_SECONDS`. Read from the credentials `upstream` loaded, not again.
fn report_certificates(upstream: &UpstreamClient, loaded: &[Arc<Tenant>]) {
    use crate::crypto::app_key::CertificateDeadline;
    let gauge = &crate::metrics::metrics().upstream.credential_expiry;
    gauge.reset();
    let now = crate::clock::unix_now();
    for (tenant, app, not_after) in upstream.certificate_expiries() {
        if !loaded.iter().any(|t| &t.id == tenant) {
            continue;
        }
        match CertificateDeadline::of(not_after, now) {
            CertificateDeadline::Ended => {
                tracing::error!(%tenant, app, "the app's certificate has expired: Entra refuses its client assertions (AADSTS700027) and its logins fail; upload a new certificate to the app registration and point certificate_file and key_file at it")
            }
            CertificateDeadline::Near { days } => {
                tracing::warn!(%tenant, app, days_left = days, "the app's certificate expires within 30 days; upload a new one to the app registration before then")
            }
            CertificateDeadline::Later => {}
        }
        gauge
            .with_label_values(&[tenant.as_str(), app, "certificate"])
            .set(i64::try_from(not_after).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::Settled;

    /// Regression (issue 22, item 9): a file seen half-written by one poll was loaded.
    #[test]
    fn a_change_is_loaded_only_once_two_polls_agree() {
        let (loaded, half, whole) = ([0; 32], [1; 32], [2; 32]);
        let mut s = Settled::new(loaded);
        assert!(!s.observe(loaded));
        assert!(!s.observe(half), "a file still being written");
        assert!(!s.observe(whole), "it changed again: not settled");
        assert!(s.observe(whole), "two polls agree");
        assert!(!s.observe(whole), "loaded once");
        // A change that is undone before it settles loads nothing.
        assert!(!s.observe(half));
        assert!(!s.observe(whole));
    }
}
