//! Consent (MCP security best practices, "confused deputy"): before any upstream redirect for a
//! client this browser has not approved, the user sees who is asking for what.
//!
//! The validated request travels in a signed ticket inside the form, bound to the browser's
//! CSRF cookie (which a repeated GET reuses rather than rotates, so an open form keeps working).
//! Approvals are remembered in one signed cookie per tenant, bounded in clients and bytes.

use serde::{Deserialize, Serialize};

use super::Logins;
use super::authorize::ConsentTicket;
use crate::config::Tenant;
use crate::crypto::Handle;
use crate::domain::{ClientId, RedirectUri};
use crate::oauth::records::{PendingAuthorization, SpendOnce};

/// How long a consent form stays valid.
pub const TICKET_SECONDS: u64 = 600;
/// How long an approval is remembered.
pub(crate) const APPROVAL_SECONDS: u64 = 30 * 24 * 3600;

const TICKET: &str = "consent-ticket";
const APPROVALS: &str = "consent-approvals";

/// One approved combination of resource, scopes and redirect target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ApprovedGrant {
    /// Keyed digest of the resource URI (`Signer::digest`: small, and no value searched
    /// offline can match another's).
    #[serde(rename = "r")]
    resource: String,
    #[serde(rename = "s")]
    scopes: Vec<String>,
    /// Keyed digest of the redirect URI (without the port for a loopback one).
    #[serde(rename = "u")]
    redirect: String,
    #[serde(rename = "o")]
    offline: bool,
}

/// What a browser approved for one client: a request is covered when it asks for the same
/// resource and redirect target and no scope (or offline access) beyond an approved grant.
#[derive(Clone, Serialize, Deserialize)]
struct ClientApproval {
    /// Keyed digest of the client id.
    #[serde(rename = "c")]
    client: String,
    #[serde(rename = "g")]
    grants: Vec<ApprovedGrant>,
    #[serde(rename = "e")]
    expires_at: u64,
}

/// A browser's approvals in one tenant, most recent first: one cookie per tenant, however many
/// clients come and go (one cookie per client piled up as clients re-registered, until a
/// proxy's header limit refused the browser's requests).
#[derive(Serialize, Deserialize)]
struct Approvals {
    #[serde(rename = "t")]
    tenant: String,
    #[serde(rename = "a")]
    clients: Vec<ClientApproval>,
}

/// Most grants remembered per client.
const MAX_GRANTS: usize = 4;
/// Most clients remembered per tenant and browser.
const MAX_CLIENTS: usize = 16;
/// Longest approval cookie value (about a dozen clients with one grant each): with its name and
/// attributes it stays under the 4096 bytes browsers keep per cookie (RFC 6265 §6.1), and a
/// browser with approvals in two tenants under the 8 KiB of request headers that common proxies
/// accept.
const MAX_COOKIE_VALUE: usize = 3000;

/// What stands for a client id, resource or redirect URI in the cookie.
const DIGEST: &str = "consent-approvals digest";

fn covers(approved: &ApprovedGrant, wanted: &ApprovedGrant) -> bool {
    approved.resource == wanted.resource
        && approved.redirect == wanted.redirect
        && (approved.offline || !wanted.offline)
        && wanted.scopes.iter().all(|s| approved.scopes.contains(s))
}

/// Why a consent submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("the consent form is invalid or was tampered with")]
    BadTicket,
    #[error("the consent form has expired; start the sign-in again from your application")]
    Expired,
    #[error(
        "the consent form was not opened in this browser (CSRF check failed); start the sign-in again"
    )]
    Csrf,
    #[error(
        "this consent form was already submitted; start the sign-in again from your application"
    )]
    Spent,
    #[error("the server cannot record the consent right now; try again in a moment")]
    Unavailable,
}

impl Logins {
    fn digest(&self, value: &str) -> String {
        self.signer.digest(DIGEST, value)
    }

    /// What stands for a client in the cookie: its id and approval epoch, so that an update
    /// that adds a redirect URI leaves every earlier approval unmatched.
    fn client_key(&self, client_id: &ClientId, epoch: u64) -> String {
        match epoch {
            0 => self.digest(client_id.as_str()),
            n => self.digest(&format!("{client_id} {n}")),
        }
    }

    fn redirect_key(&self, redirect_uri: &RedirectUri) -> String {
        self.digest(&redirect_uri.without_loopback_port())
    }

    fn grant_of(&self, request: &PendingAuthorization) -> ApprovedGrant {
        ApprovedGrant {
            resource: self.digest(request.resource.as_str()),
            scopes: request.scopes.iter().map(str::to_owned).collect(),
            redirect: self.redirect_key(&request.redirect_uri),
            offline: request.offline_access,
        }
    }

    /// A signed ticket for the consent form.
    pub(crate) fn consent_ticket(
        &self,
        tenant: &Tenant,
        request: &PendingAuthorization,
        csrf: &Handle,
        now: u64,
    ) -> String {
        let ticket = ConsentTicket {
            tenant: tenant.id.to_string(),
            request: request.clone(),
            csrf_hash: csrf.key(),
            expires_at: now + TICKET_SECONDS,
            id: crate::crypto::random_token(),
        };
        self.signer
            .sign(TICKET, &serde_json::to_vec(&ticket).unwrap_or_default())
    }

