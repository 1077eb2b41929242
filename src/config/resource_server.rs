//! `[[resource_servers]]`: the MCP servers (and other APIs) that call the shim themselves, to
//! introspect minted tokens (RFC 7662) and, later, to exchange them (RFC 8693). Each is a
//! confidential client of the tenant, named in its file, never registered dynamically.

use std::path::PathBuf;

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

use super::resource::ResourceConfig;
use crate::crypto::HandleKey;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServerConfig {
    pub client_id: String,
    /// Hex SHA-256 of its client secret (`printf %s "$SECRET" | sha256sum`): the file holds
    /// no secret, only what checks one.
    pub(crate) secret_sha256: Option<HandleKey>,
    /// A JWK Set file with its public keys, for `private_key_jwt` (RFC 7523 §2.2).
    pub(crate) jwks_file: Option<PathBuf>,
    /// The resources whose tokens it may introspect, by URI; tokens for others are inactive
    /// to it.
    pub(crate) resources: Vec<String>,
    /// The keys of `jwks_file`, read when the file is loaded.
    #[serde(skip)]
    pub(crate) jwks: Option<JwkSet>,
}

/// The JWK Set in `file`, with at least one key; else what is wrong with it, naming the file.
pub(crate) fn read_jwks_file(file: &std::path::Path) -> Result<JwkSet, String> {
    match std::fs::read(file)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<JwkSet>(&b).map_err(|e| e.to_string()))
    {
        Ok(set) if !set.keys.is_empty() => Ok(set),
        Ok(_) => Err(format!("{} holds no key", file.display())),
        Err(e) => Err(format!("{} is not a readable JWK Set: {e}", file.display())),
    }
}

/// What is wrong with the `client_id` of a client named in the tenant file (a resource server
/// or a machine client), if anything; `client_ids` holds those of the others.
pub(crate) fn check_client_id(
    client_id: &str,
    client_ids: &mut std::collections::HashSet<String>,
) -> Option<String> {
    if client_id.is_empty() || client_id.contains(':') {
        Some("must be a plain name without ':' (it can then never be taken by a registered client's id or a metadata document URL)".to_owned())
    } else if !client_ids.insert(client_id.to_owned()) {
        Some(format!(
            "'{client_id}' is used by another resource server or machine client"
        ))
    } else {
        None
    }
}

/// Problems with a configured client's credential (exactly one of a secret's hash and a JWK
/// Set file), as (field, message); normalizes the hash and reads the keys.
pub(crate) fn check_credential(
    secret_sha256: &mut Option<HandleKey>,
    jwks_file: Option<&std::path::Path>,
    jwks: &mut Option<JwkSet>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match (secret_sha256.as_ref(), jwks_file) {
        (Some(_), Some(_)) | (None, None) => out.push((
            "secret_sha256",
            "give exactly one of secret_sha256 (client_secret_basic or _post) and jwks_file (private_key_jwt)".to_owned(),
        )),
        (Some(hash), None) => {
            let hex = hash.as_str().to_owned();
            let ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                out.push(("secret_sha256", "must be 64 hex digits: the SHA-256 of the secret, as printf %s \"$SECRET\" | sha256sum prints it".to_owned()));
            }
            *secret_sha256 = Some(HandleKey::from_hex(&hex));
        }
        (None, Some(file)) => match read_jwks_file(file) {
            Ok(set) => *jwks = Some(set),
            Err(e) => out.push(("jwks_file", e)),
        },
    }
    out
}

impl ResourceServerConfig {
    /// Problems with the table at `[[resource_servers]][i]`, as (field, message); reads
    /// `jwks_file`.
    pub(crate) fn check(
        &mut self,
        resources: &[ResourceConfig],
        client_ids: &mut std::collections::HashSet<String>,
    ) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = check_client_id(&self.client_id, client_ids)
            .map(|m| ("client_id", m))
            .into_iter()
            .collect();
        out.extend(check_credential(
            &mut self.secret_sha256,
            self.jwks_file.as_deref(),
            &mut self.jwks,
        ));
        if self.resources.is_empty() {
            out.push((
                "resources",
                "name at least one resource whose tokens it may introspect".to_owned(),
            ));
        }
        for r in &self.resources {
            match resources.iter().find(|c| c.uri.matches(r)) {
                None => out.push(("resources", format!("'{r}' is not the uri of a resource in this file"))),
                Some(c) if !c.is_minted() => out.push(("resources", format!("'{r}' has passthrough tokens, which only the IdP can introspect; set token = \"minted\" on it"))),
                Some(_) => {}
            }
        }
        out
    }

    /// Whether it may see tokens for `audience`.
    pub(crate) fn serves(&self, audience: &str) -> bool {
        self.resources
            .iter()
            .any(|r| crate::domain::ResourceUri::new(r.as_str()).matches(audience))
    }
}
