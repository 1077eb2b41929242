//! What an operator may do to clients and grants while the server runs (the admin API's
//! protocol side): list registered clients, delete one (its grants go with it), map it onto
//! another app; list refresh families by client or user, revoke one, all of a client or all of
//! a user. A revoked family refuses its next refresh at once.

use serde::Serialize;

use super::records::{Family, FamilyId};
use super::registration::ClientRegistry;
use super::server::AuthServer;
use crate::config::Tenant;
use crate::domain::{ClientId, ClientRecord};
use crate::store::StoreError;

/// Most records one listing or bulk revocation examines.
pub(crate) const MAX_SCAN: usize = 100_000;

/// Which grants an operation is about.
#[derive(Clone, Debug)]
pub(crate) enum GrantFilter {
    All,
    Client(ClientId),
    /// The user's subject at the IdP (Entra `oid`, else `sub`).
    User(String),
}

impl GrantFilter {
    fn matches(&self, family: &Family) -> bool {
        match self {
            Self::All => true,
            Self::Client(id) => family.client_id == *id,
            Self::User(subject) => family.subject.as_deref() == Some(subject.as_str()),
        }
    }
}

/// One grant as the operator sees it.
#[derive(Clone, Debug, Serialize)]
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

/// Why an operator's change was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    #[error("no such client in this tenant")]
    UnknownClient,
    #[error("no such grant in this tenant")]
    UnknownGrant,
    #[error("no app named '{0}' in this tenant")]
    UnknownApp(String),
    #[error("no resource '{0}' in this tenant")]
    UnknownResource(String),
    #[error("the client changed while it was being updated; try again")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthServer {
    /// The tenant's grants that match `filter`, oldest first.
    pub(crate) async fn grants(
        &self,
        tenant: &Tenant,
        filter: &GrantFilter,
        now: u64,
    ) -> Result<Vec<GrantSummary>, StoreError> {
        let mut out: Vec<GrantSummary> = self
            .records
            .list_with_ids::<Family>(&tenant.id, now, MAX_SCAN)
            .await?
            .into_iter()
            .filter(|(_, f)| filter.matches(&f.value))
            .map(|(id, f)| GrantSummary {
                id,
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
            })
            .collect();
        out.sort_by_key(|g| g.created_at);
        Ok(out)
    }

    /// Revokes one grant; `false` when there is none with that id.
    pub(crate) async fn revoke_grant(
        &self,
        tenant: &Tenant,
        id: &str,
        now: u64,
    ) -> Result<(), AdminError> {
        let family_id = FamilyId::from_admin(id);
        if self
            .records
            .get::<Family>(&tenant.id, &family_id, now)
            .await?
            .is_none()
        {
            return Err(AdminError::UnknownGrant);
        }
        Ok(self.revoke_family(tenant, &family_id, "admin", now).await?)
    }

    /// Revokes every live grant that matches `filter`; returns how many were revoked.
    pub(crate) async fn revoke_grants(
        &self,
        tenant: &Tenant,
        filter: &GrantFilter,
        now: u64,
    ) -> Result<usize, AdminError> {
        let mut revoked = 0;
        for grant in self.grants(tenant, filter, now).await? {
            if !grant.revoked {
                self.revoke_grant(tenant, &grant.id, now).await?;
                revoked += 1;
            }
        }
        Ok(revoked)
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
        self.revoke_grants(tenant, &GrantFilter::Client(client_id.clone()), now)
            .await
    }
}

impl ClientRegistry {
    /// Registered clients of `tenant` (optionally those mapped onto `app`), up to `limit`.
    pub(crate) async fn list(
        &self,
        tenant: &Tenant,
        app: Option<&str>,
        limit: usize,
        now: u64,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        Ok(self
            .records()
            .list::<ClientRecord>(&tenant.id, now, MAX_SCAN)
            .await?
            .into_iter()
            .map(|v| v.value)
            .filter(|c| app.is_none_or(|a| c.apps.values().any(|mapped| mapped == a)))
            .take(limit)
            .collect())
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
        if !tenant.config.apps.iter().any(|a| a.name == app) {
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