    /// Checks a submitted ticket against the tenant, the clock and the browser's CSRF cookie.
    pub fn open_consent_ticket(
        &self,
        tenant: &Tenant,
        ticket: &str,
        csrf_cookie: Option<&str>,
        now: u64,
    ) -> Result<PendingAuthorization, ConsentError> {
        let payload = self
            .signer
            .verify(TICKET, ticket)
            .ok_or(ConsentError::BadTicket)?;
        let ticket: ConsentTicket =
            serde_json::from_slice(&payload).map_err(|_| ConsentError::BadTicket)?;
        if ticket.tenant != tenant.id.as_str() {
            return Err(ConsentError::BadTicket);
        }
        if ticket.expires_at <= now {
            return Err(ConsentError::Expired);
        }
        match csrf_cookie {
            Some(c) if ticket.csrf_hash.matches(&Handle::presented(c)) => Ok(ticket.request),
            _ => Err(ConsentError::Csrf),
        }
    }

    /// Opens a submitted ticket like `open_consent_ticket` and spends it: each form is
    /// submitted once, on any server sharing the store (one ticket posted again and again
    /// would otherwise start a login, and store a transaction, each time).
    pub(crate) async fn redeem_consent_ticket(
        &self,
        tenant: &Tenant,
        ticket: &str,
        csrf_cookie: Option<&str>,
        now: u64,
    ) -> Result<PendingAuthorization, ConsentError> {
        let request = self.open_consent_ticket(tenant, ticket, csrf_cookie, now)?;
        let once = SpendOnce {
            scope: TICKET,
            jti: ticket,
            client_id: &request.client_id,
            until: now + TICKET_SECONDS,
        };
        let first = once
            .spend(&self.records, &tenant.id, now)
            .await
            .map_err(|e| {
                tracing::error!(tenant = %tenant.id, error = %e, "a consent ticket could not be spent");
                ConsentError::Unavailable
            })?;
        if !first {
            return Err(ConsentError::Spent);
        }
        Ok(request)
    }

    /// The unexpired approvals in the browser's cookie for this tenant (none when it is
    /// missing, forged, from another tenant or unreadable).
    fn read_approvals(
        &self,
        tenant: &Tenant,
        cookie: Option<&str>,
        now: u64,
    ) -> Vec<ClientApproval> {
        cookie
            .and_then(|c| self.signer.verify(APPROVALS, c))
            .and_then(|payload| serde_json::from_slice::<Approvals>(&payload).ok())
            .filter(|a| a.tenant == tenant.id.as_str())
            .map(|a| a.clients)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.expires_at > now)
            .collect()
    }

    fn approval_of(
        &self,
        tenant: &Tenant,
        client_id: &ClientId,
        epoch: u64,
        cookie: Option<&str>,
        now: u64,
    ) -> Option<ClientApproval> {
        let client = self.client_key(client_id, epoch);
        self.read_approvals(tenant, cookie, now)
            .into_iter()
            .find(|c| c.client == client)
    }

    /// The tenant's approval cookie after the user approved `request`: this client first, then
    /// what the browser's current cookie already approved, the oldest dropped to stay bounded.
    pub(crate) fn approval_cookie(
        &self,
        tenant: &Tenant,
        request: &PendingAuthorization,
        current: Option<&str>,
        now: u64,
    ) -> String {
        let client = self.client_key(&request.client_id, request.approval_epoch);
        let mut clients = self.read_approvals(tenant, current, now);
        let mut grants = clients
            .iter()
            .position(|c| c.client == client)
            .map(|i| clients.remove(i).grants)
            .unwrap_or_default();
        let new = self.grant_of(request);
        grants.retain(|g| !covers(&new, g));
        grants.insert(0, new);
        grants.truncate(MAX_GRANTS);
        clients.insert(
            0,
            ClientApproval {
                client,
                grants,
                expires_at: now + APPROVAL_SECONDS,
            },
        );
        clients.truncate(MAX_CLIENTS);
        loop {
            let approvals = Approvals {
                tenant: tenant.id.to_string(),
                clients,
            };
            let value = self.signer.sign(
                APPROVALS,
                &serde_json::to_vec(&approvals).unwrap_or_default(),
            );
            clients = approvals.clients;
            if value.len() <= MAX_COOKIE_VALUE || clients.len() <= 1 {
                return value;
            }
            clients.pop();
        }
    }

    /// Whether the browser's approval cookie covers `request`.
    pub(crate) fn is_approved(
        &self,
        tenant: &Tenant,
        request: &PendingAuthorization,
        cookie: Option<&str>,
        now: u64,
    ) -> bool {
        let wanted = self.grant_of(request);
        self.approval_of(
            tenant,
            &request.client_id,
            request.approval_epoch,
            cookie,
            now,
        )
        .is_some_and(|a| a.grants.iter().any(|g| covers(g, &wanted)))
    }

    /// Whether this browser approved `redirect_uri` for the client (then errors may be sent
    /// back to it without making the server an open redirector): the URI itself, since one
    /// the client added after the approval was never shown to the user.
    pub(crate) fn approved_redirect(
        &self,
        tenant: &Tenant,
        client_id: &ClientId,
        epoch: u64,
        redirect_uri: &RedirectUri,
        cookie: Option<&str>,
        now: u64,
    ) -> bool {
        let redirect = self.redirect_key(redirect_uri);
        self.approval_of(tenant, client_id, epoch, cookie, now)
            .is_some_and(|a| a.grants.iter().any(|g| g.redirect == redirect))
    }
}
