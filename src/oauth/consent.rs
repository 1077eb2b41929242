//! Consent (MCP security best practices, "confused deputy"): before any upstream redirect for a
//! client this browser has not approved, the user sees who is asking for what.
//!
//! The validated request travels in a signed ticket inside the form, bound to the browser's
//! CSRF cookie (which a repeated GET reuses rather than rotates, so an open form keeps working).
//! Approval is remembered in a signed cookie per tenant and client.

use serde::{Deserialize, Serialize};

use super::authorize::ConsentTicket;
use super::records::PendingAuthorization;
use super::server::AuthServer;
use crate::config::Tenant;
use crate::crypto::{Handle, sha256_hex};
use crate::domain::ClientId;

/// How long a consent form stays valid.
pub const TICKET_SECONDS: u64 = 600;
/// How long an approval is remembered.
pub(crate) const APPROVAL_SECONDS: u64 = 30 * 24 * 3600;

const TICKET: &str = "consent-ticket";
const APPROVAL: &str = "consent-approval";

/// One approved combination of resource, scopes and redirect target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ApprovedGrant {
    resource: String,
    scopes: Vec<String>,
    /// Hash of the redirect URI (without the port for a loopback one): keeps the cookie small.
    redirect: String,
    offline: bool,
}

/// What a browser approved for one client: a request is covered when it asks for the same
/// resource and redirect target and no scope (or offline access) beyond an approved grant.
#[derive(Serialize, Deserialize)]
struct Approval {
    tenant: String,
    client_id: ClientId,
    grants: Vec<ApprovedGrant>,
    expires_at: u64,
}

/// Most grants remembered per client and browser.
const MAX_GRANTS: usize = 8;

fn grant_of(request: &PendingAuthorization) -> ApprovedGrant {
    let redirect = request.redirect_uri.without_loopback_port();
    ApprovedGrant {
        resource: request.resource.to_string(),
        scopes: request.scopes.iter().map(str::to_owned).collect(),
        redirect: sha256_hex(&redirect)[..32].to_owned(),
        offline: request.offline_access,
    }
}

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
}

impl AuthServer {
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

    fn read_approval(
        &self,
        tenant: &Tenant,
        client_id: &ClientId,
        cookie: Option<&str>,
        now: u64,
    ) -> Option<Approval> {
        let payload = self.signer.verify(APPROVAL, cookie?)?;
        serde_json::from_slice::<Approval>(&payload)
            .ok()
            .filter(|a| {
                a.tenant == tenant.id.as_str() && a.client_id == *client_id && a.expires_at > now
            })
    }

    /// The approval cookie after the user approved `request`, keeping what the browser's
    /// current cookie already approved. `offline` says whether refresh tokens were shown.
    pub(crate) fn approval_cookie(
        &self,
        tenant: &Tenant,
        request: &PendingAuthorization,
        current: Option<&str>,
        now: u64,
    ) -> String {
        let mut grants = self
            .read_approval(tenant, &request.client_id, current, now)
            .map(|a| a.grants)
            .unwrap_or_default();
        let new = grant_of(request);
        grants.retain(|g| !covers(&new, g));
        grants.insert(0, new);
        grants.truncate(MAX_GRANTS);
        let approval = Approval {
            tenant: tenant.id.to_string(),
            client_id: request.client_id.clone(),
            grants,
            expires_at: now + APPROVAL_SECONDS,
        };
        self.signer
            .sign(APPROVAL, &serde_json::to_vec(&approval).unwrap_or_default())
    }

    /// Whether the browser's approval cookie covers `request`.
    pub(crate) fn is_approved(
        &self,
        tenant: &Tenant,
        request: &PendingAuthorization,
        cookie: Option<&str>,
        now: u64,
    ) -> bool {
        let wanted = grant_of(request);
        self.read_approval(tenant, &request.client_id, cookie, now)
            .is_some_and(|a| a.grants.iter().any(|g| covers(g, &wanted)))
    }

    /// Whether this browser approved anything at all for the client (then errors may be sent
    /// back to its redirect URI without making the server an open redirector).
    pub(crate) fn has_any_approval(
        &self,
        tenant: &Tenant,
        client_id: &ClientId,
        cookie: Option<&str>,
        now: u64,
    ) -> bool {
        self.read_approval(tenant, client_id, cookie, now).is_some()
    }
}
