//! No new agent without an administrator's yes (`docs/approval.md`).
//!
//! A client that needs approval (`policy.rs`) is `pending`: its user still signs in at the IdP
//! (so that the request names a real person), is then told that an administrator must approve
//! the application, and the request enters the queue (`ask`): one per registered client or per
//! CIMD host, bounded in number (`[approval] max_pending`) and in time (`pending_lifetime`),
//! announced by a signed webhook (`webhook.rs`). An administrator approves a client (choosing
//! its app, or keeping the mapping's), denies it (it stays refused; for a CIMD client its host
//! too, so that another document of the same host cannot ask again), or approves a whole host.
//!
//! Registered clients keep their status in their own record; a document client's comes from
//! its host's decisions (`records::HostDecisions`) each time it is found (`settle`).

pub(crate) mod policy;
pub mod records;
pub mod webhook;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use records::{
    ApprovalRequest, Asker, Decision, DeniedLikeness, HostDecisions, MAX_DECISIONS_PER_HOST,
    host_request_id, likeness, request_id,
};

use super::admin_error::AdminError;
use super::error::{ErrorCode, OAuthError};
use super::mapping::ClientFacts;
use crate::config::Tenant;
use crate::domain::{ApprovalStatus, ClientId, ClientRecord, TenantId};
use crate::store::{Records, StoreError, Versioned};

/// How long a count of the queue is trusted when a registration asks whether it is full.
const COUNT_SECONDS: u64 = 10;
/// Attempts at a change that lost a race with another.
const RETRIES: usize = 16;
/// Most requests one user may have waiting: one person (or one stolen account) cannot fill
/// the queue for everyone.
pub(crate) const MAX_PENDING_PER_USER: usize = 10;

/// The refusal a client that is not approved gets at the token endpoint.
pub(crate) fn usable(client: &ClientRecord) -> Result<(), OAuthError> {
    match client.approval {
        ApprovalStatus::Approved => Ok(()),
        ApprovalStatus::Pending => Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "an administrator of this server has not approved this application yet",
        )),
        ApprovalStatus::Denied => Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "an administrator of this server denied this application",
        )),
    }
}

/// Sets a found client's status (and, for a document client, the apps an administrator chose)
/// from the decisions and the tenant's policy as they are now.
pub(crate) async fn settle(
    records: &Records,
    tenant: &Tenant,
    client: &mut ClientRecord,
    now: u64,
) -> Result<(), StoreError> {
    let Some(host) = client.cimd_host().map(str::to_owned) else {
        // A registered client waits only while approval is asked of it: a tenant that turns
        // approval off lets its pending clients in.
        if client.approval == ApprovalStatus::Pending
            && !policy::approval_required(tenant, &ClientFacts::of(&client.metadata, None))
        {
            client.approval = ApprovalStatus::Approved;
        }
        return Ok(());
    };
    let decisions = records
        .get::<HostDecisions>(&tenant.id, host.as_str(), now)
        .await?
        .map(|v| v.value)
        .unwrap_or_default();
    if let Some(own) = decisions.clients.get(client.client_id.as_str()) {
        client.approval = own.status;
        for (resource, app) in &own.apps {
            if !client.apps.contains_key(resource) {
                continue;
            }
            if tenant.app(app).is_none() {
                tracing::warn!(tenant = %tenant.id, client_id = %client.client_id, app = %app, resource = %resource,
                    "the app an administrator chose for this client is no longer in the tenant file; the mapping rules' app is used");
                continue;
            }
            client.apps.insert(resource.clone(), app.clone());
            client.pinned.insert(resource.clone());
        }
    } else if let Some(all) = &decisions.host {
        client.approval = all.status;
    } else if policy::approval_required(tenant, &ClientFacts::of(&client.metadata, Some(&host))) {
        client.approval = ApprovalStatus::Pending;
    }
    Ok(())
}

/// Whether the tokens a client already holds still count (introspection, token exchange).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    Fine,
    /// The registered client was deleted.
    Gone,
    /// An administrator denied it (or its host), or it waits for one again.
    NotApproved(ApprovalStatus),
}

