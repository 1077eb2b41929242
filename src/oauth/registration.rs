//! Dynamic Client Registration (RFC 7591 §3): metadata in, a stored client and its one-time
//! secret out. `ClientRegistry` also finds clients again: registered ones from the store,
//! document ones through the tenant's `CimdResolver`.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::cimd::{CimdResolver, KeysOf, is_document_client_id};
use super::client_metadata::{MetadataOrigin, validate_client_metadata};
use super::context::{Caller, RequestCtx};
use super::error::{ErrorCode, OAuthError};
use super::mapping::{ClientFacts, choose_apps};
use super::serving::Serving;
use crate::config::Tenant;
use crate::config::trusted_issuer::AssertionIssuer;
use crate::crypto::Handle;
use crate::domain::{ClientId, ClientRecord, ClientSource, TenantId};
use crate::store::{Record, Records, StoreError, Versioned};

impl Record for ClientRecord {
    const NAMESPACE: crate::store::Namespace = crate::store::Namespace::Client;
    const SCHEMA: u16 = 1;
    type Id = ClientId;
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        match e {
            StoreError::Unavailable(_) => OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the server cannot reach its store right now; try again shortly",
            ),
            _ => OAuthError::server_error(),
        }
    }
}

/// A client just registered, with the secret and registration access token to hand out once.
pub struct Registered {
    pub record: ClientRecord,
    pub(crate) client_secret: Option<Handle>,
    pub(crate) registration_access_token: Option<Handle>,
}

/// Where a registered client reads, updates and deletes its registration (RFC 7592 §3).
pub(crate) fn registration_client_uri(tenant: &Tenant, client_id: &ClientId) -> String {
    format!("{}/register/{client_id}", tenant.issuer)
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3): the metadata, the client
/// id, and the values handed out now (a secret or token is never shown again).
pub(crate) fn client_information(
    tenant: &Tenant,
    record: &ClientRecord,
    client_secret: Option<&Handle>,
    registration_access_token: Option<&Handle>,
) -> Value {
    let mut body = match serde_json::to_value(&record.metadata) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    body.insert("client_id".into(), record.client_id.as_str().into());
    body.insert("client_id_issued_at".into(), record.issued_at.into());
    if let Some(secret) = client_secret {
        body.insert("client_secret".into(), secret.expose().into());
        body.insert("client_secret_expires_at".into(), 0.into());
    }
    if let Some(token) = registration_access_token {
        body.insert("registration_access_token".into(), token.expose().into());
    }
    body.insert(
        "registration_client_uri".into(),
        registration_client_uri(tenant, &record.client_id).into(),
    );
    Value::Object(body)
}

impl Registered {
    /// The RFC 7591 §3.2.1 response body.
    pub(crate) fn response_body(&self, tenant: &Tenant) -> Value {
        client_information(
            tenant,
            &self.record,
            self.client_secret.as_ref(),
            self.registration_access_token.as_ref(),
        )
    }
}

/// Registered and document clients of every tenant.
#[derive(Clone)]
pub struct ClientRegistry {
    records: Records,
    /// The approval queue and decisions (`approval/`).
    approvals: Arc<super::approval::Approvals>,
    /// The tenant set in force, with each tenant's CIMD resolver.
    serving: Arc<Serving>,
}

impl ClientRegistry {
    pub(crate) fn new(records: Records, serving: Arc<Serving>) -> Self {
        Self {
            approvals: Arc::new(super::approval::Approvals::new(records.clone())),
            records,
            serving,
        }
    }

    /// The approval queue and the administrators' decisions.
    pub fn approvals(&self) -> &super::approval::Approvals {
        &self.approvals
    }

    fn resolver(&self, tenant: &TenantId) -> Result<Arc<CimdResolver>, OAuthError> {
        self.serving.resolver(tenant).ok_or_else(|| {
            // A generation holds a resolver for each tenant it serves, and keeps those of the
            // tenants its reload removed: not reached unless that is broken.
            tracing::error!(tenant = %tenant, "no client metadata document resolver for this tenant in the set being served");
            OAuthError::server_error()
        })
    }

    pub(super) fn records(&self) -> &Records {
        &self.records
    }

