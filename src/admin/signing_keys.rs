//! `/admin/v1/tenants/{tenant}/keys`: the signing keys of the tenant's minted tokens, listed
//! and rotated (`crate::minting::keys`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::request::{Problem, authorized, problem};
use crate::config::token_mode::DEFAULT_TOKEN_LIFETIME;
use crate::http::state::{AppState, unix_now};
use crate::minting::keys::JWKS_CACHED_UP_TO;

/// How long a new key is published before it signs, unless the request says otherwise:
/// longer than resource servers usually cache a JWKS.
pub(crate) const DEFAULT_PROPAGATION_SECONDS: u64 = 3600;

pub(super) async fn list_keys(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let (_, tenant) = authorized(&req, &state, &path)?;
    let now = unix_now();
    let keys = state
        .auth()
        .signing_keys()
        .list(&tenant.id)
        .await
        .map_err(|e| problem(503, "temporarily_unavailable", &e.to_string()))?;
    let keys: Vec<_> = keys
        .iter()
        .map(|k| {
            let state = match k.publish_until {
                Some(t) if t <= now => "gone",
                Some(_) => "retiring",
                None if k.sign_from > now => "next",
                None => "signing",
            };
            json!({"kid": k.kid, "alg": k.alg, "created_at": k.created_at, "sign_from": k.sign_from,
                   "publish_until": k.publish_until, "state": state})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "keys": keys })))
}

#[derive(Deserialize, Default)]
pub(super) struct RotateRequest {
    propagation_seconds: Option<u64>,
    /// Remove every other key from the JWKS at once (a key that may have leaked).
    #[serde(default)]
    drop_old: bool,
}

pub(super) async fn rotate_keys(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: Option<web::Json<RotateRequest>>,
) -> Result<HttpResponse, Problem> {
    let (by, tenant) = authorized(&req, &state, &path)?;
    if !tenant.signs_tokens() {
        return Err(problem(
            400,
            "invalid_request",
            "this tenant has no resource with token = \"minted\" nor a gateway resource that sends identity JWTs: it signs nothing, so it has no keys to rotate",
        ));
    }
    let body = body.map(web::Json::into_inner).unwrap_or_default();
    let propagation = body
        .propagation_seconds
        .unwrap_or(DEFAULT_PROPAGATION_SECONDS);
    // The old key stays published until the longest-lived token it may still sign expires.
    let longest = tenant
        .resources()
        .iter()
        .filter_map(|r| r.minted())
        .map(|m| m.lifetime())
        .max()
        .unwrap_or(DEFAULT_TOKEN_LIFETIME)
        .as_secs();
    let rotation = state
        .auth()
        .signing_keys()
        .rotate(
            &tenant.id,
            tenant.token_signing_alg(),
            unix_now(),
            propagation,
            longest,
            body.drop_old,
        )
        .await
        .map_err(|e| problem(503, "temporarily_unavailable", &e.to_string()))?;
    tracing::info!(target: "audit", event = "admin_keys_rotated", by = %by, tenant = %tenant.id, kid = %rotation.kid,
        sign_from = rotation.sign_from, dropped = rotation.dropped.len());
    let mut answer = serde_json::to_value(&rotation).unwrap_or_default();
    if propagation < JWKS_CACHED_UP_TO {
        answer["warning"] = json!(format!(
            "a propagation delay under {JWKS_CACHED_UP_TO} s: resource servers that cached the JWKS may refuse tokens of the new key until they fetch it again"
        ));
    }
    if body.drop_old {
        answer["warning"] = json!(
            "the old keys left the JWKS: every token they signed is refused from now on, and clients must refresh or sign in again"
        );
    }
    Ok(HttpResponse::Ok().json(answer))
}
