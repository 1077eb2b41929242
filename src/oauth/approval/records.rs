//! What the approval queue stores: a request per registered client or per CIMD host (so that
//! one host's many documents are one request), and the decisions on a CIMD host's clients
//! (registered clients keep theirs in their own record).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::{ApprovalStatus, ClientMetadata, ClientRecord};
use crate::store::{Namespace, Record};

/// Most clients one CIMD host's request lists; more ask under the same reference, counted.
pub(crate) const MAX_CLIENTS_PER_REQUEST: usize = 20;
/// Most distinct users remembered per request (beyond, `users` stops growing exactly).
pub(crate) const MAX_USERS_REMEMBERED: usize = 100;
/// Most per-client decisions kept for one CIMD host.
pub(crate) const MAX_DECISIONS_PER_HOST: usize = 1000;

/// Who asked: from the ID token of the sign-in that was refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    /// The user's stable id at the IdP (Entra `oid`, else `sub`); empty when the IdP sent no
    /// ID token.
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A client as the request shows it. Every text but the id and host is the client's own
/// claim, and named so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedClient {
    pub client_id: String,
    /// `client_name`: what the client calls itself, not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    pub redirect_uris: Vec<String>,
    /// The host its metadata document was fetched from (verified), for a CIMD client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cimd_host: Option<String>,
    /// A CIMD client's document, as validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<serde_json::Value>,
    /// The apps the mapping rules chose, per resource.
    pub apps: BTreeMap<String, String>,
    pub first_requested_at: u64,
    /// Who asked for this client first (a host's request lists documents others asked for).
    #[serde(default)]
    pub asked_by: Requester,
    /// The address of that user's browser, as the server saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_from: Option<String>,
}

impl RequestedClient {
    pub(crate) fn of(
        client: &ClientRecord,
        user: &Requester,
        address: Option<&str>,
        now: u64,
    ) -> Self {
        let m = &client.metadata;
        Self {
            client_id: client.client_id.as_str().to_owned(),
            claimed_name: m.client_name.clone(),
            software_id: m.software_id.clone(),
            software_version: m.software_version.clone(),
            redirect_uris: m
                .redirect_uris
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            cimd_host: client.cimd_host().map(str::to_owned),
            document: client
                .cimd_host()
                .and_then(|_| serde_json::to_value(m).ok()),
            apps: client.apps.clone(),
            first_requested_at: now,
            asked_by: user.clone(),
            asked_from: address.map(str::to_owned),
        }
    }
}

/// A request waiting for an administrator: one per registered client, one per CIMD host.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// What the refused user is shown and an administrator may quote (`REQ-` and 8 letters).
    pub reference: String,
    /// Set for a CIMD host's request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cimd_host: Option<String>,
    pub clients: Vec<RequestedClient>,
    /// Clients of the host that asked but were not listed (`MAX_CLIENTS_PER_REQUEST`), distinct
    /// (exact up to `MAX_USERS_REMEMBERED` of them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clients_not_listed: u64,
    /// Digests of the client ids counted in `clients_not_listed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) unlisted_digests: Vec<String>,
    pub first_requested_at: u64,
    /// The address of the browser that asked first, as the server saw it (behind trusted
    /// proxies, the client's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_address: Option<String>,
    pub first_user: Requester,
    pub last_requested_at: u64,
    pub last_user: Requester,
    /// Distinct users who asked (exact up to `MAX_USERS_REMEMBERED`).
    pub users: u64,
    /// Sign-ins refused for this request.
    pub requests: u64,
    /// Keyed digests of the users counted, so that a second sign-in of one user is not a
    /// second user.
    #[serde(default)]
    pub(crate) user_digests: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A sign-in that asks for a waiting client: who signed in, from where, and the keyed digest
/// of their id that counts their requests without keeping the id.
pub(crate) struct Asker {
    pub(crate) user: Requester,
    pub(crate) address: Option<String>,
    pub(crate) digest: String,
}

