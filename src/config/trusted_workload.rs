//! `[[trusted_workloads]]`: workload identity federation (RFC 7523 §2.1; MCP's
//! `io.modelcontextprotocol/auth/wif`). A workload that already holds a token from its platform
//! (a Kubernetes service-account token, a GitHub Actions OIDC token, an Azure managed identity's
//! federated token) presents it at the token endpoint as a JWT-bearer grant and gets a minted
//! token as one of the tenant's machine clients, with no secret anywhere. Each table is one
//! rule: an issuer, the audience its tokens must carry, the `sub` (and other claims) that
//! identify the workload, and the machine client (`[[machine_clients]]`, whose resources and
//! scopes apply) it becomes (`oauth/token/workload.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use wildmatch::WildMatch;

use super::trusted_issuer::{
    AssertionIssuer, default_algorithms, key_source_problems, load_jwks_file,
};

/// The longest a workload token may live unless the table says otherwise: Kubernetes projects
/// service-account tokens for an hour by default, as Azure workload identity does.
const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(3600);
const LONGEST_ALLOWED_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The audience of the tokens Entra accepts from federated workloads: a token made for it must
/// never be handed to the shim, which could then present it to Entra.
const ENTRA_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedWorkload {
    /// The `iss` of the workload's tokens, exactly.
    pub issuer: String,
    /// The `aud` its tokens must carry; the tenant's issuer URL when absent.
    #[serde(default)]
    pub(crate) audience: Option<String>,
    /// The workload's `sub`: exact, or a pattern where `*` matches any run of characters and
    /// `?` one character.
    pub(crate) subject: String,
    /// Further claims the token must carry, each a string equal to the value (or matching it,
    /// with `*` and `?`): `repository = "contoso/agent"`.
    #[serde(default)]
    pub(crate) claims: BTreeMap<String, String>,
    /// The machine client (`[[machine_clients]]` `client_id`) a matching workload becomes.
    pub(crate) machine_client: String,
    /// Its JWK Set; when absent, the `jwks_uri` of its discovery document.
    #[serde(default)]
    pub(crate) jwks_uri: Option<String>,
    /// Its JWK Set in a file instead (a cluster whose discovery the shim cannot reach).
    #[serde(default)]
    pub(crate) jwks_file: Option<PathBuf>,
    #[serde(skip)]
    pub(crate) jwks: Option<Arc<jsonwebtoken::jwk::JwkSet>>,
    /// Signature algorithms accepted from it.
    #[serde(default = "default_algorithms")]
    pub(crate) algorithms: Vec<String>,
    /// The longest `exp` − `iat` accepted.
    #[serde(default, with = "humantime_serde")]
    pub(crate) max_lifetime: Option<Duration>,
}

impl AssertionIssuer for TrustedWorkload {
    fn issuer(&self) -> &str {
        &self.issuer
    }
    fn jwks_uri(&self) -> Option<&str> {
        self.jwks_uri.as_deref()
    }
    fn jwks(&self) -> Option<&Arc<jsonwebtoken::jwk::JwkSet>> {
        self.jwks.as_ref()
    }
    fn algorithms(&self) -> &[String] {
        &self.algorithms
    }
}

impl TrustedWorkload {
    pub(crate) fn max_lifetime(&self) -> Duration {
        self.max_lifetime.unwrap_or(DEFAULT_MAX_LIFETIME)
    }

    /// Whether the (verified) claims name this rule's workload: its subject and every claim.
    pub(crate) fn matches(&self, claims: &Map<String, Value>) -> bool {
        let text = |k: &str| claims.get(k).and_then(Value::as_str);
        text("sub").is_some_and(|s| WildMatch::new(&self.subject).matches(s))
            && self
                .claims
                .iter()
                .all(|(k, want)| text(k).is_some_and(|v| WildMatch::new(want).matches(v)))
    }

    /// Whether `aud` (a string or an array) holds the audience this rule wants; `tenant_issuer`
    /// is the default, with or without a trailing slash.
    pub(crate) fn accepts_audience(&self, aud: Option<&Value>, tenant_issuer: &str) -> bool {
        let wanted = |a: &str| match &self.audience {
            Some(own) => a == own,
            None => a.trim_end_matches('/') == tenant_issuer.trim_end_matches('/'),
        };
        match aud {
            Some(Value::String(a)) => wanted(a),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(wanted),
            _ => false,
        }
    }

