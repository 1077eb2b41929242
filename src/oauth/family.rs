//! The refresh families of every tenant: a family is one login and every refresh token it
//! led to. Revoking one refuses all of its tokens; its lock lets one rotation at a time use
//! the login's IdP refresh token in this process (a shared store adds leases, `token/refresh.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::records::{Family, FamilyId};
use crate::domain::TenantId;
use crate::store::{Records, StoreError};

pub(crate) struct Families {
    records: Records,
    /// One lock per family being rotated, so that parallel refreshes of one client do not race
    /// to the IdP with the same upstream refresh token.
    locks: Mutex<HashMap<FamilyId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Families {
    pub(crate) fn new(records: Records) -> Self {
        Self {
            records,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Marks a family revoked; every token of it is refused from then on. `cause` says why in
    /// the audit event (`refresh_reuse`, `code_replay`, `code_race`, `idp_refused`,
    /// `client_revoked`, `admin`, `idp_subject_changed`). By tenant id: also for a tenant
    /// whose file was removed.
    pub(crate) async fn revoke(
        &self,
        tenant: &TenantId,
        family_id: &FamilyId,
        cause: &'static str,
        now: u64,
    ) -> Result<(), StoreError> {
        loop {
            let Some(f) = self.records.get::<Family>(tenant, family_id, now).await? else {
                return Ok(());
            };
            if f.value.revoked {
                // Revoked by another request that may not have flushed yet.
                self.records.flush().await?;
                return Ok(());
            }
            let mut value = f.value;
            value.revoked = true;
            if self
                .records
                .update(tenant, family_id, f.revision, &value, f.expires_at)
                .await?
            {
                crate::metrics::metrics()
                    .family_revocations
                    .with_label_values(&[tenant.as_str()])
                    .inc();
                tracing::info!(target: "audit", event = "refresh_family_revoked", tenant = %tenant, client_id = %value.client_id,
                    user = value.subject.as_deref().unwrap_or(""), cause);
                return Ok(());
            }
        }
    }

    /// The lock of one family's rotation in this process (forgotten once nobody holds it).
    pub(crate) fn lock(&self, family_id: &FamilyId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(family_id.clone()).or_default().clone()
    }
}