impl ApprovalRequest {
    /// A new request, made by `asker`'s sign-in for `client`.
    pub(crate) fn first(reference: String, client: &ClientRecord, asker: &Asker, now: u64) -> Self {
        let (user, address) = (&asker.user, asker.address.as_deref());
        Self {
            reference,
            cimd_host: client.cimd_host().map(str::to_owned),
            clients: vec![RequestedClient::of(client, user, address, now)],
            clients_not_listed: 0,
            unlisted_digests: Vec::new(),
            first_requested_at: now,
            first_address: address.map(str::to_owned),
            first_user: user.clone(),
            last_requested_at: now,
            last_user: user.clone(),
            users: 1,
            requests: 1,
            user_digests: vec![asker.digest.clone()],
        }
    }

    /// Counts one more sign-in of `asker` for `client`; returns the client when it is new to
    /// the request and listed.
    pub(crate) fn add(
        &mut self,
        client: &ClientRecord,
        asker: &Asker,
        now: u64,
    ) -> Option<RequestedClient> {
        let (user, address, user_digest) =
            (&asker.user, asker.address.as_deref(), asker.digest.as_str());
        let id = client.client_id.as_str();
        let mut added = None;
        if !self.clients.iter().any(|c| c.client_id == id) {
            if self.clients.len() < MAX_CLIENTS_PER_REQUEST {
                let new = RequestedClient::of(client, user, address, now);
                self.clients.push(new.clone());
                added = Some(new);
            } else {
                let digest = crate::crypto::sha256_hex(id);
                if !self.unlisted_digests.contains(&digest) {
                    self.clients_not_listed += 1;
                    if self.unlisted_digests.len() < MAX_USERS_REMEMBERED {
                        self.unlisted_digests.push(digest);
                    }
                }
            }
        }
        if !self.user_digests.iter().any(|d| d == user_digest) {
            self.users += 1;
            if self.user_digests.len() < MAX_USERS_REMEMBERED {
                self.user_digests.push(user_digest.to_owned());
            }
        }
        self.requests += 1;
        self.last_requested_at = now;
        self.last_user = user.clone();
        added
    }
}

impl Record for ApprovalRequest {
    const NAMESPACE: Namespace = Namespace::ApprovalRequest;
    const SCHEMA: u16 = 1;
    type Id = str;
}

/// The id of the request for a client: its CIMD host's, else its own.
pub(crate) fn request_id(client: &ClientRecord) -> String {
    match client.cimd_host() {
        Some(host) => host_request_id(host),
        None => format!("client.{}", client.client_id.as_str()),
    }
}

pub(crate) fn host_request_id(host: &str) -> String {
    format!("host.{host}")
}

/// An administrator's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// `Approved` or `Denied`.
    pub status: ApprovalStatus,
    /// The admin token's label (or `offline`).
    pub by: String,
    pub at: u64,
    /// The apps the administrator chose, per resource (empty: the mapping rules').
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub apps: BTreeMap<String, String>,
}

/// The decisions on one CIMD host: for the host as a whole and for single documents (a
/// document's own decision comes first).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HostDecisions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Decision>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clients: BTreeMap<String, Decision>,
}

impl Record for HostDecisions {
    const NAMESPACE: Namespace = Namespace::CimdDecision;
    const SCHEMA: u16 = 1;
    type Id = str;
}

/// A denied registered client, remembered by what it looks like (`likeness`): a registration
/// that looks the same is refused, so that a denied client cannot ask again by registering
/// anew. (What a client says of itself is its own claim: one that changes its name gets a new
/// request, and an administrator sees it again.)
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeniedLikeness {
    pub client_id: String,
    pub by: String,
    pub at: u64,
}

impl Record for DeniedLikeness {
    const NAMESPACE: Namespace = Namespace::DeniedLikeness;
    const SCHEMA: u16 = 1;
    type Id = str;
}

/// SHA-256 (hex) of a registered client's name, software id and redirect URIs (sorted).
pub(crate) fn likeness(metadata: &ClientMetadata) -> String {
    let mut uris: Vec<&str> = metadata.redirect_uris.iter().map(|r| r.as_str()).collect();
    uris.sort_unstable();
    let canonical = serde_json::json!([metadata.client_name, metadata.software_id, uris,]);
    crate::crypto::sha256_hex(&canonical.to_string())
}
