//! `dcr-shim check --live`: each Entra app's credential tried at the token endpoint with a
//! client-credentials request for a token to itself (`{client id}/.default`), which any
//! registered app may ask for whatever permissions it holds. A wrong or expired secret, an
//! unknown app or an untrusted certificate shows as Entra's AADSTS code with what to fix, before
//! a user meets it at a login.

use super::credentials::LoadedCredential;
use super::error::UpstreamError;
use super::tokens::post_token_form;
use crate::config::Tenant;

/// What the probe of one app found.
pub struct Probed {
    pub app: String,
    /// `Ok` with nothing to say, or what went wrong and what to do.
    pub outcome: Result<(), String>,
}

/// Probes every app of `tenant` that has a credential, at `token_endpoint`.
pub async fn probe_credentials(
    tenant: &Tenant,
    http: &reqwest::Client,
    token_endpoint: &str,
    now: u64,
) -> Vec<Probed> {
    let mut out = Vec::new();
    for app in tenant.apps() {
        let credential = match LoadedCredential::load(&app.credential) {
            Ok(LoadedCredential::None) => continue,
            Ok(c) => c,
            Err(e) => {
                out.push(Probed {
                    app: app.name.clone(),
                    outcome: Err(e),
                });
                continue;
            }
        };
        let form = vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), format!("{}/.default", app.client_id)),
        ];
        let outcome = post_token_form(http, &credential, &app.client_id, token_endpoint, form, now)
            .await
            .map(drop)
            .map_err(|e| match e {
                UpstreamError::Idp(idp) => {
                    format!("{} ({}); {}", idp.said(), idp.error, idp.operator_advice())
                }
                UpstreamError::Unavailable(why) => format!("the IdP could not be asked: {why}"),
                UpstreamError::Misconfigured(why) => why,
            });
        out.push(Probed {
            app: app.name.clone(),
            outcome,
        });
    }
    out
}