    /// Problems with the table, as (field, message); reads `jwks_file`.
    pub(crate) fn check(
        &mut self,
        machine_clients: &[&str],
        trusted_issuers: &[super::trusted_issuer::TrustedIssuer],
        loopback_allowed: bool,
    ) -> Vec<(&'static str, String)> {
        let mut out = key_source_problems(self, self.jwks_file.is_some(), loopback_allowed);
        out.extend(load_jwks_file(
            self.jwks_file.as_deref(),
            self.jwks_uri.is_some(),
            &mut self.jwks,
        ));
        if trusted_issuers.iter().any(|t| t.issuer == self.issuer) {
            out.push(("issuer", "is also a trusted ID-JAG issuer ([[trusted_issuers]]): one issuer's tokens are either users' ID-JAGs or workloads' tokens, never both".to_owned()));
        }
        if self.audience.as_deref() == Some(ENTRA_EXCHANGE_AUDIENCE) {
            out.push(("audience", format!("{ENTRA_EXCHANGE_AUDIENCE} is the audience of the tokens Entra accepts; give the shim's tokens an audience of their own (the tenant's issuer URL by default), so that none it receives could be presented to Entra")));
        }
        if self.audience.as_deref().is_some_and(str::is_empty) {
            out.push((
                "audience",
                "must not be empty; leave it out for the tenant's issuer URL".to_owned(),
            ));
        }
        if self.subject.is_empty() || self.subject.chars().all(|c| c == '*' || c == '?') {
            out.push(("subject", "must name the workload: a pattern matching every subject would let in every workload of the issuer (for GitHub, every repository)".to_owned()));
        }
        for (k, v) in &self.claims {
            if k.is_empty() || v.is_empty() {
                out.push(("claims", "each claim needs a name and a value".to_owned()));
            }
            if matches!(
                k.as_str(),
                "iss" | "aud" | "exp" | "iat" | "nbf" | "jti" | "sub"
            ) {
                out.push((
                    "claims",
                    format!("'{k}' is checked already; use issuer, audience or subject"),
                ));
            }
        }
        if !machine_clients.contains(&self.machine_client.as_str()) {
            out.push((
                "machine_client",
                format!(
                    "'{}' is not the client_id of a [[machine_clients]] table of this file",
                    self.machine_client
                ),
            ));
        }
        let lifetime = self.max_lifetime();
        if lifetime.is_zero() || lifetime > LONGEST_ALLOWED_LIFETIME {
            out.push(("max_lifetime", "must be between 1s and 24h".to_owned()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(toml: &str) -> TrustedWorkload {
        toml::from_str(toml).expect("parses")
    }

    #[test]
    fn the_subject_and_every_claim_must_match() {
        let r = rule(
            r#"issuer = "https://token.actions.githubusercontent.com"
               subject = "repo:contoso/agent:*"
               claims = { repository = "contoso/agent", ref = "refs/heads/*" }
               machine_client = "agent""#,
        );
        let claims = |v: Value| v.as_object().cloned().expect("object");
        let good = json!({"sub": "repo:contoso/agent:ref:refs/heads/main",
            "repository": "contoso/agent", "ref": "refs/heads/main"});
        assert!(r.matches(&claims(good)));
        for bad in [
            json!({"sub": "repo:contoso/agent2:ref:refs/heads/main", "repository": "contoso/agent", "ref": "refs/heads/main"}),
            json!({"sub": "repo:contoso/agent:ref:refs/heads/main", "repository": "contoso/other", "ref": "refs/heads/main"}),
            json!({"sub": "repo:contoso/agent:ref:refs/heads/main", "repository": "contoso/agent", "ref": "refs/tags/v1"}),
            json!({"sub": "repo:contoso/agent:ref:refs/heads/main", "repository": "contoso/agent"}),
            json!({"sub": "repo:contoso/agent:ref:refs/heads/main", "repository": ["contoso/agent"], "ref": "refs/heads/main"}),
        ] {
            assert!(!r.matches(&claims(bad.clone())), "{bad}");
        }
    }

    #[test]
    fn the_audience_is_the_tenant_issuer_unless_given() {
        let r = rule(
            "issuer = 'https://k8s.example'\nsubject = 'system:serviceaccount:a:b'\nmachine_client = 'm'",
        );
        let issuer = "https://shim.example/contoso";
        assert!(r.accepts_audience(Some(&json!(issuer)), issuer));
        assert!(r.accepts_audience(Some(&json!(format!("{issuer}/"))), issuer));
        assert!(r.accepts_audience(Some(&json!(["other", issuer])), issuer));
        assert!(!r.accepts_audience(Some(&json!("https://shim.example/other")), issuer));
        assert!(!r.accepts_audience(None, issuer));
        let own = rule(
            "issuer = 'https://k8s.example'\nsubject = 's'\nmachine_client = 'm'\naudience = 'dcr-shim'",
        );
        assert!(own.accepts_audience(Some(&json!("dcr-shim")), issuer));
        assert!(!own.accepts_audience(Some(&json!(issuer)), issuer));
    }

    #[test]
    fn check_refuses_rules_that_let_too_much_in() {
        let mut r = rule(
            r#"issuer = "https://token.actions.githubusercontent.com"
               subject = "*"
               audience = "api://AzureADTokenExchange"
               claims = { aud = "x" }
               machine_client = "nobody"
               max_lifetime = "2d""#,
        );
        let fields: Vec<&str> = r
            .check(&[], &[], false)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            [
                "audience",
                "subject",
                "claims",
                "machine_client",
                "max_lifetime"
            ]
        );
    }
}
