//! Whether a new client waits for an administrator (`docs/approval.md`): the tenant's
//! `[registration] approval`, per CIMD host (`[[registration.cimd_approval]]`) and per mapping
//! rule (`[[mapping]] approval`), and the queue's own settings (`[approval]`: how long a request
//! waits, how many may wait, the webhook that announces them).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::host_pattern::HostPattern;

/// Whether new clients need an administrator's approval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Clients are usable as soon as they register or present their document (the default).
    #[default]
    None,
    /// A new client is pending until an administrator approves it.
    Admin,
}

/// `[[registration.cimd_approval]]`: the approval for the clients of some CIMD hosts; the
/// first entry whose hosts match applies.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostApproval {
    pub(crate) hosts: Vec<HostPattern>,
    pub(crate) approval: Approval,
}

/// The `[approval]` table: the queue of clients waiting for an administrator.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalSettings {
    /// How long a request waits for a decision before it is dropped (the client stays pending
    /// and its next user's sign-in asks again).
    #[serde(with = "humantime_serde")]
    pub(crate) pending_lifetime: Duration,
    /// Most requests waiting at once; beyond, new clients are refused until some are decided.
    pub(crate) max_pending: usize,
    /// Where each new request is announced (JSON, signed; `docs/approval.md`).
    pub(crate) webhook_url: Option<Url>,
    /// The key the webhook's signature is made with (a file readable by the server only).
    pub(crate) webhook_secret_file: Option<PathBuf>,
    /// The key, read from `webhook_secret_file` when the file is loaded.
    #[serde(skip)]
    pub(crate) webhook_secret: Option<Arc<SecretString>>,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        Self {
            pending_lifetime: Duration::from_secs(30 * 24 * 3600),
            max_pending: 1000,
            webhook_url: None,
            webhook_secret_file: None,
            webhook_secret: None,
        }
    }
}

/// The shortest key accepted for the webhook's signature.
const MIN_WEBHOOK_SECRET_LEN: usize = 32;

impl Approval {
    /// What it means for the clients it applies to, for `check`.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Approval::None => "are usable at once",
            Approval::Admin => "wait for an administrator's approval",
        }
    }
}

impl ApprovalSettings {
    /// Checks the settings and reads the webhook's key when `read_secret`: `(field, message)`
    /// for each problem.
    pub(crate) fn load(&mut self, read_secret: bool) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut add = |field: &str, message: String| problems.push((field.to_owned(), message));
        if self.pending_lifetime < Duration::from_secs(3600) {
            add("approval.pending_lifetime", "must be at least 1h".into());
        }
        if self.max_pending == 0 || self.max_pending > 100_000 {
            add(
                "approval.max_pending",
                "must be between 1 and 100000".into(),
            );
        }
        match (&self.webhook_url, &self.webhook_secret_file) {
            (Some(url), Some(file)) => {
                if !crate::domain::is_https_or_loopback(url) {
                    add(
                        "approval.webhook_url",
                        format!("'{url}' must use https (http is accepted only on a loopback host)"),
                    );
                }
                if !url.username().is_empty() || url.password().is_some() {
                    add(
                        "approval.webhook_url",
                        "must not hold user information; the request is authenticated by its signature".into(),
                    );
                }
                if read_secret {
                    match crate::crypto::private_file::read_private(file) {
                        Ok(text) if text.trim().len() >= MIN_WEBHOOK_SECRET_LEN => {
                            self.webhook_secret =
                                Some(Arc::new(SecretString::from(text.trim().to_owned())));
                        }
                        Ok(_) => add(
                            "approval.webhook_secret_file",
                            format!(
                                "{} holds fewer than {MIN_WEBHOOK_SECRET_LEN} characters; write a random key (openssl rand -hex 32)",
                                file.display()
                            ),
                        ),
                        Err(e) => add(
                            "approval.webhook_secret_file",
                            crate::crypto::private_file::describe("the webhook key", file, &e),
                        ),
                    }
                }
            }
            (Some(_), None) => add(
                "approval.webhook_secret_file",
                "is required with webhook_url: every notification is signed, so that the receiver can tell it from a forgery".into(),
            ),
            (None, Some(_)) => add(
                "approval.webhook_url",
                "is missing: webhook_secret_file signs the notifications sent there".into(),
            ),
            (None, None) => {}
        }
        problems
    }
}
