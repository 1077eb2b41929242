//! The approval webhook (`[approval] webhook_url`): each new request is POSTed as JSON, signed
//! with HMAC-SHA256 over `{timestamp}.{body}` (`X-Dcr-Shim-Signature: v1=<hex>` with the time
//! in `X-Dcr-Shim-Timestamp`), so that a receiver can tell it from a forgery and refuse a
//! replay (a stale timestamp, a delivery id seen before). Sent from a task of its own and
//! retried with backoff: the sign-in that queued the request never waits for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::Sha256;

use super::records::{ApprovalRequest, RequestedClient, Requester};
use crate::config::Tenant;

/// Attempts per notification: the first and five retries, 1 s to 16 s apart.
const ATTEMPTS: u32 = 6;
/// Notifications being delivered (or waiting to be retried) at once; more are dropped, counted
/// and logged.
const MAX_IN_FLIGHT: usize = 256;
/// Longest a receiver may take to answer one attempt.
const TIMEOUT: Duration = Duration::from_secs(10);

pub const SIGNATURE_HEADER: &str = "X-Dcr-Shim-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Dcr-Shim-Timestamp";
pub const DELIVERY_HEADER: &str = "X-Dcr-Shim-Delivery";

/// `v1=` and the hex HMAC-SHA256 of `{timestamp}.{body}` under `secret`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", crate::crypto::hex(&mac.finalize().into_bytes()))
}

/// Sends notifications; one per server, shared by the tenants.
pub(crate) struct Webhooks {
    http: reqwest::Client,
    in_flight: Arc<AtomicUsize>,
}

