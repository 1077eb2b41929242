//! The built-in development IdP (`upstream.kind = "dev"`), all in one place: the IdP itself
//! (`idp.rs`), its pages and endpoints (`routes.rs`), its enterprise-IdP side for
//! Enterprise-Managed Authorization (`enterprise.rs`), and setting it up at start (here). The
//! shim reaches it only through `crate::upstream::tokens::InProcessIdp` and the routes it
//! registers, so the rest of the code treats it like any other IdP.

mod enterprise;
pub(crate) mod idp;
mod routes;

/// A user name the dev IdP accepts: 1 to 64 letters, digits or `._@-`.
pub(crate) fn is_valid_user_name(user: &str) -> bool {
    (1..=64).contains(&user.len())
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
}

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Tenant;
use crate::domain::TenantId;
use crate::upstream::provider::Provider;
use crate::upstream::tokens::InProcessIdp;

pub(crate) use idp::{DevIdp, DevKey};
pub(crate) use routes::configure;

/// The dev IdP of every `dev` tenant. The set is replaced whole when the tenant files are
/// reloaded; a dev IdP whose tenant keeps its issuer is carried over, with the codes it has
/// issued, so that a login in flight finishes.
#[derive(Clone, Default)]
pub(crate) struct DevIdps(Arc<ArcSwap<HashMap<TenantId, Arc<DevIdp>>>>);

impl DevIdps {
    /// The dev IdPs `tenants` need, without installing them: the signing key is loaded from
    /// (or created in) `data_dir` only when there is one. Refused when the server listens
    /// beyond loopback, since the dev IdP logs anyone in, unless `any_interface` says only the
    /// host's loopback can reach the port (a container published on 127.0.0.1).
    pub(crate) fn prepare(
        &self,
        tenants: &[Arc<Tenant>],
        listen: SocketAddr,
        any_interface: bool,
        data_dir: &Path,
    ) -> Result<HashMap<TenantId, Arc<DevIdp>>, String> {
        let dev: Vec<_> = tenants
            .iter()
            .filter(|t| Provider::of(t).is_built_in())
            .collect();
        for t in &dev {
            if Provider::of(t).refuses_listener(listen.ip().is_loopback()) && !any_interface {
                return Err(format!(
                    "tenant {} uses the built-in dev IdP, which logs anyone in, but the server listens on {listen}, which is reachable from other hosts; listen on 127.0.0.1, or pass --dev-idp-any-interface when only the host's loopback can reach this port (a container published on 127.0.0.1)",
                    t.id
                ));
            }
        }
        let mut idps = HashMap::new();
        if !dev.is_empty() {
            let current = self.0.load();
            let key = DevKey::load_or_create(data_dir)?;
            for t in dev {
                let idp = match current.get(&t.id) {
                    Some(old) if old.issuer == DevIdp::issuer_of(t) => {
                        DevIdp::new(t, &key)?.with_codes_of(old)
                    }
                    _ => DevIdp::new(t, &key)?,
                };
                idps.insert(t.id.clone(), Arc::new(idp));
            }
        }
        Ok(idps)
    }

    /// The dev IdPs that answer now, by tenant.
    pub(crate) fn current(&self) -> HashMap<TenantId, Arc<DevIdp>> {
        self.0.load().as_ref().clone()
    }

    /// Makes `set` (from `prepare`) the dev IdPs that answer.
    pub(crate) fn install(&self, set: HashMap<TenantId, Arc<DevIdp>>) {
        self.0.store(Arc::new(set));
    }

    /// The tenant's dev IdP, by the path segment that names the tenant.
    pub(crate) fn get(&self, tenant: &str) -> Option<Arc<DevIdp>> {
        let id = TenantId::parse(tenant).ok()?;
        self.0.load().get(&id).cloned()
    }

    /// The dev IdPs of `set` as the upstream client calls them.
    pub(crate) fn in_process(
        set: &HashMap<TenantId, Arc<DevIdp>>,
    ) -> HashMap<TenantId, Arc<dyn InProcessIdp>> {
        set.iter()
            .map(|(t, idp)| (t.clone(), idp.clone() as Arc<dyn InProcessIdp>))
            .collect()
    }
}
