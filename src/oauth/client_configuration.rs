//! The client configuration endpoint (RFC 7592): a registered client reads, updates and
//! deletes its own registration at its `registration_client_uri`, with the registration access
//! token it was given at registration. An update is validated like a registration and maps the
//! client onto an app again; a deletion revokes the client's grants.

use serde_json::Value;

use super::client_metadata::{MetadataOrigin, validate_client_metadata};
use super::error::{ErrorCode, OAuthError};
use super::grants::{AdminError, GrantFilter};
use super::mapping::{ClientFacts, choose_apps};
use super::registration::client_information;

use std::sync::Arc;

use super::grants::Grants;
use super::registration::ClientRegistry;
use crate::config::Tenant;
use crate::crypto::Handle;
use crate::domain::client::describe_apps;
use crate::domain::{ClientId, ClientMetadata, ClientRecord};
use crate::store::Records;
use crate::store::Versioned;

/// RFC 7592 §2: an unknown client and a wrong token get the same answer, so that the endpoint
/// does not tell which client ids exist.
fn invalid_token() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidToken,
        "the registration access token is missing, wrong, or not this client's",
    )
}

/// Client configuration (RFC 7592): a registered client reads, replaces or deletes its own
/// registration with its registration access token.
pub(crate) struct ClientConfiguration {
    records: Records,
    registry: ClientRegistry,
    /// A deleted client's grants are revoked.
    grants: Arc<Grants>,
}

impl ClientConfiguration {
    pub(crate) fn new(records: Records, registry: ClientRegistry, grants: Arc<Grants>) -> Self {
        Self {
            records,
            registry,
            grants,
        }
    }

    /// The client, if `token` is its registration access token (compared by hash, in constant
    /// time).
    async fn configured_client(
        &self,
        tenant: &Tenant,
        client_id: &str,
        token: Option<&str>,
        now: u64,
    ) -> Result<Versioned<ClientRecord>, OAuthError> {
        let token = token.ok_or_else(invalid_token)?;
        if client_id.is_empty() || client_id.len() > 64 {
            return Err(invalid_token());
        }
        let found = self
            .records
            .get::<ClientRecord>(&tenant.id, &ClientId::new(client_id), now)
            .await?
            .ok_or_else(invalid_token)?;
        match &found.value.registration_token_sha256 {
            Some(hash) if hash.matches(&Handle::presented(token)) => Ok(found),
            _ => Err(invalid_token()),
        }
    }

    /// RFC 7592 §2.1: the client's current registration.
    pub(crate) async fn read_registration(
        &self,
        tenant: &Tenant,
        client_id: &str,
        token: Option<&str>,
        now: u64,
    ) -> Result<Value, OAuthError> {
        let client = self
            .configured_client(tenant, client_id, token, now)
            .await?;
        Ok(client_information(tenant, &client.value, None, None))
    }