    /// Validates a registration request body (already parsed JSON) and stores the client.
    /// Returns only after the record is on disk.
    pub async fn register(
        &self,
        tenant: &Tenant,
        body: &Value,
        ctx: &RequestCtx,
    ) -> Result<Registered, OAuthError> {
        let now = ctx.now;
        if !tenant.registration().dcr {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "dynamic client registration is turned off for this tenant",
            ));
        }
        let Value::Object(raw) = body else {
            return Err(OAuthError::invalid_client_metadata(
                "the request body must be a JSON object of client metadata (RFC 7591 §2)",
            ));
        };
        let metadata = validate_client_metadata(raw, MetadataOrigin::Registration)?;
        let facts = ClientFacts::of(&metadata, None);
        let apps = choose_apps(tenant, &facts);
        let approval = self
            .approval_at_registration(tenant, &metadata, &facts, ctx)
            .await?;
        let client_secret = metadata
            .token_endpoint_auth_method
            .is_confidential()
            .then(Handle::generate);
        let registration_access_token = Handle::generate();
        let lifetime = tenant.registration().unused_client_lifetime.as_secs();
        loop {
            let record = ClientRecord {
                client_id: ClientId::generate(),
                source: ClientSource::Dcr,
                metadata: metadata.clone(),
                secret_sha256: client_secret.as_ref().map(Handle::key),
                registration_token_sha256: Some(registration_access_token.key()),
                apps: apps.clone(),
                pinned: Default::default(),
                approval_epoch: 0,
                approval,
                issued_at: now,
                last_used_at: now,
            };
            let stored = self
                .records
                .insert_new(
                    &tenant.id,
                    &record.client_id,
                    &record,
                    Some(now + lifetime),
                    now,
                )
                .await?;
            if stored {
                return Ok(Registered {
                    record,
                    client_secret,
                    registration_access_token: Some(registration_access_token),
                });
            }
            // A UUIDv4 collision: try another id.
        }
    }

    /// Whether a new registration waits for an administrator, or why it is refused: a client
    /// an administrator denied does not come back by registering again as itself (whether or
    /// not the tenant asks for approval now), and a full queue takes no new client that
    /// would wait.
    async fn approval_at_registration(
        &self,
        tenant: &Tenant,
        metadata: &crate::domain::ClientMetadata,
        facts: &ClientFacts<'_>,
        ctx: &RequestCtx,
    ) -> Result<crate::domain::ApprovalStatus, OAuthError> {
        let now = ctx.now;
        use crate::log_budget::{Refusal, admit};
        if let Some(denied) = self.approvals.denied_like(tenant, metadata, now).await? {
            if admit(Refusal::Registration, ctx.caller.address()) {
                tracing::info!(target: "audit", event = "registration_refused_denied", tenant = %tenant.id,
                    denied_client_id = %denied.client_id, denied_by = %denied.by);
            }
            return Err(OAuthError::invalid_client_metadata(
                "an administrator of this server denied an application registered with this client_name, software_id and redirect_uris, so it cannot register again; ask an administrator",
            ));
        }
        if !super::approval::policy::approval_required(tenant, facts) {
            return Ok(crate::domain::ApprovalStatus::Approved);
        }
        if self.approvals.is_full(tenant, now).await? {
            crate::metrics::metrics()
                .approval
                .queue_full
                .with_label_values(&[tenant.id.as_str()])
                .inc();
            if admit(Refusal::Registration, ctx.caller.address()) {
                tracing::warn!(target: "audit", event = "registration_refused_queue_full", tenant = %tenant.id,
                    max_pending = tenant.approval().max_pending,
                    "a registration was refused: the approval queue is full; decide the waiting requests (`dcr-shim clients pending`) or raise [approval] max_pending");
            }
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "this server's queue of applications waiting for an administrator's approval is full, so no new application can register now; try again later or ask an administrator",
            ));
        }
        Ok(crate::domain::ApprovalStatus::Pending)
    }

    /// Finds a client of `tenant`: a document client through the resolver, else the store.
    /// `Ok(None)` when no such client exists.
    pub async fn find(
        &self,
        tenant: &Tenant,
        client_id: &str,
        ctx: &RequestCtx,
    ) -> Result<Option<ClientRecord>, OAuthError> {
        let now = ctx.now;
        if is_document_client_id(client_id) {
            let resolver = self.resolver(&tenant.id)?;
            let mut client = resolver
                .resolve(tenant, client_id, ctx)
                .await
                .map_err(|e| e.to_oauth())?;
            super::approval::settle(&self.records, tenant, &mut client, now).await?;
            return Ok(Some(client));
        }
        if client_id.is_empty() || client_id.len() > 64 {
            return Ok(None);
        }
        let found: Option<Versioned<ClientRecord>> = self
            .records
            .get(&tenant.id, &ClientId::new(client_id), now)
            .await?;
        let Some(mut client) = found.map(|v| v.value) else {
            return Ok(None);
        };
        super::approval::settle(&self.records, tenant, &mut client, now).await?;
        Ok(Some(client))
    }

    /// The public keys of a `private_key_jwt` client (document clients only).
    pub(crate) async fn client_keys(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        refetch: bool,
        caller: Caller,
    ) -> Result<Arc<jsonwebtoken::jwk::JwkSet>, OAuthError> {
        let resolver = self.resolver(&tenant.id)?;
        resolver
            .client_keys(&client.metadata, refetch, caller)
            .await
            .map_err(|e| {
                tracing::info!(tenant = %tenant.id, client_id = %client.client_id, error = %e, "client keys unusable");
                e.to_oauth()
            })
    }

    /// The JWK Set at a machine client's `jwks_uri`, fetched like a document client's keys.
    pub(crate) async fn keys_at_uri(
        &self,
        tenant: &Tenant,
        uri: &str,
        refetch: bool,
        caller: Caller,
    ) -> Result<Arc<jsonwebtoken::jwk::JwkSet>, OAuthError> {
        let resolver = self.resolver(&tenant.id)?;
        resolver
            .keys_at(uri, KeysOf::Client, refetch, caller)
            .await
            .map_err(|e| {
                tracing::warn!(tenant = %tenant.id, jwks_uri = %uri, error = %e, "a machine client's keys could not be read; its assertions are refused until they can");
                // Whoever sends the client's id learns nothing of its URL or the failure.
                OAuthError::new(
                    ErrorCode::InvalidClient,
                    "client authentication failed: the client's published keys cannot be read right now; the operator's log has the reason",
                )
            })
    }

    /// The keys of a trusted enterprise IdP: its `jwks_file`, or the set at its `jwks_uri` (or
    /// the one its discovery document names), fetched like a document client's keys.
    pub(crate) async fn issuer_keys(
        &self,
        tenant: &Tenant,
        issuer: &dyn AssertionIssuer,
        refetch: bool,
        caller: Caller,
    ) -> Result<Arc<jsonwebtoken::jwk::JwkSet>, OAuthError> {
        if let Some(keys) = issuer.jwks() {
            return Ok(keys.clone());
        }
        let resolver = self.resolver(&tenant.id)?;
        let keys = async {
            let uri = match issuer.jwks_uri() {
                Some(u) => u.to_owned(),
                None => {
                    resolver
                        .discovered_jwks_uri(issuer.issuer(), caller)
                        .await?
                }
            };
            resolver
                .keys_at(&uri, KeysOf::Issuer, refetch, caller)
                .await
        };
        keys.await.map_err(|e| {
            tracing::warn!(tenant = %tenant.id, issuer = %issuer.issuer(), error = %e, "a trusted issuer's keys could not be read; its assertions are refused until they can");
            OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the keys of the assertion's issuer cannot be read right now; the operator's log has the reason",
            )
        })
    }

    /// `touch` for a registered client, after it was answered: a failure is only logged (the
    /// client's life is extended at a later request), never turned into an error for tokens
    /// already stored.
    pub async fn record_use(&self, tenant: &Tenant, client: &ClientRecord, now: u64) {
        if client.cimd_host().is_none()
            && let Err(e) = self.touch(tenant, client, now).await
        {
            tracing::warn!(tenant = %tenant.id, client_id = %client.client_id, error = %e.description,
                "could not record the client's use; its unused-client lifetime is extended at its next request");
        }
    }

    /// Marks a registered client as used, extending its life; writes at most once per
    /// tenth of the lifetime (and at least daily) so that busy clients do not cost a write
    /// per request.
    pub async fn touch(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        now: u64,
    ) -> Result<(), OAuthError> {
        let lifetime = tenant.registration().unused_client_lifetime.as_secs();
        let interval = (lifetime / 10).min(24 * 3600);
        // The record as the request read it says whether a write is due, without a second read.
        if now.saturating_sub(client.last_used_at) < interval {
            return Ok(());
        }
        let client_id = &client.client_id;
        let Some(mut current) = self
            .records
            .get::<ClientRecord>(&tenant.id, client_id, now)
            .await?
        else {
            return Ok(());
        };
        if now.saturating_sub(current.value.last_used_at) < interval {
            return Ok(());
        }
        current.value.last_used_at = now;
        // Losing a race to another touch is fine: it extended the life just as well.
        self.records
            .update(
                &tenant.id,
                client_id,
                current.revision,
                &current.value,
                Some(now + lifetime),
            )
            .await?;
        Ok(())
    }
}