impl Webhooks {
    pub(crate) fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("dcr-shim/", env!("CARGO_PKG_VERSION")))
            .tls_built_in_webpki_certs(true)
            .tls_built_in_native_certs(true)
            .build()
            .unwrap_or_else(|e| {
                // Only when the TLS backend cannot start: then no HTTPS works in this process.
                tracing::error!(error = %e, "cannot build the HTTP client of the approval webhook; notifications will fail");
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(TIMEOUT)
                    .build()
                    .unwrap_or_default()
            });
        Self {
            http,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Announces a new request, or a client new to a host's request (`new_request` false),
    /// when the tenant has a webhook; returns at once.
    pub(crate) fn announce(
        &self,
        tenant: &Tenant,
        request: &ApprovalRequest,
        client: &RequestedClient,
        new_request: bool,
        now: u64,
    ) {
        let settings = tenant.approval();
        let (Some(url), Some(secret)) = (&settings.webhook_url, &settings.webhook_secret) else {
            return;
        };
        let count = |outcome: &str| {
            crate::metrics::metrics()
                .approval
                .webhooks
                .with_label_values(&[tenant.id.as_str(), outcome])
                .inc();
        };
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            count("dropped");
            tracing::warn!(tenant = %tenant.id, reference = %request.reference,
                "an approval request was not announced: {MAX_IN_FLIGHT} notifications are already waiting for the webhook; `dcr-shim clients pending` lists it");
            return;
        }
        let delivery = uuid::Uuid::new_v4().to_string();
        let body = payload(tenant, request, client, new_request, &delivery, now).to_string();
        let job = Delivery {
            http: self.http.clone(),
            url: url.to_string(),
            secret: secret.clone(),
            body,
            delivery,
            tenant: tenant.id.as_str().to_owned(),
            reference: request.reference.clone(),
        };
        let in_flight = self.in_flight.clone();
        tokio::spawn(async move {
            job.run().await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

struct Delivery {
    http: reqwest::Client,
    url: String,
    secret: Arc<SecretString>,
    body: String,
    delivery: String,
    tenant: String,
    reference: String,
}

impl Delivery {
    async fn run(self) {
        let count = |outcome: &str| {
            crate::metrics::metrics()
                .approval
                .webhooks
                .with_label_values(&[self.tenant.as_str(), outcome])
                .inc();
        };
        let mut wait = Duration::from_secs(1);
        for attempt in 1..=ATTEMPTS {
            match self.attempt().await {
                Ok(()) => {
                    count("delivered");
                    tracing::info!(tenant = %self.tenant, reference = %self.reference, attempt, "approval request announced to the webhook");
                    return;
                }
                Err(Failure::Final(why)) => {
                    count("failed");
                    tracing::error!(tenant = %self.tenant, reference = %self.reference, reason = %why,
                        "the approval webhook refused the notification and it is not retried; fix the receiver or [approval] webhook_url, and see `dcr-shim clients pending`");
                    return;
                }
                Err(Failure::Retry(why)) if attempt < ATTEMPTS => {
                    count("retried");
                    tracing::warn!(tenant = %self.tenant, reference = %self.reference, attempt, reason = %why, retry_in = ?wait,
                        "the approval webhook did not take the notification; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(Failure::Retry(why)) => {
                    count("failed");
                    tracing::error!(tenant = %self.tenant, reference = %self.reference, attempts = ATTEMPTS, reason = %why,
                        "the approval webhook never took the notification; the request still waits in `dcr-shim clients pending`");
                }
            }
        }
    }

    /// One POST, signed at the time it is sent (a retry carries a fresh timestamp and the same
    /// delivery id).
    async fn attempt(&self) -> Result<(), Failure> {
        let timestamp = crate::clock::unix_now();
        let signed = signature(
            self.secret.expose_secret().as_bytes(),
            timestamp,
            self.body.as_bytes(),
        );
        let res = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, signed)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(DELIVERY_HEADER, &self.delivery)
            .body(self.body.clone())
            .send()
            .await
            // Without the URL: a chat webhook's URL carries its secret in the path.
            .map_err(|e| {
                Failure::Retry(format!(
                    "cannot reach it: {}",
                    crate::net::fetch::error_chain(&e.without_url())
                ))
            })?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let why = format!("it answered {status}");
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(Failure::Retry(why))
        } else {
            Err(Failure::Final(why))
        }
    }
}

enum Failure {
    Retry(String),
    Final(String),
}

/// A client's own words as a chat message (Teams, Slack: Markdown, HTML, auto-linked host
/// names) may show them: letters, digits and single spaces; everything else becomes `?`, so
/// that a name can become neither a link (no `.`, `/` or `:`), a mention, a list nor
/// formatting. Bounded to 80 characters.
pub(crate) fn chat_safe(s: &str) -> String {
    let words: String = s
        .chars()
        .take(80)
        .map(|c| {
            if c.is_alphanumeric() {
                c
            } else if c == ' ' {
                ' '
            } else {
                '?'
            }
        })
        .collect();
    words.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the IdP or a fetch vouches for (a sign-in name, a verified host) in a chat message:
/// letters, digits and the `.`, `-` and `@` of addresses and host names; Markdown and HTML
/// marks (`_` included) become `?`.
pub(crate) fn chat_safe_name(s: &str) -> String {
    s.chars()
        .take(120)
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '@') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn client_json(c: &RequestedClient) -> Value {
    json!({
        "client_id": c.client_id,
        "claimed_name": c.claimed_name,
        "software_id": c.software_id,
        "software_version": c.software_version,
        "redirect_uris": c.redirect_uris,
        "cimd_host": c.cimd_host,
        "apps": c.apps,
    })
}

fn user_json(u: &Requester) -> Value {
    json!({"subject": u.subject, "upn": u.upn, "name": u.name, "email": u.email})
}

/// The notification's JSON (`docs/approval.md` describes every field).
pub(crate) fn payload(
    tenant: &Tenant,
    request: &ApprovalRequest,
    client: &RequestedClient,
    new_request: bool,
    delivery: &str,
    now: u64,
) -> Value {
    let name = client
        .claimed_name
        .as_deref()
        .map(chat_safe)
        .filter(|n| !n.is_empty())
        .map(|n| format!("An application that calls itself {n}"))
        .unwrap_or_else(|| "An unnamed application".to_owned());
    let user = &client.asked_by;
    let who = user
        .upn
        .as_deref()
        .or(user.email.as_deref())
        .map(chat_safe_name)
        .unwrap_or_else(|| "a user".to_owned());
    let from = match &request.cimd_host {
        Some(host) => format!(", published by {},", chat_safe_name(host)),
        None => ", which registered itself,".to_owned(),
    };
    let tenant_name = tenant.display_name();
    json!({
        "type": "approval.requested",
        "delivery": delivery,
        "tenant": tenant.id.as_str(),
        "reference": request.reference,
        "requested_at": request.first_requested_at,
        "requested_at_text": humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_secs(request.first_requested_at)).to_string(),
        "sent_at": now,
        "new_request": new_request,
        "cimd_host": request.cimd_host,
        "client": client_json(client),
        "user": user_json(user),
        "address": client.asked_from,
        "text": format!(
            "{name}{from} asks for access to {} on behalf of {who}. Reference {}.",
            chat_safe(tenant_name), request.reference
        ),
        "approve": format!("dcr-shim clients approve --tenant {} {}", tenant.id, request.reference),
        "deny": format!("dcr-shim clients deny --tenant {} {}", tenant.id, request.reference),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_and_body() {
        let s = signature(b"key", 1700000000, b"{}");
        assert!(s.starts_with("v1=") && s.len() == 3 + 64);
        assert_ne!(s, signature(b"key", 1700000001, b"{}"));
        assert_ne!(s, signature(b"key", 1700000000, b"{ }"));
        assert_ne!(s, signature(b"other", 1700000000, b"{}"));
    }

    #[test]
    fn chat_text_cannot_format() {
        assert_eq!(
            chat_safe("[Click](https://evil) <@channel> **x**"),
            "?Click??https???evil? ??channel? ??x??"
        );
        assert_eq!(chat_safe("Claude Code"), "Claude Code");
        assert_eq!(
            chat_safe("Reverify at contoso-login.com"),
            "Reverify at contoso?login?com"
        );
        assert_eq!(chat_safe("- item"), "? item");
        assert_eq!(chat_safe("a\n\n  b"), "a?? b");
        assert_eq!(chat_safe(&"a".repeat(200)).len(), 80);
        assert_eq!(chat_safe_name("ann@contoso.com"), "ann@contoso.com");
        assert_eq!(chat_safe_name("[x](y)"), "?x??y?");
    }
}