/// The standing of the client `client_id` names, without fetching a document: a registered
/// client's record as `settle` leaves it; a document client's decisions (its own, else its
/// host's). A document client that waits only because approval was turned on keeps the
/// tokens it has until they expire; its refreshes are refused.
pub(crate) async fn standing(
    records: &Records,
    tenant: &Tenant,
    client_id: &str,
    now: u64,
) -> Result<Standing, StoreError> {
    if super::cimd::is_document_client_id(client_id) {
        let Some(host) = url::Url::parse(client_id)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
        else {
            return Ok(Standing::Gone);
        };
        let decisions = records
            .get::<HostDecisions>(&tenant.id, host.as_str(), now)
            .await?
            .map(|v| v.value)
            .unwrap_or_default();
        let status = decisions
            .clients
            .get(client_id)
            .or(decisions.host.as_ref())
            .map_or(ApprovalStatus::Approved, |d| d.status);
        return Ok(match status {
            ApprovalStatus::Approved => Standing::Fine,
            other => Standing::NotApproved(other),
        });
    }
    let Some(found) = records
        .get::<ClientRecord>(&tenant.id, &ClientId::new(client_id), now)
        .await?
    else {
        return Ok(Standing::Gone);
    };
    let mut client = found.value;
    settle(records, tenant, &mut client, now).await?;
    Ok(match client.approval {
        ApprovalStatus::Approved => Standing::Fine,
        other => Standing::NotApproved(other),
    })
}

/// What `ask` did.
#[derive(Debug)]
pub(crate) enum Asked {
    /// A new request, announced.
    Queued { reference: String },
    /// A request already waiting, which now counts this user too.
    Repeated { reference: String },
}

