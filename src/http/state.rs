//! `AppState`: what request handlers share, built once at start-up. Handlers reach the
//! protocol through its methods, never through its fields.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::web;
use arc_swap::ArcSwap;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::cookies::Cookies;
use crate::config::{Settings, Tenant};
use crate::domain::TenantId;
use crate::oauth::AuthServer;
use crate::oauth::metadata::authorization_server_metadata;
use crate::oauth::registration::ClientRegistry;
use crate::store::Records;
use crate::upstream::UpstreamDirectory;

pub use crate::clock::unix_now;

/// Everything a request handler may need.
pub struct AppState {
    /// Replaced whole when the tenant files are reloaded (`install_tenants`).
    table: ArcSwap<TenantTable>,
    records: Records,
    registry: ClientRegistry,
    upstreams: UpstreamDirectory,
    /// The login flow.
    auth: AuthServer,
    cookies: Cookies,
    trusted_proxies: Vec<ipnet::IpNet>,
    forwarded_header: crate::config::server::ForwardedHeader,
    login_limits: super::login_limits::LoginLimits,
    /// The public URL's path prefix (`config::server::path_prefix`), empty for none.
    path_prefix: String,
}

/// The tenants and what is worked out from their files once.
struct TenantTable {
    /// In file-name order.
    tenants: Vec<Arc<Tenant>>,
    by_id: HashMap<String, Arc<Tenant>>,
    registration_limits: HashMap<TenantId, Arc<KeyedLimit>>,
    /// Each tenant's ceiling on registrations per minute, whatever their sources.
    tenant_registration_limits: HashMap<TenantId, Arc<DirectLimit>>,
    /// Each tenant's metadata document, serialized once: without and with refresh tokens.
    metadata_documents: HashMap<String, [web::Bytes; 2]>,
}

/// A rate limit with the quota it was made with (a reload keeps a limiter whose quota has
/// not changed, and with it what its sources have spent).
struct Limit<L> {
    per_minute: u32,
    limiter: L,
}

type KeyedLimit = Limit<DefaultKeyedRateLimiter<IpAddr>>;
type DirectLimit = Limit<DefaultDirectRateLimiter>;

/// One limit per tenant at `per_minute(tenant)`: the one in `previous` where its quota is
/// unchanged (with what its sources have spent), else a new one from `make`.
fn limits<L>(
    tenants: &[Arc<Tenant>],
    previous: Option<&HashMap<TenantId, Arc<Limit<L>>>>,
    per_minute: impl Fn(&Tenant) -> u32,
    make: impl Fn(Quota) -> L,
) -> HashMap<TenantId, Arc<Limit<L>>> {
    tenants
        .iter()
        .map(|t| {
            let per_minute = per_minute(t);
            let kept = previous
                .and_then(|p| p.get(&t.id))
                .filter(|l| l.per_minute == per_minute);
            let limit = kept.cloned().unwrap_or_else(|| {
                let quota =
                    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
                Arc::new(Limit {
                    per_minute,
                    limiter: make(quota),
                })
            });
            (t.id.clone(), limit)
        })
        .collect()
}

impl TenantTable {
    fn new(tenants: Vec<Arc<Tenant>>, previous: Option<&TenantTable>) -> Self {
        let by_id = tenants
            .iter()
            .map(|t| (t.id.to_string(), t.clone()))
            .collect();
        let registration_limits = limits(
            &tenants,
            previous.map(|p| &p.registration_limits),
            |t| t.registration().registrations_per_minute,
            RateLimiter::keyed,
        );
        let tenant_registration_limits = limits(
            &tenants,
            previous.map(|p| &p.tenant_registration_limits),
            |t| t.registration().tenant_registrations_per_minute(),
            RateLimiter::direct,
        );
        let metadata_documents = tenants
            .iter()
            .map(|t| {
                let doc = |refresh| {
                    web::Bytes::from(
                        serde_json::to_vec(&authorization_server_metadata(t, refresh))
                            .unwrap_or_default(),
                    )
                };
                (t.id.to_string(), [doc(false), doc(true)])
            })
            .collect();
        Self {
            tenants,
            by_id,
            registration_limits,
            tenant_registration_limits,
            metadata_documents,
        }
    }
}

