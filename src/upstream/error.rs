//! `UpstreamError`: why a call to the IdP failed, for every kind of IdP, and the one log line
//! that tells the operator what to fix. What the MCP client is told is decided in
//! the OAuth layer (`oauth/upstream_errors.rs`).

use serde_json::Value;

use super::entra::aadsts_meaning;
use crate::domain::TenantId;

/// What the IdP said went wrong, from an authorization or token error response.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdpError {
    pub(crate) error: String,
    pub(crate) description: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) trace_id: Option<String>,
    /// Entra's `suberror` and claims challenge, when it sent them (boxed: most errors have
    /// neither).
    pub(crate) challenge: Option<Box<IdpChallenge>>,
}

/// What an IdP adds to an error that asks for another interactive login.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdpChallenge {
    /// Entra's refinement of the error (`basic_action`, `consent_required`, …).
    pub(crate) suberror: Option<String>,
    /// A claims challenge (Conditional Access, Continuous Access Evaluation): what the next
    /// authorization request must carry as `claims`.
    pub(crate) claims: Option<String>,
}

impl IdpChallenge {
    /// The challenge, if either part is there.
    pub(crate) fn of(suberror: Option<String>, claims: Option<String>) -> Option<Box<Self>> {
        (suberror.is_some() || claims.is_some()).then(|| Box::new(Self { suberror, claims }))
    }
}

impl IdpError {
    /// An error the IdP raised with these words (the dev IdP's own refusals).
    pub(crate) fn new(error: &str, description: &str) -> Self {
        Self {
            error: error.to_owned(),
            description: Some(description.to_owned()),
            ..Self::default()
        }
    }

    /// Reads an IdP error body (RFC 6749 §5.2, plus Entra's `trace_id`/`correlation_id`).
    pub(crate) fn from_json(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Self {
            error: s("error").unwrap_or_else(|| "server_error".into()),
            description: s("error_description"),
            correlation_id: s("correlation_id"),
            trace_id: s("trace_id"),
            challenge: IdpChallenge::of(s("suberror"), s("claims")),
        }
    }

    /// The `AADSTS<n>` code in the description, if any.
    pub(crate) fn aadsts(&self) -> Option<String> {
        let d = self.description.as_deref()?;
        let start = d.find("AADSTS")?;
        let digits: String = d[start + 6..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
    }

    /// The OAuth error code this error means for the client, as a wire string: from the AADSTS
    /// code when there is one, else the IdP's own code.
    pub(crate) fn meaning(&self) -> (&str, &'static str) {
        match self.aadsts() {
            Some(code) => aadsts_meaning(&code),
            None => (self.error.as_str(), ""),
        }
    }

    /// The first line of what the IdP said, at most 300 characters, for the client.
    pub(crate) fn said(&self) -> String {
        self.description
            .as_deref()
            .map(|d| {
                d.lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect::<String>()
            })
            .unwrap_or_else(|| self.error.clone())
    }

    /// What the operator should do, for the log.
    pub(crate) fn operator_advice(&self) -> &'static str {
        self.aadsts()
            .as_deref()
            .map(|c| aadsts_meaning(c).1)
            .unwrap_or("see the identity provider's description")
    }
}

/// Why a call to the IdP failed.
#[derive(Clone, Debug)]
pub(crate) enum UpstreamError {
    /// The IdP answered with an OAuth error.
    Idp(IdpError),
    /// The IdP could not be reached or answered nonsense.
    Unavailable(String),
    /// The shim's configuration for this app is wrong (missing secret, unreadable key).
    Misconfigured(String),
}

impl UpstreamError {
    /// The metrics label of this failure: the AADSTS code when Entra gave one, else the OAuth
    /// error (both bounded sets), `unreachable` or `misconfigured`.
    pub(crate) fn metric_code(&self) -> String {
        match self {
            Self::Idp(e) => e
                .description
                .as_deref()
                .and_then(|d| d.split(':').next())
                .filter(|c| c.starts_with("AADSTS") && c[6..].chars().all(|ch| ch.is_ascii_digit()))
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    let known = [
                        "invalid_grant",
                        "invalid_client",
                        "invalid_request",
                        "invalid_scope",
                        "unauthorized_client",
                        "unsupported_grant_type",
                        "interaction_required",
                        "consent_required",
                        "login_required",
                        "access_denied",
                        "server_error",
                        "temporarily_unavailable",
                        "invalid_target",
                    ];
                    if known.contains(&e.error.as_str()) {
                        e.error.clone()
                    } else {
                        "other".into()
                    }
                }),
            Self::Unavailable(_) => "unreachable".into(),
            Self::Misconfigured(_) => "misconfigured".into(),
        }
    }

    pub(crate) fn is_invalid_grant(&self) -> bool {
        matches!(self, Self::Idp(e) if e.error == "invalid_grant")
    }

    /// One log line an operator can act on.
    pub(crate) fn log(&self, tenant: &TenantId, app: &str, step: &str) {
        match self {
            Self::Idp(e) => {
                tracing::warn!(tenant = %tenant, app, step, idp_error = %e.error, idp_code = e.aadsts().as_deref().unwrap_or(""),
                idp_description = e.description.as_deref().unwrap_or(""), correlation_id = e.correlation_id.as_deref().unwrap_or(""),
                trace_id = e.trace_id.as_deref().unwrap_or(""), suberror = e.challenge.as_ref().and_then(|c| c.suberror.as_deref()).unwrap_or(""),
                claims = e.challenge.as_ref().and_then(|c| c.claims.as_deref()).unwrap_or(""), advice = e.operator_advice(), "identity provider refused")
            }
            Self::Unavailable(why) => {
                tracing::error!(tenant = %tenant, app, step, error = %why, "identity provider unreachable")
            }
            Self::Misconfigured(why) => {
                tracing::error!(tenant = %tenant, app, step, error = %why, "app credential is misconfigured; fix the tenant file or its referenced secret")
            }
        }
    }
}
