//! One `[[apps]]` table of a tenant file: a static app registration at the IdP, and how the
//! shim authenticates as it.

use std::path::PathBuf;

use serde::Deserialize;

/// A static app registration at the IdP that ephemeral clients are mapped onto.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppConfig {
    pub(crate) name: String,
    pub(crate) client_id: String,
    /// Upstream scope strings this app may request; empty means any scope of the resources.
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    pub(crate) credential: CredentialConfig,
}

/// How the shim authenticates as an app at the IdP's token endpoint. Secrets are referenced,
/// never written in the file.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum CredentialConfig {
    ClientSecret {
        secret_env: Option<String>,
        secret_file: Option<PathBuf>,
        #[serde(default)]
        method: SecretMethod,
    },
    PrivateKeyJwt {
        certificate_file: PathBuf,
        key_file: PathBuf,
        #[serde(default)]
        algorithm: SigningAlgorithm,
    },
    /// A workload- or managed-identity token, read from the file on every use.
    Federated {
        assertion_file: PathBuf,
    },
    /// An Azure managed identity trusted by the app as a federated credential
    /// (`upstream/managed_identity.rs`).
    ManagedIdentity {
        /// A user-assigned identity's client id; none means the system-assigned identity.
        client_id: Option<String>,
        /// An instance-metadata-style token endpoint to ask instead of the platform's own.
        endpoint: Option<String>,
        /// The assertion's audience; default `api://AzureADTokenExchange` (the public cloud).
        audience: Option<String>,
    },
    None,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SecretMethod {
    #[default]
    Basic,
    Post,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub(crate) enum SigningAlgorithm {
    #[default]
    PS256,
    RS256,
}
