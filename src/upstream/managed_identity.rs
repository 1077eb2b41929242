//! An Azure managed identity as the app's credential: the shim asks the platform's identity
//! endpoint for a token with the audience `api://AzureADTokenExchange` and presents it to Entra
//! as a federated client assertion, so that no secret or certificate exists anywhere
//! (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity).
//!
//! Two endpoints answer, chosen once at start:
//! - App Service and Container Apps set `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`; the request
//!   is `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…` with the header
//!   `X-IDENTITY-HEADER`
//!   (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference).
//! - Elsewhere (VMs, scale sets, AKS node identities) the instance metadata service:
//!   `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
//!   with `Metadata: true`
//!   (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token).
//!
//! The token is cached until five minutes before it expires (five minutes when the endpoint
//! says no expiry); one caller asks at a time, and after a failure callers get the same error
//! for a few seconds instead of queueing on a dead endpoint. Both endpoints are called without
//! a proxy (they are local to the machine) and without following redirects.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Mutex;

use super::error::UpstreamError;
use crate::net::fetch::error_chain;

/// The audience Entra expects of a federated assertion in the public cloud.
pub(crate) const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The instance metadata service's token endpoint.
pub(crate) const IMDS_TOKEN_ENDPOINT: &str =
    "http://169.254.169.254/metadata/identity/oauth2/token";
/// A token is renewed this long before it expires.
const RENEW_BEFORE_EXPIRY: u64 = 300;
/// How long one call to the identity endpoint may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a token is cached when the endpoint gives no expiry.
const DEFAULT_CACHE_SECONDS: u64 = 300;
/// How long a failure is answered from memory before the endpoint is asked again.
const FAILURE_BACKOFF_SECONDS: u64 = 5;

/// Which identity endpoint to ask, and how.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IdentityEndpoint {
    Imds { url: String },
    AppService { url: String },
}