impl Asked {
    pub(crate) fn reference(&self) -> &str {
        match self {
            Self::Queued { reference } | Self::Repeated { reference } => reference,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AskError {
    #[error("the approval queue is full ({0} requests wait)")]
    Full(usize),
    /// The user has `MAX_PENDING_PER_USER` requests waiting already.
    #[error("this user has {0} requests waiting already")]
    UserLimit(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which request or client an administrator's decision is about.
pub(crate) enum Target<'a> {
    /// A client id (a registered client's, or a document's URL) or a request's reference.
    Client(&'a str),
    /// Every document client of a CIMD host.
    Host(&'a str),
}

/// What a decision changed, for the answer and the audit event.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Decided {
    pub(crate) decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cimd_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reference: Option<String>,
    /// A denied document client's host was denied with it (it had no decision of its own).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) host_denied: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) apps: BTreeMap<String, String>,
}

/// The queue and the decisions of every tenant.
pub struct Approvals {
    records: Records,
    webhooks: webhook::Webhooks,
    /// Each tenant's queue length and when it was counted.
    counts: Mutex<HashMap<TenantId, (u64, usize)>>,
}

impl Approvals {
    pub(crate) fn new(records: Records) -> Self {
        Self {
            records,
            webhooks: webhook::Webhooks::new(),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// The requests waiting in `tenant`, up to `limit`.
    pub async fn pending(
        &self,
        tenant: &Tenant,
        limit: usize,
        now: u64,
    ) -> Result<Vec<Versioned<ApprovalRequest>>, StoreError> {
        self.records
            .list::<ApprovalRequest>(&tenant.id, now, limit)
            .await
    }

    /// Counts the queue (at most `max_pending + 1`) and records the count.
    async fn count(&self, tenant: &Tenant, now: u64) -> Result<usize, StoreError> {
        Ok(self.count_with(tenant, "", now).await?.0)
    }

    /// The queue's length (at most `max_pending + 1`, recorded) and how many of its requests
    /// the user of `user_digest` asked for.
    async fn count_with(
        &self,
        tenant: &Tenant,
        user_digest: &str,
        now: u64,
    ) -> Result<(usize, usize), StoreError> {
        let max = tenant.approval().max_pending;
        let waiting = self
            .records
            .list::<ApprovalRequest>(&tenant.id, now, max.saturating_add(1))
            .await?;
        let n = waiting.len();
        let mine = waiting
            .iter()
            .filter(|v| v.value.user_digests.iter().any(|d| d == user_digest))
            .count();
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.id.clone(), (now, n));
        crate::metrics::metrics()
            .approval
            .pending
            .with_label_values(&[tenant.id.as_str()])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
        Ok((n, mine))
    }

    /// Refreshes every tenant's `dcr_shim_approval_pending` (the sweeper calls this: requests
    /// that expired leave the count without a change of their own).
    pub(crate) async fn recount(&self, tenants: &[std::sync::Arc<Tenant>], now: u64) {
        for tenant in tenants {
            if let Err(e) = self.count(tenant, now).await {
                tracing::warn!(tenant = %tenant.id, error = %e, "cannot count the approval queue");
            }
        }
    }

    /// Whether the queue is full, from a count at most `COUNT_SECONDS` old: registrations
    /// ask at every request, and a flood of them must not each walk the queue.
    pub async fn is_full(&self, tenant: &Tenant, now: u64) -> Result<bool, StoreError> {
        let cached = self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant.id)
            .copied();
        let n = match cached {
            Some((at, n)) if now.saturating_sub(at) < COUNT_SECONDS => n,
            _ => self.count(tenant, now).await?,
        };
        Ok(n >= tenant.approval().max_pending)
    }

    /// Queues (or counts again) the request of a pending client whose user just signed in.
    pub(crate) async fn ask(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        asker: &Asker,
        now: u64,
    ) -> Result<Asked, AskError> {
        let id = request_id(client);
        let mut reference = None;
        for _ in 0..RETRIES {
            let current = self
                .records
                .get::<ApprovalRequest>(&tenant.id, id.as_str(), now)
                .await?;
            let asked = match current {
                Some(current) => {
                    reference = Some(current.value.reference.clone());
                    self.count_again(tenant, client, current, asker, now)
                        .await?
                }
                None => self.queue_first(tenant, client, asker, now).await?,
            };
            if let Some(asked) = asked {
                return Ok(asked);
            }
        }
        // Many sign-ins at once for one request: it exists, only this sign-in's counting lost
        // every race. The user is told as usual.
        match reference {
            Some(reference) => {
                tracing::warn!(tenant = %tenant.id, client_id = %client.client_id, reference = %reference,
                    "a sign-in for an approval request was not counted: the request kept changing under concurrent sign-ins");
                Ok(Asked::Repeated { reference })
            }
            None => Err(AskError::Store(StoreError::Backend(
                "the approval request kept changing under concurrent sign-ins".into(),
            ))),
        }
    }

    /// Counts one more sign-in on the waiting request `current`; `None` if it changed since
    /// it was read.
    async fn count_again(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        current: Versioned<ApprovalRequest>,
        asker: &Asker,
        now: u64,
    ) -> Result<Option<Asked>, AskError> {
        let mut request = current.value;
        let added = request.add(client, asker, now);
        let id = request_id(client);
        if !self
            .records
            .update(
                &tenant.id,
                id.as_str(),
                current.revision,
                &request,
                current.expires_at,
            )
            .await?
        {
            return Ok(None);
        }
        if let Some(new_client) = added {
            // Another document of the host: announced too, with who asked for it.
            self.webhooks
                .announce(tenant, &request, &new_client, false, now);
        }
        Ok(Some(Asked::Repeated {
            reference: request.reference,
        }))
    }

    /// Queues the client's first request, within the queue's and the user's limits; `None` if
    /// another sign-in queued it meanwhile.
    async fn queue_first(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        asker: &Asker,
        now: u64,
    ) -> Result<Option<Asked>, AskError> {
        let (waiting, mine) = self.count_with(tenant, &asker.digest, now).await?;
        if waiting >= tenant.approval().max_pending {
            return Err(AskError::Full(waiting));
        }
        // A sign-in without an ID token names nobody: such users cannot be told apart.
        if !asker.user.subject.is_empty() && mine >= MAX_PENDING_PER_USER {
            return Err(AskError::UserLimit(mine));
        }
        let request = ApprovalRequest::first(new_reference(), client, asker, now);
        let first = request.clients[0].clone();
        let lifetime = tenant.approval().pending_lifetime.as_secs();
        let id = request_id(client);
        if !self
            .records
            .insert_new(&tenant.id, id.as_str(), &request, Some(now + lifetime), now)
            .await?
        {
            return Ok(None);
        }
        self.note_change(tenant, 1);
        self.webhooks.announce(tenant, &request, &first, true, now);
        Ok(Some(Asked::Queued {
            reference: request.reference,
        }))
    }

    /// Moves the cached count by `delta` (a request added or removed here) and the gauge with it.
    fn note_change(&self, tenant: &Tenant, delta: isize) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, n)) = counts.get_mut(&tenant.id) {
            *n = n.saturating_add_signed(delta);
            crate::metrics::metrics()
                .approval
                .pending
                .with_label_values(&[tenant.id.as_str()])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Finds the client a decision names: by id, or by the reference of a request that lists
    /// exactly one client.
    async fn resolve_target(
        &self,
        tenant: &Tenant,
        named: &str,
        now: u64,
    ) -> Result<String, AdminError> {
        if !named.starts_with("REQ-") {
            return Ok(named.to_owned());
        }
        let waiting = self.pending(tenant, usize::MAX, now).await?;
        let Some(request) = waiting
            .iter()
            .map(|v| &v.value)
            .find(|r| r.reference == named)
        else {
            return Err(AdminError::Refused(format!(
                "no request {named} is waiting (decided, expired, or never made); `clients pending` lists those that are"
            )));
        };
        match request.clients.as_slice() {
            [only] if request.clients_not_listed == 0 => Ok(only.client_id.clone()),
            _ => Err(AdminError::Refused(format!(
                "{named} lists several clients of {}; name one by its client id, or approve the host",
                request.cimd_host.as_deref().unwrap_or("one host")
            ))),
        }
    }

    /// An administrator's approval of one client (with the app it maps to for every resource,
    /// or the mapping rules' choice), or of every document client of a host.
    pub(crate) async fn approve(
        &self,
        tenant: &Tenant,
        target: Target<'_>,
        app: Option<&str>,
        by: &str,
        now: u64,
    ) -> Result<Decided, AdminError> {
        if let Some(app) = app
            && tenant.app(app).is_none()
        {
            return Err(AdminError::UnknownApp(app.to_owned()));
        }
        let apps: BTreeMap<String, String> = app
            .map(|a| {
                tenant
                    .resources()
                    .iter()
                    .map(|r| (r.uri.to_string(), a.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let decision = Decision {
            status: ApprovalStatus::Approved,
            by: by.to_owned(),
            at: now,
            apps,
        };
        if app.is_some() && matches!(target, Target::Host(_)) {
            return Err(AdminError::Refused(
                "a host's clients keep the mapping rules' apps; approve one client to choose its app".into(),
            ));
        }
        self.decide(tenant, target, decision, now).await
    }

    /// An administrator's refusal of one client. A document client's host is refused with it
    /// unless an administrator decided about the host before, so that the same host cannot ask
    /// again under another document's URL.
    pub(crate) async fn deny(
        &self,
        tenant: &Tenant,
        target: Target<'_>,
        by: &str,
        now: u64,
    ) -> Result<Decided, AdminError> {
        let decision = Decision {
            status: ApprovalStatus::Denied,
            by: by.to_owned(),
            at: now,
            apps: BTreeMap::new(),
        };
        self.decide(tenant, target, decision, now).await
    }

    /// Records `decision` for a client or a whole host (approved or denied before or not: a
    /// host's documents keep their own decisions), and counts it.
    async fn decide(
        &self,
        tenant: &Tenant,
        target: Target<'_>,
        decision: Decision,
        now: u64,
    ) -> Result<Decided, AdminError> {
        let decided = match target {
            Target::Host(host) => self.decide_whole_host(tenant, host, decision, now).await?,
            Target::Client(named) => {
                let client_id = self.resolve_target(tenant, named, now).await?;
                self.decide_client(tenant, &client_id, decision, now)
                    .await?
            }
        };
        crate::metrics::metrics()
            .approval
            .decisions
            .with_label_values(&[tenant.id.as_str(), decided.decision])
            .inc();
        Ok(decided)
    }

    /// A decision on every document of a host (its documents' own decisions still come
    /// first); the host's request leaves the queue.
    async fn decide_whole_host(
        &self,
        tenant: &Tenant,
        host: &str,
        decision: Decision,
        now: u64,
    ) -> Result<Decided, AdminError> {
        let host = checked_host(host)?;
        let denied = decision.status == ApprovalStatus::Denied;
        self.decide_host(
            tenant,
            &host,
            |d| {
                d.host = Some(decision.clone());
                Ok(())
            },
            now,
        )
        .await?;
        let reference = self
            .withdraw(tenant, &host_request_id(&host), None, now)
            .await?;
        Ok(Decided {
            decision: if denied {
                "host_denied"
            } else {
                "host_approved"
            },
            client_id: None,
            cimd_host: Some(host),
            reference,
            host_denied: denied,
            apps: BTreeMap::new(),
        })
    }

    async fn decide_client(
        &self,
        tenant: &Tenant,
        client_id: &str,
        decision: Decision,
        now: u64,
    ) -> Result<Decided, AdminError> {
        if super::cimd::is_document_client_id(client_id) {
            self.decide_document_client(tenant, client_id, decision, now)
                .await
        } else {
            self.decide_registered_client(tenant, client_id, decision, now)
                .await
        }
    }

    async fn decide_registered_client(
        &self,
        tenant: &Tenant,
        client_id: &str,
        decision: Decision,
        now: u64,
    ) -> Result<Decided, AdminError> {
        let word = decision.status.as_str();
        let id = ClientId::new(client_id);
        let request = format!("client.{client_id}");
        let (client, expires_at) = match self.decide_registered(tenant, &id, &decision, now).await {
            Ok(decided) => decided,
            // Deleted (or expired) since it asked: its request goes, nothing to decide.
            Err(AdminError::UnknownClient) => {
                return match self.withdraw(tenant, &request, None, now).await? {
                    Some(reference) => Ok(Decided {
                        decision: "removed",
                        client_id: Some(client_id.to_owned()),
                        cimd_host: None,
                        reference: Some(reference),
                        host_denied: false,
                        apps: BTreeMap::new(),
                    }),
                    None => Err(AdminError::UnknownClient),
                };
            }
            Err(e) => return Err(e),
        };
        self.remember_likeness(tenant, &client, expires_at, &decision, now)
            .await?;
        let reference = self.withdraw(tenant, &request, None, now).await?;
        Ok(Decided {
            decision: word,
            client_id: Some(client_id.to_owned()),
            cimd_host: None,
            reference,
            host_denied: false,
            apps: decision.apps,
        })
    }

    async fn decide_document_client(
        &self,
        tenant: &Tenant,
        client_id: &str,
        decision: Decision,
        now: u64,
    ) -> Result<Decided, AdminError> {
        let denied = decision.status == ApprovalStatus::Denied;
        let word = decision.status.as_str();
        // Keyed as the client sends it: any other spelling would never match.
        let url = super::cimd::parse_client_id_url(client_id, tenant.dev().cimd_allow_loopback)
            .map_err(|e| {
                AdminError::Refused(format!(
                    "{e}; write the client id exactly as the client sends it (`clients pending` lists it)"
                ))
            })?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let for_host = decision.clone();
        let host_denied = self
            .decide_host(
                tenant,
                &host,
                |d| {
                    if d.clients.len() >= MAX_DECISIONS_PER_HOST && !d.clients.contains_key(client_id)
                    {
                        return Err(AdminError::Refused(format!(
                            "{host} has {MAX_DECISIONS_PER_HOST} decisions on single documents already, the most kept; approve or deny the host as a whole (--host)"
                        )));
                    }
                    d.clients.insert(client_id.to_owned(), decision.clone());
                    let deny_host = denied && d.host.is_none();
                    if deny_host {
                        d.host = Some(for_host.clone());
                    }
                    Ok(deny_host)
                },
                now,
            )
            .await?;
        // A denial that denies the host settles the host's whole request (its other documents
        // are refused with it); otherwise only this client's line.
        let only = (!host_denied).then_some(client_id);
        let reference = self
            .withdraw(tenant, &host_request_id(&host), only, now)
            .await?;
        Ok(Decided {
            decision: word,
            client_id: Some(client_id.to_owned()),
            cimd_host: Some(host),
            reference,
            host_denied,
            apps: decision.apps,
        })
    }

    /// A denied registered client's likeness is remembered as long as the client is kept
    /// (`expires_at`: a registration that looks the same is refused meanwhile); an approval
    /// forgets the likeness this client left.
    async fn remember_likeness(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        expires_at: Option<u64>,
        decision: &Decision,
        now: u64,
    ) -> Result<(), StoreError> {
        let key = likeness(&client.metadata);
        if decision.status == ApprovalStatus::Denied {
            let denied = DeniedLikeness {
                client_id: client.client_id.as_str().to_owned(),
                by: decision.by.clone(),
                at: now,
            };
            // One that looks the same may be remembered already: it is kept as long as the
            // longer-lived of the two denied clients.
            for _ in 0..RETRIES {
                if self
                    .records
                    .insert_new(&tenant.id, key.as_str(), &denied, expires_at, now)
                    .await?
                {
                    return Ok(());
                }
                let Some(found) = self
                    .records
                    .get::<DeniedLikeness>(&tenant.id, key.as_str(), now)
                    .await?
                else {
                    continue;
                };
                let later = match (found.expires_at, expires_at) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                if later == found.expires_at
                    || self
                        .records
                        .update(&tenant.id, key.as_str(), found.revision, &denied, later)
                        .await?
                {
                    return Ok(());
                }
            }
            // Never reported as done when it was not: the denial would stand without its
            // refusal of look-alike registrations.
            return Err(StoreError::Backend(
                "the denied client's likeness kept changing under concurrent denials; deny it again".into(),
            ));
        }
        if let Some(found) = self
            .records
            .get::<DeniedLikeness>(&tenant.id, key.as_str(), now)
            .await?
            && found.value.client_id == client.client_id.as_str()
        {
            self.records
                .remove::<DeniedLikeness>(&tenant.id, key.as_str())
                .await?;
        }
        Ok(())
    }

    /// The denied client a new registration looks like, if any.
    pub(crate) async fn denied_like(
        &self,
        tenant: &Tenant,
        metadata: &crate::domain::ClientMetadata,
        now: u64,
    ) -> Result<Option<DeniedLikeness>, StoreError> {
        Ok(self
            .records
            .get::<DeniedLikeness>(&tenant.id, likeness(metadata).as_str(), now)
            .await?
            .map(|v| v.value))
    }

    async fn decide_registered(
        &self,
        tenant: &Tenant,
        id: &ClientId,
        decision: &Decision,
        now: u64,
    ) -> Result<(ClientRecord, Option<u64>), AdminError> {
        for _ in 0..RETRIES {
            let current = self
                .records
                .get::<ClientRecord>(&tenant.id, id, now)
                .await?
                .ok_or(AdminError::UnknownClient)?;
            let mut client = current.value;
            client.approval = decision.status;
            for (resource, app) in &decision.apps {
                client.apps.insert(resource.clone(), app.clone());
                client.pinned.insert(resource.clone());
            }
            if self
                .records
                .update(
                    &tenant.id,
                    id,
                    current.revision,
                    &client,
                    current.expires_at,
                )
                .await?
            {
                return Ok((client, current.expires_at));
            }
        }
        Err(AdminError::Conflict)
    }

    /// Applies `change` to a host's decisions (compare-and-swap, retried); returns what the
    /// change said.
    async fn decide_host<R>(
        &self,
        tenant: &Tenant,
        host: &str,
        change: impl Fn(&mut HostDecisions) -> Result<R, AdminError>,
        now: u64,
    ) -> Result<R, AdminError> {
        for _ in 0..RETRIES {
            let current = self
                .records
                .get::<HostDecisions>(&tenant.id, host, now)
                .await?;
            let (said, written) = match current {
                Some(v) => {
                    let mut decisions = v.value;
                    let said = change(&mut decisions)?;
                    let written = self
                        .records
                        .update(&tenant.id, host, v.revision, &decisions, None)
                        .await?;
                    (said, written)
                }
                None => {
                    let mut decisions = HostDecisions::default();
                    let said = change(&mut decisions)?;
                    let written = self
                        .records
                        .insert_new(&tenant.id, host, &decisions, None, now)
                        .await?;
                    (said, written)
                }
            };
            if written {
                return Ok(said);
            }
        }
        Err(AdminError::Conflict)
    }

    /// Takes a decided request out of the queue (or, with `only`, one client out of a host's
    /// request, the request going when no client is left); returns its reference.
    async fn withdraw(
        &self,
        tenant: &Tenant,
        id: &str,
        only: Option<&str>,
        now: u64,
    ) -> Result<Option<String>, StoreError> {
        for _ in 0..RETRIES {
            let Some(current) = self
                .records
                .get::<ApprovalRequest>(&tenant.id, id, now)
                .await?
            else {
                return Ok(None);
            };
            let mut request = current.value;
            let reference = Some(request.reference.clone());
            if let Some(client_id) = only {
                request.clients.retain(|c| c.client_id != client_id);
                if !request.clients.is_empty() || request.clients_not_listed > 0 {
                    if self
                        .records
                        .update(
                            &tenant.id,
                            id,
                            current.revision,
                            &request,
                            current.expires_at,
                        )
                        .await?
                    {
                        return Ok(reference);
                    }
                    continue;
                }
            }
            // Removed by another decision meanwhile: counted there.
            if self
                .records
                .remove::<ApprovalRequest>(&tenant.id, id)
                .await?
            {
                self.note_change(tenant, -1);
            }
            return Ok(reference);
        }
        // A decided request left in the queue would still count against its cap and its user.
        Err(StoreError::Backend(
            "the approval request kept changing while it was being withdrawn; decide it again"
                .into(),
        ))
    }

    /// Drops the request of a registered client an operator deleted (nobody is left to
    /// approve), or that changed while it waited (the request shows what it was). A failure
    /// is logged; the request expires in time anyway.
    pub(crate) async fn forget_client(
        &self,
        tenant: &Tenant,
        client_id: &ClientId,
        reason: &str,
        now: u64,
    ) {
        let id = format!("client.{}", client_id.as_str());
        match self.withdraw(tenant, &id, None, now).await {
            Ok(Some(reference)) => {
                tracing::info!(target: "audit", event = "approval_request_dropped", tenant = %tenant.id,
                    client_id = %client_id, reference = %reference, reason);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(tenant = %tenant.id, client_id = %client_id, error = %e,
                    "the deleted client's approval request was not dropped; it expires with [approval] pending_lifetime");
            }
        }
    }
}

/// A host name as a decision names it: lowercase, no scheme, port or path.
fn checked_host(host: &str) -> Result<String, AdminError> {
    let host = host.trim().to_ascii_lowercase();
    match crate::config::HostPattern::parse(&host) {
        Ok(crate::config::HostPattern::Exact(name)) => Ok(name),
        _ => Err(AdminError::Refused(format!(
            "'{host}' is not a host name (write it as in the client's URL: claude.ai, not https://claude.ai/ or *.example)"
        ))),
    }
}

/// `REQ-` and 8 letters and digits that cannot be misread (no 0/O, 1/I/L).
fn new_reference() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let mut rng = rand::thread_rng();
    let code: String = (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("REQ-{code}")
}