impl AppState {
    pub(crate) fn new(
        settings: Settings,
        tenants: Vec<Arc<Tenant>>,
        records: Records,
        registry: ClientRegistry,
        upstreams: UpstreamDirectory,
        auth: AuthServer,
    ) -> Self {
        let path_prefix = crate::config::server::path_prefix(&settings.public_url).to_owned();
        let cookies = Cookies::new(settings.public_url.scheme() == "https", &path_prefix);
        Self {
            table: ArcSwap::from_pointee(TenantTable::new(tenants, None)),
            cookies,
            records,
            registry,
            upstreams,
            auth,
            trusted_proxies: settings.trusted_proxies.clone(),
            forwarded_header: settings.forwarded_header,
            login_limits: super::login_limits::LoginLimits::new(settings.login_starts_per_minute),
            path_prefix,
        }
    }

    /// The public URL's path prefix, empty for none: the tenants' routes live under it.
    pub(crate) fn path_prefix(&self) -> &str {
        &self.path_prefix
    }

    /// Serves `tenants` from now on (a reload). Requests under way finish with the tenant they
    /// started with.
    pub(crate) fn install_tenants(&self, tenants: Vec<Arc<Tenant>>) {
        let table = TenantTable::new(tenants, Some(&self.table.load()));
        self.table.store(Arc::new(table));
    }

    /// Every tenant, in file-name order.
    pub fn tenants(&self) -> Vec<Arc<Tenant>> {
        self.table.load().tenants.clone()
    }

    /// The tenant named by a path segment, if there is one.
    pub fn tenant(&self, segment: &str) -> Option<Arc<Tenant>> {
        self.table.load().by_id.get(segment).cloned()
    }

    pub fn records(&self) -> &Records {
        &self.records
    }

    pub fn registry(&self) -> &ClientRegistry {
        &self.registry
    }

    pub(crate) fn upstreams(&self) -> &UpstreamDirectory {
        &self.upstreams
    }

    /// The login flow: authorize, consent, callback, token, revoke.
    pub fn auth(&self) -> &AuthServer {
        &self.auth
    }

    /// The names and attributes of the cookies this server sets.
    pub(crate) fn cookies(&self) -> &Cookies {
        &self.cookies
    }

    /// The serialized authorization server metadata of a tenant (RFC 8414). Whether it offers
    /// refresh tokens follows what the upstream's discovery document said.
    pub(crate) fn metadata_document(&self, tenant: &Tenant) -> Option<web::Bytes> {
        let offers_refresh = self.upstreams.status(&tenant.id).offers_refresh();
        self.table
            .load()
            .metadata_documents
            .get(tenant.id.as_str())
            .map(|docs| docs[usize::from(offers_refresh)].clone())
    }

    /// The address of the client behind `req` (`client_addr.rs`).
    pub(crate) fn client_ip(&self, req: &actix_web::HttpRequest) -> Option<IpAddr> {
        super::client_addr::client_address(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            &self.trusted_proxies,
            self.forwarded_header,
        )
    }

    /// Whether `req` came from one of `--trusted-proxies` (whose forwarded headers are read).
    pub(crate) fn is_from_trusted_proxy(&self, req: &actix_web::HttpRequest) -> bool {
        req.peer_addr()
            .is_some_and(|a| super::client_addr::is_trusted_proxy(a.ip(), &self.trusted_proxies))
    }

    /// Whether the tenant's ceiling on registrations per minute, counted over every source,
    /// leaves room for one more.
    pub(crate) fn allow_tenant_registration(&self, tenant: &TenantId) -> bool {
        self.table
            .load()
            .tenant_registration_limits
            .get(tenant)
            .is_none_or(|l| l.limiter.check().is_ok())
    }

    /// Whether `source` may register one more client at `tenant` now. IPv6 sources are
    /// counted per /64, the block one subscriber usually holds, so that rotating addresses
    /// within it does not multiply the budget.
    pub(crate) fn allow_registration(&self, tenant: &TenantId, source: IpAddr) -> bool {
        let key = crate::net::client_address::rate_limit_key(source);
        self.table
            .load()
            .registration_limits
            .get(tenant)
            .is_none_or(|l| l.limiter.check_key(&key).is_ok())
    }

    /// Spends one login start of `source` and `browser` (`http/login_limits.rs`), or says which
    /// limit is reached.
    pub(crate) fn allow_login_start(
        &self,
        source: Option<IpAddr>,
        browser: Option<&str>,
    ) -> Result<(), super::login_limits::LoginLimit> {
        self.login_limits.check(source, browser)
    }

    /// Forgets rate-limit buckets of sources that have been quiet (the sweeper calls this).
    pub(crate) fn forget_idle_rate_limits(&self) {
        self.login_limits.forget_idle();
        for limit in self.table.load().registration_limits.values() {
            limit.limiter.retain_recent();
        }
        self.registry.forget_idle_requesters();
    }
}
