//! What every JWT presented as a grant (RFC 7523 §2.1) passes, whoever issued it: an ID-JAG
//! (`id_jag.rs`) or a workload's token (`workload.rs`). Its header and payload are read unverified
//! only to find the issuer and key; the algorithm must be one the issuer is trusted with
//! (never `none` or a shared secret); the signature must verify with the issuer's keys; `exp`,
//! `iat` and `nbf` must hold now and the lifetime stay within the issuer's limit. The `jti`
//! is spent in the store, so that a replay fails on every server sharing it.

use jsonwebtoken::Algorithm;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use super::Tokens;
use crate::config::Tenant;
use crate::config::trusted_issuer::AssertionIssuer;
use crate::oauth::client_assertion::signed_claims;
use crate::oauth::context::Caller;
use crate::oauth::error::{OAuthError, invalid_grant};
use crate::oauth::records::SpendOnce;

/// Larger assertions are refused unread.
pub(crate) const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// Clock skew allowed on `exp`, `iat` and `nbf`.
pub(super) const SKEW: u64 = 60;

pub(super) type JsonObject = Map<String, Value>;

/// Header and payload of a compact JWS, read before its signature is checked (to find the
/// issuer and key); nothing read here is trusted until `verify_signature`.
pub(super) fn split(assertion: &str) -> Result<(JsonObject, JsonObject), OAuthError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(invalid_grant(format!(
            "the assertion is larger than {} KiB",
            MAX_ASSERTION_BYTES / 1024
        )));
    }
    let jwt = crate::crypto::jwt::decode_unverified(assertion)
        .map_err(|e| invalid_grant(format!("the assertion is {e}")))?;
    Ok((jwt.header, jwt.claims))
}

/// The header's `typ`, empty when absent.
pub(super) fn typ(header: &JsonObject) -> &str {
    header.get("typ").and_then(Value::as_str).unwrap_or("")
}

/// The header's `alg`, if it is one `issuer` is trusted with; `none` and the HMAC algorithms
/// (a shared secret, which anyone holding it could sign with) never are.
pub(super) fn trusted_algorithm(
    header: &JsonObject,
    issuer: &dyn AssertionIssuer,
) -> Result<Algorithm, OAuthError> {
    let name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if name.eq_ignore_ascii_case("none") {
        return Err(invalid_grant(
            "alg none is refused: the assertion must be signed",
        ));
    }
    if name.starts_with("HS") {
        return Err(invalid_grant(format!(
            "alg {name} is refused: only the issuer's asymmetric keys are trusted"
        )));
    }
    Some(name)
        .filter(|n| issuer.algorithms().iter().any(|a| a == n))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            invalid_grant(format!(
                "alg '{name}' is not among the algorithms trusted for {}",
                issuer.issuer()
            ))
        })
}

/// The assertion's `exp`, `iat` and `nbf` at `now` (with `SKEW`), and a lifetime of at most
/// `max_lifetime` seconds: (`exp`, `iat`).
pub(super) fn check_times(
    claims: &JsonObject,
    issuer: &str,
    max_lifetime: u64,
    now: u64,
) -> Result<(u64, u64), OAuthError> {
    let time = |k: &str| claims.get(k).and_then(Value::as_u64);
    let exp = time("exp").ok_or_else(|| invalid_grant("exp is missing"))?;
    if exp.saturating_add(SKEW) <= now {
        return Err(invalid_grant("the assertion has expired"));
    }
    let iat = time("iat").ok_or_else(|| invalid_grant("iat is missing"))?;
    if iat > now + SKEW || time("nbf").is_some_and(|nbf| nbf > now + SKEW) {
        return Err(invalid_grant(
            "the assertion is not valid yet (iat or nbf in the future)",
        ));
    }
    if exp.saturating_sub(iat) > max_lifetime {
        return Err(invalid_grant(format!(
            "the assertion lives {} s, longer than the {max_lifetime} s allowed for {issuer}",
            exp.saturating_sub(iat),
        )));
    }
    Ok((exp, iat))
}

impl Tokens {
    /// Checks the assertion's signature with the issuer's keys (the set is fetched again once
    /// when `kid` names a key it lacks).
    pub(super) async fn verify_signature(
        &self,
        tenant: &Tenant,
        issuer: &dyn AssertionIssuer,
        assertion: &str,
        header: &JsonObject,
        caller: Caller,
    ) -> Result<(), OAuthError> {
        let alg = trusted_algorithm(header, issuer)?;
        let kid = header.get("kid").and_then(Value::as_str);
        let mut keys = self
            .registry
            .issuer_keys(tenant, issuer, false, caller)
            .await?;
        if let Some(k) = kid
            && keys.find(k).is_none()
        {
            keys = self
                .registry
                .issuer_keys(tenant, issuer, true, caller)
                .await?;
            if keys.find(k).is_none() {
                return Err(invalid_grant(format!(
                    "kid '{k}' is not in the JWK Set of {}",
                    issuer.issuer()
                )));
            }
        }
        // The claims are checked by the grant's module, each with its own description.
        signed_claims::<IgnoredAny>(assertion, &keys, kid, alg)
            .map(drop)
            .map_err(|_| {
                invalid_grant(format!(
                    "the signature does not verify with the keys of {}",
                    issuer.issuer()
                ))
            })
    }

    /// Spends an assertion's `jti` (with its kind and issuer) until it expires: `false` when it
    /// was spent already. Kept past the last second any server accepts the assertion, with room
    /// for clocks that disagree: a replay on a server behind never finds it swept.
    pub(super) async fn spend_jti(
        &self,
        tenant: &Tenant,
        scope: &str,
        jti: &str,
        client_id: &crate::domain::ClientId,
        exp: u64,
        now: u64,
    ) -> Result<bool, OAuthError> {
        let once = SpendOnce {
            scope,
            jti,
            client_id,
            until: exp.saturating_add(3 * SKEW),
        };
        Ok(once.spend(&self.records, &tenant.id, now).await?)
    }
}
