//! `[[trusted_issuers]]`: enterprise IdPs whose Identity Assertion JWT Authorization Grants
//! (ID-JAG, MCP's Enterprise-Managed Authorization) a tenant accepts at its token endpoint,
//! and which clients may present them (`oauth/token/id_jag.rs`).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::domain::is_https_or_loopback;

use super::host_pattern::HostPattern;
use super::resource::ResourceConfig;
use super::resource_server::read_jwks_file;

/// The longest an ID-JAG may live (`exp` − `iat`) unless the issuer's table says otherwise.
pub const DEFAULT_MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(600);
const LONGEST_ALLOWED_ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

/// Signature algorithms an issuer may be trusted with: asymmetric only.
const ALGORITHMS: [&str; 9] = crate::domain::ASYMMETRIC_JWS_ALGORITHMS;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// The `iss` of its ID-JAGs, exactly.
    pub issuer: String,
    /// Its JWK Set; when absent, the `jwks_uri` of its discovery document
    /// (`{issuer}/.well-known/openid-configuration`, else `oauth-authorization-server`).
    pub(crate) jwks_uri: Option<String>,
    /// Its JWK Set in a file instead (an IdP the guarded fetcher may not reach: private
    /// addresses are refused to it).
    pub(crate) jwks_file: Option<std::path::PathBuf>,
    /// The keys of `jwks_file`, read when the file is loaded.
    #[serde(skip)]
    pub(crate) jwks: Option<Arc<jsonwebtoken::jwk::JwkSet>>,
    /// Signature algorithms accepted from it.
    #[serde(default = "default_algorithms")]
    pub(crate) algorithms: Vec<String>,
    /// The claim that names the user (recorded as the grant's user, and the minted token's
    /// `sub`).
    #[serde(default = "default_subject_claim")]
    pub(crate) subject_claim: String,
    /// Registered clients (by client id) that may present its assertions: none by default, so
    /// that trusting an issuer lets no client in until the file names it.
    #[serde(default)]
    pub(crate) clients: Vec<String>,
    /// Hosts of metadata-document clients that may present its assertions.
    #[serde(default)]
    pub(crate) cimd_hosts: Vec<HostPattern>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) max_lifetime: Option<Duration>,
}

fn default_subject_claim() -> String {
    "sub".into()
}

impl TrustedIssuer {
    pub(crate) fn max_lifetime(&self) -> Duration {
        self.max_lifetime.unwrap_or(DEFAULT_MAX_ASSERTION_LIFETIME)
    }

    /// Whether `client_id` (a registered client, or a metadata-document client of `host`) may
    /// present this issuer's assertions.
    pub(crate) fn allows_client(&self, client_id: &str, cimd_host: Option<&str>) -> bool {
        match cimd_host {
            Some(host) => self.cimd_hosts.iter().any(|p| p.matches(host)),
            None => self.clients.iter().any(|c| c == client_id),
        }
    }

    /// Problems with the table, as (field, message).
    /// `loopback_allowed`: the tenant's fetcher may reach loopback (`[dev] cimd_allow_loopback`).
    pub(crate) fn problems(
        &self,
        resources: &[ResourceConfig],
        loopback_allowed: bool,
    ) -> Vec<(&'static str, String)> {
        let mut out = key_source_problems(self, self.jwks_file.is_some(), loopback_allowed);
        if self.subject_claim.is_empty() {
            out.push(("subject_claim", "must name a claim".to_owned()));
        }
        let lifetime = self.max_lifetime();
        if lifetime.is_zero() || lifetime > LONGEST_ALLOWED_ASSERTION_LIFETIME {
            out.push(("max_lifetime", "must be between 1s and 1h".to_owned()));
        }
        if !resources.iter().any(|r| r.is_minted()) {
            out.push(("issuer", "an ID-JAG grant answers with a minted token, and no resource of this tenant has token = \"minted\"".to_owned()));
        }
        out
    }

    /// Reads `jwks_file`; a problem with it, as (field, message).
    pub(crate) fn load_keys(&mut self) -> Option<(&'static str, String)> {
        load_jwks_file(
            self.jwks_file.as_deref(),
            self.jwks_uri.is_some(),
            &mut self.jwks,
        )
    }
}

/// An issuer of the JWTs presented at the token endpoint as grants (an ID-JAG's enterprise IdP,
/// a workload's token issuer): where its keys are, and which algorithms it is trusted with.
pub(crate) trait AssertionIssuer {
    /// Its `iss`, exactly.
    fn issuer(&self) -> &str;
    /// Its JWK Set's URL, when the file gives one.
    fn jwks_uri(&self) -> Option<&str>;
    /// Its keys, when the file gives them in a `jwks_file`.
    fn jwks(&self) -> Option<&Arc<jsonwebtoken::jwk::JwkSet>>;
    /// The signature algorithms accepted from it.
    fn algorithms(&self) -> &[String];
}

impl AssertionIssuer for TrustedIssuer {
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

/// What a URL the shim fetches keys from must be.
pub(crate) const KEYS_URL_RULE: &str = "must be an https URL (http on loopback only with [dev] cimd_allow_loopback, which the fetcher of keys needs to reach it)";

/// Whether the fetcher of keys may reach `url`: https, or http on loopback where the tenant's
/// `[dev] cimd_allow_loopback` lets it.
pub(crate) fn fetchable(url: &Url, loopback_allowed: bool) -> bool {
    if loopback_allowed {
        is_https_or_loopback(url)
    } else {
        url.scheme() == "https"
    }
}

/// Problems with where an issuer's keys come from and its algorithms, as (field, message).
pub(crate) fn key_source_problems(
    source: &dyn AssertionIssuer,
    has_jwks_file: bool,
    loopback_allowed: bool,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let fetchable = |u: &Url| fetchable(u, loopback_allowed);
    let must = KEYS_URL_RULE;
    match Url::parse(source.issuer()) {
        Ok(u) if fetchable(&u) || has_jwks_file => {}
        _ => out.push(("issuer", format!("'{}' {must}", source.issuer()))),
    }
    if let Some(j) = source.jwks_uri()
        && !Url::parse(j).is_ok_and(|u| fetchable(&u))
    {
        out.push(("jwks_uri", format!("'{j}' {must}")));
    }
    if source.algorithms().is_empty() {
        out.push(("algorithms", "name at least one".to_owned()));
    }
    for a in source.algorithms() {
        if !ALGORITHMS.contains(&a.as_str()) {
            out.push((
                "algorithms",
                format!(
                    "'{a}' is not accepted; use asymmetric algorithms: {}",
                    ALGORITHMS.join(", ")
                ),
            ));
        }
    }
    out
}

/// Reads an issuer's `jwks_file` into `jwks`; a problem with it, as (field, message).
pub(crate) fn load_jwks_file(
    file: Option<&std::path::Path>,
    has_jwks_uri: bool,
    jwks: &mut Option<Arc<jsonwebtoken::jwk::JwkSet>>,
) -> Option<(&'static str, String)> {
    let file = file?;
    if has_jwks_uri {
        return Some((
            "jwks_file",
            "give jwks_uri or jwks_file, not both".to_owned(),
        ));
    }
    match read_jwks_file(file) {
        Ok(set) => {
            *jwks = Some(Arc::new(set));
            None
        }
        Err(e) => Some(("jwks_file", e)),
    }
}

pub(crate) fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}
