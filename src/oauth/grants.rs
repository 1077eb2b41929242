//! What an operator may do to clients and grants while the server runs (the admin API's
//! protocol side): list registered clients, delete one (its grants go with it), map it onto
//! another app; list refresh families by client or user, revoke one, all of a client or all of
//! a user. A revoked family refuses its next refresh at once.

use serde::Serialize;

use super::family_index::visit_families;
use super::records::{Family, FamilyId};
use super::registration::ClientRegistry;
use std::sync::Arc;

use super::family::Families;
use crate::config::Tenant;
use crate::domain::{ClientId, ClientRecord, TenantId};
use crate::store::Records;
use crate::store::StoreError;

pub(crate) use super::family_index::GrantFilter;

/// One grant as the operator sees it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GrantSummary {
    pub(crate) id: String,
    pub(crate) client_id: ClientId,
    pub(crate) user: Option<String>,
    pub(crate) created_at: u64,
    pub(crate) revoked: bool,
    /// How it was granted: `login` (the browser, at the shim and the upstream IdP) or
    /// `id-jag` (an enterprise IdP's assertion, `issuer` naming it).
    pub(crate) kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) issuer: Option<String>,
}

/// A family as the operator sees it.
fn summary(id: FamilyId, f: crate::store::Versioned<Family>) -> GrantSummary {
    GrantSummary {
        id: id.to_string(),
        client_id: f.value.client_id,
        user: f.value.subject,
        created_at: f.value.created_at,
        revoked: f.value.revoked,
        kind: if f.value.issuer.is_some() {
            "id-jag"
        } else {
            "login"
        },
        issuer: f.value.issuer,
    }
}

pub(crate) use super::admin_error::AdminError;

/// The grants (refresh families) of a tenant as an operator sees them: listed, counted and
/// revoked, by client, by user or one by one; and a client deleted with its grants.
pub(crate) struct Grants {
    records: Records,
    registry: ClientRegistry,
    families: Arc<Families>,
}

impl Grants {
    pub(crate) fn new(records: Records, registry: ClientRegistry, families: Arc<Families>) -> Self {
        Self {
            records,
            registry,
            families,
        }
    }

    /// The tenant's grants that match `filter`, oldest first: every one of them (a listing
    /// caps what it shows itself, and says so).
    pub(crate) async fn grants(
        &self,
        tenant: &TenantId,
        filter: &GrantFilter,
        now: u64,
    ) -> Result<Vec<GrantSummary>, StoreError> {
        let mut out = Vec::new();
        visit_families(&self.records, tenant, filter, now, |id, f| {
            out.push(summary(id, f));
        })
        .await?;
        out.sort_by_key(|g| g.created_at);
        Ok(out)
    }

    /// The `limit` oldest grants that match `filter`, oldest first, and how many match in all:
    /// every grant is examined, but only `limit` are held at once.
    pub(crate) async fn grants_page(
        &self,
        tenant: &TenantId,
        filter: &GrantFilter,
        limit: usize,
        now: u64,
    ) -> Result<(Vec<GrantSummary>, usize), StoreError> {
        use std::collections::BinaryHeap;
        // A max-heap on (created_at, id): its top is the newest of the oldest `limit`.
        let mut oldest: BinaryHeap<(u64, String, GrantSummary)> = BinaryHeap::new();
        let mut total = 0;
        visit_families(&self.records, tenant, filter, now, |id, f| {
            total += 1;
            let created = f.value.created_at;
            if oldest.len() == limit && oldest.peek().is_some_and(|top| top.0 <= created) {
                return;
            }
            oldest.push((created, id.to_string(), summary(id, f)));
            if oldest.len() > limit {
                oldest.pop();
            }
        })
        .await?;
        let mut page: Vec<GrantSummary> = oldest.into_iter().map(|(_, _, g)| g).collect();
        page.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok((page, total))
    }

    /// How many live, unrevoked grants match `filter`.
    pub(crate) async fn count_live_grants(
        &self,
        tenant: &TenantId,
        filter: &GrantFilter,
        now: u64,
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        visit_families(&self.records, tenant, filter, now, |_, f| {
            n += usize::from(!f.value.revoked);
        })
        .await?;
        Ok(n)
    }

    /// Revokes one grant; `UnknownGrant` when there is none with that id.
    pub(crate) async fn revoke_grant(
        &self,
        tenant: &TenantId,
        id: &str,
        now: u64,
    ) -> Result<(), AdminError> {
        let family_id = FamilyId::from_admin(id);
        if self
            .records
            .get::<Family>(tenant, &family_id, now)
            .await?
            .is_none()
        {
            return Err(AdminError::UnknownGrant);
        }
        Ok(self
            .families
            .revoke(tenant, &family_id, "admin", now)
            .await?)
    }

    /// Revokes every live grant that matches `filter`; returns how many were revoked. Every
    /// matching grant is examined (`family_index.rs`); a store error ends it with that error,
    /// never with a count of part of them.
    pub(crate) async fn revoke_grants(
        &self,
        tenant: &TenantId,
        filter: &GrantFilter,
        now: u64,
    ) -> Result<usize, AdminError> {
        let mut live = Vec::new();
        visit_families(&self.records, tenant, filter, now, |id, f| {
            if !f.value.revoked {
                live.push(id);
            }
        })
        .await?;
        for id in &live {
            self.families.revoke(tenant, id, "admin", now).await?;
        }
        Ok(live.len())
    }