    /// RFC 7592 §2.2: replaces the client's metadata (validated like a registration; the body
    /// must name the client, and may not change its secret); maps it onto an app again.
    pub(crate) async fn update_registration(
        &self,
        tenant: &Tenant,
        client_id: &str,
        token: Option<&str>,
        body: &Value,
        now: u64,
    ) -> Result<Value, OAuthError> {
        let current = self
            .configured_client(tenant, client_id, token, now)
            .await?;
        let metadata = updated_metadata(&current.value, body)?;
        let mut client = current.value.clone();
        let old_metadata = &current.value.metadata;
        // The rules choose again, except where an operator chose (pinned).
        let mut apps = choose_apps(tenant, &ClientFacts::of(&metadata, None));
        for (resource, app) in &current.value.apps {
            if client.pinned.contains(resource) {
                apps.insert(resource.clone(), app.clone());
            }
        }
        let old_apps = std::mem::replace(&mut client.apps, apps);
        // A redirect URI the browser never saw: every approval given before is dropped.
        let adds_redirect = metadata
            .redirect_uris
            .iter()
            .any(|u| !current.value.metadata.redirect_uris.contains(u));
        if adds_redirect {
            client.approval_epoch += 1;
        }
        let (approval_reset, stale_request) = self
            .approval_after_update(tenant, &client, old_metadata, &metadata, adds_redirect, now)
            .await?;
        if approval_reset {
            client.approval = crate::domain::ApprovalStatus::Pending;
        }
        client.metadata = metadata;
        if !self
            .records
            .update(
                &tenant.id,
                &client.client_id,
                current.revision,
                &client,
                current.expires_at,
            )
            .await?
        {
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the registration changed while it was being updated; try again",
            ));
        }
        tracing::info!(target: "audit", event = "client_updated", tenant = %tenant.id, client_id = %client.client_id,
            old_apps = %describe_apps(&old_apps), apps = %describe_apps(&client.apps), redirect_uris_added = adds_redirect,
            approval_reset);
        if stale_request {
            self.registry
                .approvals()
                .forget_client(tenant, &client.client_id, "the client changed", now)
                .await;
        }
        Ok(client_information(tenant, &client, None, None))
    }

    /// What an administrator approved (or is asked to approve) is what the client looked
    /// like: one that now sends sign-ins elsewhere, maps onto other apps (under the rules as
    /// they are now, so that an operator's edit of the rules resets nobody), calls itself
    /// something else or asks for grants it did not have waits for an administrator again,
    /// where approval is asked of it (not for `software_version`: it changes with every
    /// release of the same software); nor may it take on the look of a client an
    /// administrator denied. Returns whether its approval is reset, and whether a request it
    /// made while waiting is stale (it showed what the client was).
    async fn approval_after_update(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        old: &ClientMetadata,
        new: &ClientMetadata,
        adds_redirect: bool,
        now: u64,
    ) -> Result<(bool, bool), OAuthError> {
        use crate::domain::ApprovalStatus;
        let rules_old = choose_apps(tenant, &ClientFacts::of(old, None));
        let rules_new = choose_apps(tenant, &ClientFacts::of(new, None));
        let looks_different = adds_redirect
            || rules_old != rules_new
            || new.client_name != old.client_name
            || new.software_id != old.software_id
            || new.grant_types.iter().any(|g| !old.grant_types.contains(g));
        if !looks_different {
            return Ok((false, false));
        }
        if let Some(denied) = self
            .registry
            .approvals()
            .denied_like(tenant, new, now)
            .await?
            && denied.client_id != client.client_id.as_str()
        {
            return Err(OAuthError::invalid_client_metadata(
                "an administrator of this server denied an application registered with this client_name, software_id and redirect_uris; ask an administrator",
            ));
        }
        let requires =
            super::approval::policy::approval_required(tenant, &ClientFacts::of(new, None));
        let reset = client.approval == ApprovalStatus::Approved && requires;
        let stale = client.approval == ApprovalStatus::Pending;
        Ok((reset, stale))
    }

    /// RFC 7592 §2.3: deletes the registration and revokes the client's grants.
    pub(crate) async fn delete_registration(
        &self,
        tenant: &Tenant,
        client_id: &str,
        token: Option<&str>,
        now: u64,
    ) -> Result<(), OAuthError> {
        let client = self
            .configured_client(tenant, client_id, token, now)
            .await?;
        let id = client.value.client_id;
        self.records.remove::<ClientRecord>(&tenant.id, &id).await?;
        // Its approval request, if any, stays until it is decided (then removed) or expires:
        // it still counts against the user who asked, so a client cannot ask, delete itself
        // and ask again without end.
        self.grants.revoke_grants(&tenant.id, &GrantFilter::Client(id.clone()), now)
            .await
            .map_err(|e| match e {
                // Logged there, and an unreachable store stays a 503.
                AdminError::Store(e) => OAuthError::from(e),
                other => {
                    tracing::error!(tenant = %tenant.id, client_id = %id, error = %other, "the deleted client's grants were not revoked");
                    OAuthError::server_error()
                }
            })?;
        tracing::info!(target: "audit", event = "client_deleted", tenant = %tenant.id, client_id = %id, by = "client");
        Ok(())
    }
}
/// The metadata an update's body gives `current` (RFC 7592 §2.2): validated like a
/// registration's; the body names the client and nothing the server sets, and keeps the
/// client public or confidential as it was.
fn updated_metadata(current: &ClientRecord, body: &Value) -> Result<ClientMetadata, OAuthError> {
    let Value::Object(raw) = body else {
        return Err(OAuthError::invalid_client_metadata(
            "the request body must be a JSON object of client metadata (RFC 7592 §2.2)",
        ));
    };
    if raw.get("client_id").and_then(Value::as_str) != Some(current.client_id.as_str()) {
        return Err(OAuthError::invalid_request(
            "client_id: the body must name the client being updated (RFC 7592 §2.2)",
        ));
    }
    for field in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ] {
        if raw.contains_key(field) {
            return Err(OAuthError::invalid_request(format!(
                "{field}: is set by the server and must not be sent (RFC 7592 §2.2)"
            )));
        }
    }
    let mut metadata = validate_client_metadata(raw, MetadataOrigin::Registration)?;
    let was_confidential = current.secret_sha256.is_some();
    if metadata.token_endpoint_auth_method.is_confidential() != was_confidential {
        return Err(OAuthError::invalid_client_metadata(
            "token_endpoint_auth_method: a client cannot switch between public and confidential; register a new client instead",
        ));
    }
    if !raw.contains_key("token_endpoint_auth_method") {
        metadata.token_endpoint_auth_method = current.metadata.token_endpoint_auth_method;
    }
    Ok(metadata)
}
