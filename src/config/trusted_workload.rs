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

/// The audience of the tokens Entra accepts from federated workloads (with its national clouds'
/// `...USGov`, `...China` forms): a token made for it must never be handed to the shim, which
/// could then present it to Entra.
const ENTRA_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// GitHub Actions' issuer, which every repository on GitHub shares.
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

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
    /// Whether a token is taken once (its `jti`, or Entra's `uti`, spent), as for tokens made
    /// per request (GitHub Actions); `false` for a platform that hands the workload one token
    /// to use until it is renewed (Kubernetes projects a service-account token and renews it at
    /// 80% of its life).
    #[serde(default = "single_use_default")]
    pub(crate) single_use: bool,
}

fn single_use_default() -> bool {
    true
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

    /// What is wrong with `audience`: one another service also accepts, whose tokens that
    /// service could then present here.
    fn audience_problem(&self) -> Option<(&'static str, String)> {
        let audience = self.audience.as_deref()?;
        let lower = audience.to_ascii_lowercase();
        if lower.starts_with(&ENTRA_EXCHANGE_AUDIENCE.to_ascii_lowercase()) {
            return Some((
                "audience",
                format!(
                    "{audience} is the audience of the tokens Entra accepts; give the shim's tokens an audience of their own (the tenant's issuer URL by default), so that none it receives could be presented to Entra"
                ),
            ));
        }
        if self.issuer == GITHUB_ISSUER && lower.starts_with("https://github.com/") {
            return Some((
                "audience",
                format!(
                    "{audience} is the audience GitHub gives a token by default, which other services accept too; leave audience out (the tenant's issuer URL) and ask for that audience in the workflow"
                ),
            ));
        }
        None
    }

    /// What is wrong with `subject`: a pattern that does not pin the workload. Its text before
    /// the first wildcard must not be empty; for GitHub's issuer (every repository's), it must
    /// name the owner (`repo:contoso/`), unless `claims` pin `repository_owner_id` or
    /// `repository_id` exactly.
    fn subject_problem(&self) -> Option<(&'static str, String)> {
        let wild = |s: &str| s.contains(['*', '?']);
        let literal = self.subject.split(['*', '?']).next().unwrap_or("");
        if literal.is_empty() {
            return Some(("subject", "must name the workload: a pattern that starts with a wildcard matches the subjects of any workload of the issuer (for GitHub, of every repository)".to_owned()));
        }
        let pinned_owner = ["repository_owner_id", "repository_id"]
            .iter()
            .any(|k| self.claims.get(*k).is_some_and(|v| !wild(v)));
        let owner_named = literal
            .strip_prefix("repo:")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(owner, _)| !owner.is_empty());
        if self.issuer.starts_with(GITHUB_ISSUER)
            && wild(&self.subject)
            && !owner_named
            && !pinned_owner
        {
            return Some((
                "subject",
                format!(
                    "'{}' could match another owner's repository on GitHub: write the owner before any wildcard (repo:contoso/agent:*), or pin claims.repository_owner_id",
                    self.subject
                ),
            ));
        }
        None
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
        out.extend(self.audience_problem());
        if self.audience.as_deref().is_some_and(str::is_empty) {
            out.push((
                "audience",
                "must not be empty; leave it out for the tenant's issuer URL".to_owned(),
            ));
        }
        out.extend(self.subject_problem());
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
        let github = |subject: &str, extra: &str| {
            let mut r = rule(&format!(
                "issuer = '{GITHUB_ISSUER}'\nsubject = '{subject}'\nmachine_client = 'm'\n{extra}"
            ));
            r.check(&["m"], &[], false)
                .into_iter()
                .map(|(f, _)| f)
                .collect::<Vec<_>>()
        };
        for loose in [
            "repo:*",
            "repo:contoso*",
            "*:ref:refs/heads/main",
            "repo:?ontoso/agent:*",
        ] {
            assert_eq!(github(loose, ""), ["subject"], "{loose}");
        }
        for tight in [
            "repo:contoso/agent:ref:refs/heads/main",
            "repo:contoso/*",
            "repo:contoso/agent:*",
        ] {
            assert!(github(tight, "").is_empty(), "{tight}");
        }
        assert!(github("repo:*", "claims = { repository_owner_id = '4021' }").is_empty());
        assert_eq!(
            github("repo:contoso/*", "audience = 'https://github.com/contoso'"),
            ["audience"]
        );
        assert_eq!(
            github(
                "repo:contoso/*",
                "audience = 'API://AzureADTokenExchangeUSGov'"
            ),
            ["audience"]
        );
    }
}
