//! The tenant set being served and everything built from it, as one value a reload replaces
//! whole (`reload.rs`): the tenants, each tenant's registration limits and metadata documents,
//! its CIMD resolver, and the IdP caller with the apps' credentials. The HTTP layer, the client
//! registry and the IdP calls all read the generation in force; a reload is one store.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::cimd::CimdResolver;
use super::metadata::authorization_server_metadata;
use crate::config::Tenant;
use crate::config::gateway::{GatewayConfig, Routing};
use crate::domain::TenantId;
use crate::upstream::tokens::UpstreamClient;

/// What a reload hands over: the tenants, and the resolvers and the IdP caller made for them
/// (with those of the tenants it removed, kept for the requests still under way).
pub(crate) struct GenerationParts {
    pub(crate) tenants: Vec<Arc<Tenant>>,
    /// The server's public URL, which says how gateway resources are routed.
    pub(crate) public_url: url::Url,
    pub(crate) resolvers: HashMap<TenantId, Arc<CimdResolver>>,
    pub(crate) upstream: UpstreamClient,
}

/// One reading of the tenant files with what was built from it.
struct Generation {
    /// In file-name order.
    tenants: Vec<Arc<Tenant>>,
    by_id: HashMap<String, Arc<Tenant>>,
    registration_limits: HashMap<TenantId, Arc<KeyedLimit>>,
    /// Each tenant's ceiling on registrations per minute, whatever their sources.
    tenant_registration_limits: HashMap<TenantId, Arc<DirectLimit>>,
    /// Each tenant's metadata document, serialized once: without and with refresh tokens.
    metadata_documents: HashMap<String, [Bytes; 2]>,
    resolvers: HashMap<TenantId, Arc<CimdResolver>>,
    upstream: Arc<UpstreamClient>,
    /// The gateway resources by route: their tenant and their index in its resources.
    gateway_routes: HashMap<Routing, (Arc<Tenant>, usize)>,
    /// Whether a gateway resource has a host of its own.
    has_gateway_hosts: bool,
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

impl Generation {
    fn new(parts: GenerationParts, previous: Option<&Generation>) -> Self {
        let GenerationParts {
            tenants,
            public_url,
            resolvers,
            upstream,
        } = parts;
        let gateway_routes: HashMap<Routing, (Arc<Tenant>, usize)> = tenants
            .iter()
            .flat_map(|t| {
                t.resources().iter().enumerate().filter_map(|(i, r)| {
                    r.gateway.as_ref()?;
                    let routing = GatewayConfig::routing(&r.uri, &public_url)?;
                    Some((routing, (t.clone(), i)))
                })
            })
            .collect();
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
                    Bytes::from(
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
            resolvers,
            upstream: Arc::new(upstream),
            has_gateway_hosts: gateway_routes.keys().any(|r| matches!(r, Routing::Host(_))),
            gateway_routes,
        }
    }
}

/// The generation in force.
pub(crate) struct Serving {
    current: ArcSwap<Generation>,
}

impl Serving {
    pub(crate) fn new(parts: GenerationParts) -> Self {
        Self {
            current: ArcSwap::from_pointee(Generation::new(parts, None)),
        }
    }

    /// Serves `parts` from now on, in one step (a reload). Requests under way finish with
    /// what they hold; limits whose quota did not change are kept with what was spent.
    pub(crate) fn install(&self, parts: GenerationParts) {
        let next = Generation::new(parts, Some(&self.current.load()));
        self.current.store(Arc::new(next));
    }

    /// Every tenant, in file-name order.
    pub(crate) fn tenants(&self) -> Vec<Arc<Tenant>> {
        self.current.load().tenants.clone()
    }

    /// The tenant named by a path segment, if there is one.
    pub(crate) fn tenant(&self, segment: &str) -> Option<Arc<Tenant>> {
        self.current.load().by_id.get(segment).cloned()
    }

    /// The CIMD resolver of `tenant`.
    pub(crate) fn resolver(&self, tenant: &TenantId) -> Option<Arc<CimdResolver>> {
        self.current.load().resolvers.get(tenant).cloned()
    }

    /// The resolvers in use, by tenant (a reload keeps those whose settings did not change).
    pub(crate) fn resolvers(&self) -> HashMap<TenantId, Arc<CimdResolver>> {
        self.current.load().resolvers.clone()
    }

    /// The gateway resource served at `path` on this server's host (path routing), with or
    /// without a trailing slash, as on a resource's own host: its tenant and its index among
    /// the tenant's resources.
    pub(crate) fn gateway_at_path(&self, path: &str) -> Option<(Arc<Tenant>, usize)> {
        let generation = self.current.load();
        if generation.gateway_routes.is_empty() {
            return None;
        }
        generation
            .gateway_routes
            .get(&Routing::Path(path.trim_end_matches('/').to_owned()))
            .cloned()
    }

    /// The gateway resource served on its own host `authority` (host routing).
    pub(crate) fn gateway_at_host(&self, authority: &str) -> Option<(Arc<Tenant>, usize)> {
        self.current
            .load()
            .gateway_routes
            .get(&Routing::Host(authority.to_ascii_lowercase()))
            .cloned()
    }

    /// Whether any gateway resource has a host of its own (most requests need no lookup).
    pub(crate) fn has_gateway_hosts(&self) -> bool {
        self.current.load().has_gateway_hosts
    }

    /// The IdP caller with the apps' credentials.
    pub(crate) fn upstream(&self) -> Arc<UpstreamClient> {
        self.current.load().upstream.clone()
    }

    /// The serialized metadata document of `tenant` (RFC 8414), with or without refresh
    /// tokens.
    pub(crate) fn metadata_document(
        &self,
        tenant: &TenantId,
        offers_refresh: bool,
    ) -> Option<Bytes> {
        self.current
            .load()
            .metadata_documents
            .get(tenant.as_str())
            .map(|docs| docs[usize::from(offers_refresh)].clone())
    }

    /// Whether the tenant's ceiling on registrations per minute, counted over every source,
    /// leaves room for one more.
    pub(crate) fn allow_tenant_registration(&self, tenant: &TenantId) -> bool {
        self.current
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
        self.current
            .load()
            .registration_limits
            .get(tenant)
            .is_none_or(|l| l.limiter.check_key(&key).is_ok())
    }

    /// Forgets the registration and document-fetch budgets of quiet sources (the sweeper
    /// calls this).
    pub(crate) fn forget_idle(&self) {
        let current = self.current.load();
        for limit in current.registration_limits.values() {
            limit.limiter.retain_recent();
        }
        for resolver in current.resolvers.values() {
            resolver.forget_idle_requesters();
        }
    }
}