    /// Deletes a registered client and revokes its grants; returns how many were revoked.
    pub(crate) async fn delete_client(
        &self,
        tenant: &Tenant,
        client_id: &ClientId,
        now: u64,
    ) -> Result<usize, AdminError> {
        if !self.registry.remove(tenant, client_id).await? {
            return Err(AdminError::UnknownClient);
        }
        self.registry
            .approvals()
            .forget_client(
                tenant,
                client_id,
                "an administrator deleted the client",
                now,
            )
            .await;
        self.revoke_grants(&tenant.id, &GrantFilter::Client(client_id.clone()), now)
            .await
    }
}

/// One listing of clients: up to its limit, and how many match (counted up to
/// `CLIENTS_COUNTED_BEYOND` past the limit, so that a listing costs what it shows).
#[derive(Default)]
pub(crate) struct ClientPage {
    pub(crate) clients: Vec<ClientRecord>,
    pub(crate) total: usize,
    /// `false` when counting stopped: at least `total` match.
    pub(crate) total_exact: bool,
}

/// How many matches past its limit a client listing counts before it stops.
pub(crate) const CLIENTS_COUNTED_BEYOND: usize = 10_000;

/// Which clients a listing shows.
#[derive(Default)]
pub(crate) struct ClientFilter<'a> {
    /// Mapped onto this app (for some resource).
    pub(crate) app: Option<&'a str>,
    /// Whose `client_name` holds this text, in any case.
    pub(crate) name: Option<&'a str>,
}

impl ClientFilter<'_> {
    fn matches(&self, client: &ClientRecord) -> bool {
        self.app
            .is_none_or(|a| client.apps.values().any(|mapped| mapped == a))
            && self.name.is_none_or(|wanted| {
                client
                    .metadata
                    .client_name
                    .as_deref()
                    .is_some_and(|name| name.to_lowercase().contains(&wanted.to_lowercase()))
            })
    }
}

impl ClientRegistry {
    /// Registered clients of `tenant` that `filter` matches, up to `limit`, and how many match:
    /// the namespace is walked from its start, so a client is never missed because of where it
    /// sits in the store, until `CLIENTS_COUNTED_BEYOND` more than `limit` have matched.
    pub(crate) async fn list(
        &self,
        tenant: &Tenant,
        filter: &ClientFilter<'_>,
        limit: usize,
        now: u64,
    ) -> Result<ClientPage, StoreError> {
        let mut page = ClientPage {
            total_exact: true,
            ..ClientPage::default()
        };
        let enough = limit.saturating_add(CLIENTS_COUNTED_BEYOND);
        self.records()
            .walk::<ClientRecord>(&tenant.id, "", now, |_, v| {
                if filter.matches(&v.value) {
                    if page.total == enough {
                        page.total_exact = false;
                        return Ok(false);
                    }
                    page.total += 1;
                    if page.clients.len() < limit {
                        page.clients.push(v.value);
                    }
                }
                Ok(true)
            })
            .await?;
        Ok(page)
    }

    /// The `client_name` of each registered client in `ids` that has one (for listings that
    /// name clients by id: a user's grants).
    pub(crate) async fn names(
        &self,
        tenant: &TenantId,
        ids: impl IntoIterator<Item = &ClientId>,
        now: u64,
    ) -> Result<std::collections::HashMap<ClientId, String>, StoreError> {
        let mut names = std::collections::HashMap::new();
        for id in ids {
            if names.contains_key(id) {
                continue;
            }
            if let Some(name) = self
                .records()
                .get::<ClientRecord>(tenant, id, now)
                .await?
                .and_then(|c| c.value.metadata.client_name)
            {
                names.insert(id.clone(), name);
            }
        }
        Ok(names)
    }

    /// Removes a registered client; `false` when there was none.
    pub(crate) async fn remove(
        &self,
        tenant: &Tenant,
        client_id: &ClientId,
    ) -> Result<bool, StoreError> {
        self.records()
            .remove::<ClientRecord>(&tenant.id, client_id)
            .await
    }

    /// Maps a registered client onto `app` for `resource` (every resource when `None`).
    pub(crate) async fn remap(
        &self,
        tenant: &Tenant,
        client_id: &ClientId,
        resource: Option<&str>,
        app: &str,
        now: u64,
    ) -> Result<ClientRecord, AdminError> {
        if !tenant.apps().iter().any(|a| a.name == app) {
            return Err(AdminError::UnknownApp(app.to_owned()));
        }
        let resource = match resource {
            Some(uri) => Some(
                tenant
                    .resource(uri)
                    .map(|r| r.uri.to_string())
                    .ok_or_else(|| AdminError::UnknownResource(uri.to_owned()))?,
            ),
            None => None,
        };
        let current = self
            .records()
            .get::<ClientRecord>(&tenant.id, client_id, now)
            .await?
            .ok_or(AdminError::UnknownClient)?;
        let mut client = current.value;
        for (uri, mapped) in client.apps.iter_mut() {
            if resource.as_deref().is_none_or(|r| r == uri) {
                *mapped = app.to_owned();
                // An operator's choice: the client's own updates keep it.
                client.pinned.insert(uri.clone());
            }
        }
        if !self
            .records()
            .update(
                &tenant.id,
                client_id,
                current.revision,
                &client,
                current.expires_at,
            )
            .await?
        {
            return Err(AdminError::Conflict);
        }
        Ok(client)
    }
}