impl IdentityEndpoint {
    /// App Service's endpoint when its two environment variables are set, else IMDS at
    /// `imds_override` or its fixed address.
    fn choose(
        imds_override: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> (Self, Option<SecretString>) {
        let set = |name: &str| env(name).filter(|v| !v.is_empty());
        match (
            imds_override,
            set("IDENTITY_ENDPOINT"),
            set("IDENTITY_HEADER"),
        ) {
            (None, Some(url), Some(header)) => {
                (Self::AppService { url }, Some(SecretString::from(header)))
            }
            (url, ..) => (
                Self::Imds {
                    url: url.unwrap_or(IMDS_TOKEN_ENDPOINT).to_owned(),
                },
                None,
            ),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Imds { url } => format!("the instance metadata service at {url}"),
            Self::AppService { url } => format!("the App Service identity endpoint {url}"),
        }
    }
}

enum Cached {
    Token { token: SecretString, renew_at: u64 },
    Failed { error: UpstreamError, until: u64 },
}

/// A managed identity, ready to hand out assertions.
pub(crate) struct ManagedIdentity {
    endpoint: IdentityEndpoint,
    /// App Service's `IDENTITY_HEADER`.
    header: Option<SecretString>,
    /// A user-assigned identity's client id; none means the system-assigned identity.
    identity_client_id: Option<String>,
    audience: String,
    http: reqwest::Client,
    /// Held across the call to the endpoint: one caller asks, the others wait for its answer.
    cached: Mutex<Option<Cached>>,
}

impl ManagedIdentity {
    pub(crate) fn load(
        identity_client_id: Option<&str>,
        endpoint: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Self, String> {
        let (endpoint, header) = IdentityEndpoint::choose(endpoint, |k| std::env::var(k).ok());
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for the managed identity: {e}"))?;
        Ok(Self {
            endpoint,
            header,
            identity_client_id: identity_client_id.map(str::to_owned),
            audience: audience.unwrap_or(TOKEN_EXCHANGE_AUDIENCE).to_owned(),
            http,
            cached: Mutex::new(None),
        })
    }

    /// The identity's token for the exchange audience, from the cache or the endpoint.
    pub(crate) async fn assertion(&self, now: u64) -> Result<String, UpstreamError> {
        let mut cached = self.cached.lock().await;
        match cached.as_ref() {
            Some(Cached::Token { token, renew_at }) if now < *renew_at => {
                return Ok(token.expose_secret().to_owned());
            }
            Some(Cached::Failed { error, until }) if now < *until => return Err(error.clone()),
            _ => {}
        }
        match self.fetch(now).await {
            Ok((token, expires_on)) => {
                let renew_at = expires_on.map_or(now + DEFAULT_CACHE_SECONDS, |exp| {
                    exp.saturating_sub(RENEW_BEFORE_EXPIRY)
                });
                *cached = Some(Cached::Token {
                    token: SecretString::from(token.clone()),
                    renew_at,
                });
                Ok(token)
            }
            Err(error) => {
                *cached = Some(Cached::Failed {
                    error: error.clone(),
                    until: now + FAILURE_BACKOFF_SECONDS,
                });
                Err(error)
            }
        }
    }

    async fn fetch(&self, now: u64) -> Result<(String, Option<u64>), UpstreamError> {
        let mut query = vec![("resource", self.audience.as_str())];
        if let Some(id) = &self.identity_client_id {
            query.push(("client_id", id));
        }
        let request = match (&self.endpoint, &self.header) {
            (IdentityEndpoint::AppService { url }, Some(header)) => self
                .http
                .get(url)
                .query(&[("api-version", "2019-08-01")])
                .header("X-IDENTITY-HEADER", header.expose_secret()),
            (IdentityEndpoint::Imds { url }, _) | (IdentityEndpoint::AppService { url }, None) => {
                self.http
                    .get(url)
                    .query(&[("api-version", "2018-02-01")])
                    .header("Metadata", "true")
            }
        };
        let whom = self.endpoint.describe();
        let response = request.query(&query).send().await.map_err(|e| {
            UpstreamError::Unavailable(format!(
                "cannot reach {whom} for the managed identity's token ({}); is the shim running on Azure with a managed identity assigned?",
                error_chain(&e)
            ))
        })?;
        let status = response.status();
        let body = super::http::read_capped_body(response)
            .await
            .map_err(|e| UpstreamError::Unavailable(format!("{whom}: {e}")))?;
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let token = json
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|_| status.is_success());
        let Some(token) = token else {
            let said = json
                .get("error_description")
                .or_else(|| json.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("no explanation");
            return Err(UpstreamError::Misconfigured(format!(
                "{whom} answered HTTP {status} without a token ({said}); check that the managed identity{} is assigned to this resource",
                self.identity_client_id
                    .as_deref()
                    .map(|id| format!(" with client id {id}"))
                    .unwrap_or_default()
            )));
        };
        Ok((token.to_owned(), expiry(&json, now)))
    }
}

/// When the token expires: `expires_on` (seconds since the epoch, a number or a string), else
/// `now + expires_in`.
fn expiry(json: &Value, now: u64) -> Option<u64> {
    let seconds = |k: &str| match json.get(k)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    seconds("expires_on").or_else(|| seconds("expires_in").map(|s| now + s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_service_when_both_variables_are_set_else_imds() {
        fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        }
        const APP_SERVICE: &[(&str, &str)] = &[
            ("IDENTITY_ENDPOINT", "http://localhost:4141/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ];
        assert_eq!(
            IdentityEndpoint::choose(None, env(APP_SERVICE)).0,
            IdentityEndpoint::AppService {
                url: "http://localhost:4141/msi/token".into()
            }
        );
        assert_eq!(
            IdentityEndpoint::choose(None, env(&[("IDENTITY_ENDPOINT", "http://x")])).0,
            IdentityEndpoint::Imds {
                url: IMDS_TOKEN_ENDPOINT.into()
            },
            "without the header it is not App Service"
        );
        assert_eq!(
            IdentityEndpoint::choose(Some("http://127.0.0.1:9/t"), env(APP_SERVICE)).0,
            IdentityEndpoint::Imds {
                url: "http://127.0.0.1:9/t".into()
            },
            "an endpoint in the tenant file wins"
        );
    }

    #[test]
    fn expiry_reads_numbers_strings_and_expires_in() {
        use serde_json::json;
        assert_eq!(
            expiry(&json!({"expires_on": "1700000000"}), 5),
            Some(1_700_000_000)
        );
        assert_eq!(
            expiry(&json!({"expires_on": 1_700_000_000u64}), 5),
            Some(1_700_000_000)
        );
        assert_eq!(expiry(&json!({"expires_in": "3600"}), 100), Some(3700));
        assert_eq!(
            expiry(&json!({"expires_on": "09/14/2017 00:00:00 PM +00:00"}), 5),
            None
        );
    }
}
