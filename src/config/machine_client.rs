//! `[[machine_clients]]`: agents that act as themselves, with no user and no browser, by the
//! client credentials grant (RFC 6749 §4.4; the MCP extension
//! `io.modelcontextprotocol/oauth-client-credentials`). Each is named by the operator here,
//! never registered dynamically, and may reach only the resources and scopes listed.

use std::path::PathBuf;

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

use super::resource::ResourceConfig;
use super::resource_server::{check_client_id, check_credential};
use super::trusted_issuer::{KEYS_URL_RULE, fetchable};
use super::trusted_workload::TrustedWorkload;
use crate::crypto::HandleKey;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineClientConfig {
    /// Its client id, and the `sub` of its tokens.
    pub client_id: String,
    /// What the audit and the operator call it ("Nightly report agent").
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// A JWK Set file with its public keys, for `private_key_jwt` (RFC 7523 §2.2): the
    /// credential to prefer, since the shim then holds nothing that signs for it.
    pub(crate) jwks_file: Option<PathBuf>,
    /// The URL of its JWK Set, for `private_key_jwt` with keys it rotates itself: fetched
    /// like a metadata-document client's keys (https only, no private addresses; cached, and
    /// fetched again when an assertion names a key the set lacks).
    #[serde(default)]
    pub(crate) jwks_uri: Option<String>,
    /// Hex SHA-256 of its client secret (`client_secret_basic` or `_post`).
    pub(crate) secret_sha256: Option<HandleKey>,
    /// The minted resources it may get tokens for, by URI.
    pub(crate) resources: Vec<String>,
    /// The scopes it may be granted (MCP-facing names of those resources' scopes); all of a
    /// resource's when empty.
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    /// Set by the operator to stop the client without removing it: it gets no token, and the
    /// tokens it holds stop counting at the next reload.
    #[serde(default)]
    pub(crate) disabled: bool,
    /// The keys of `jwks_file`, read when the file is loaded.
    #[serde(skip)]
    pub(crate) jwks: Option<JwkSet>,
}

impl MachineClientConfig {
    /// Problems with the table at `[[machine_clients]][i]`, as (field, message); reads
    /// `jwks_file`. `client_ids` holds the ids of the tenant's other configured clients.
    pub(crate) fn check(
        &mut self,
        resources: &[ResourceConfig],
        client_ids: &mut std::collections::HashSet<String>,
        workloads: &[TrustedWorkload],
        loopback_allowed: bool,
    ) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = check_client_id(&self.client_id, client_ids)
            .map(|m| ("client_id", m))
            .into_iter()
            .collect();
        // A client that some workload becomes needs no credential of its own: its platform's
        // token is the credential (workload identity federation).
        let federated = workloads.iter().any(|w| w.machine_client == self.client_id);
        if let Some(uri) = &self.jwks_uri {
            if self.secret_sha256.is_some() || self.jwks_file.is_some() {
                out.push((
                    "jwks_uri",
                    "give one of jwks_uri, jwks_file and secret_sha256".to_owned(),
                ));
            }
            if !url::Url::parse(uri).is_ok_and(|u| fetchable(&u, loopback_allowed)) {
                out.push(("jwks_uri", format!("'{uri}' {KEYS_URL_RULE}")));
            }
        } else if !(federated && self.secret_sha256.is_none() && self.jwks_file.is_none()) {
            out.extend(check_credential(
                &mut self.secret_sha256,
                self.jwks_file.as_deref(),
                &mut self.jwks,
            ));
        }
        if self.resources.is_empty() {
            out.push((
                "resources",
                "name at least one resource it may get tokens for".to_owned(),
            ));
        }
        let mut reached: Vec<&ResourceConfig> = Vec::new();
        for r in &self.resources {
            match resources.iter().find(|c| c.uri.matches(r)) {
                None => out.push(("resources", format!("'{r}' is not the uri of a resource in this file"))),
                Some(c) if !c.is_minted() => out.push(("resources", format!("'{r}' has passthrough tokens, which only the IdP issues, and it issues none to a client of the shim's; set token = \"minted\" on it"))),
                Some(c) => reached.push(c),
            }
        }
        for s in &self.scopes {
            if !reached
                .iter()
                .any(|r| r.scopes.iter().any(|rs| &rs.name == s))
            {
                out.push((
                    "scopes",
                    format!("'{s}' is not a scope of the resources it may reach"),
                ));
            }
        }
        out
    }

    /// How it proves who it is, for the operator's listing.
    pub(crate) fn credential_kind(&self, federated: bool) -> &'static str {
        match (&self.jwks_file, &self.jwks_uri, &self.secret_sha256) {
            (Some(_), _, _) => "private_key_jwt (jwks_file)",
            (_, Some(_), _) => "private_key_jwt (jwks_uri)",
            (_, _, Some(_)) => "client_secret",
            _ if federated => "workload identity only",
            _ => "none",
        }
    }

    /// Whether it may get tokens for the resource `uri` (never while disabled).
    pub(crate) fn reaches(&self, uri: &str) -> bool {
        !self.disabled
            && self
                .resources
                .iter()
                .any(|r| crate::domain::ResourceUri::new(r.as_str()).matches(uri))
    }

    /// Whether it may be granted the scope `name` (of a resource it reaches).
    pub(crate) fn may_have(&self, name: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|s| s == name)
    }
}
