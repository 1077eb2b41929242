//! The ID token an IdP sends with its tokens (OpenID Connect Core §3.1.3.7): checked, and who
//! logged in read from it. Used at the login's callback and where a minted token's claims are
//! read again at refresh.

use serde_json::{Map, Value};

/// Who logged in, from the ID token: the stable id at the IdP (Entra's `oid`, the same in
/// every app of the directory, else `sub`), and for the audit log Entra's directory (`tid`) and
/// sign-in name (`upn`, else `preferred_username`).
#[derive(Clone, Debug)]
pub(crate) struct IdTokenUser {
    pub(crate) subject: String,
    pub(crate) tid: Option<String>,
    pub(crate) upn: Option<String>,
    /// When the user authenticated at the IdP (`auth_time`, else the token's `iat`).
    pub(crate) auth_time: Option<u64>,
    /// Every claim of the ID token, for a minted resource's copied claims.
    pub(crate) claims: Map<String, Value>,
}

/// Checks the claims of an ID token received directly from the IdP's token endpoint over TLS
/// (OpenID Connect Core §3.1.3.7: TLS server validation may stand in for the signature check
/// in the code flow): issuer (Entra's `{tenantid}` placeholder filled from `tid`), audience,
/// nonce (none is sent with a refresh: OpenID Connect Core §12.2) and expiry. Returns who
/// logged in.
pub(crate) fn check_id_token(
    id_token: &str,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    now: u64,
) -> Result<IdTokenUser, String> {
    let claims: Map<String, Value> =
        crate::crypto::jwt::unverified_claims(id_token).map_err(|e| e.to_string())?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    let expected_issuer = match text("tid") {
        Some(tid) => issuer.replace("{tenantid}", tid),
        None => issuer.to_owned(),
    };
    if text("iss") != Some(expected_issuer.as_str()) {
        return Err(format!(
            "iss is {:?}, expected {expected_issuer}",
            text("iss")
        ));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(a)) => a.iter().any(|v| v == client_id),
        _ => false,
    };
    if !aud_ok {
        return Err(format!(
            "aud does not contain the app's client id {client_id}"
        ));
    }
    if let Some(nonce) = nonce
        && text("nonce") != Some(nonce)
    {
        return Err("nonce does not match the one sent".into());
    }
    if claims
        .get("exp")
        .and_then(Value::as_u64)
        .is_none_or(|exp| exp.saturating_add(300) < now)
    {
        return Err("the ID token has expired".into());
    }
    // What is recorded on the grant, logged and listed: bounded and printable, or refused.
    let recorded = |k: &str| -> Result<Option<String>, String> {
        text(k)
            .map(|v| {
                crate::domain::text::recordable_claim(v)
                    .map(str::to_owned)
                    .map_err(|why| format!("the claim {k} {why}"))
            })
            .transpose()
    };
    let time = |k: &str| claims.get(k).and_then(Value::as_u64);
    let subject = match recorded("oid")? {
        Some(oid) => oid,
        None => recorded("sub")?.unwrap_or_default(),
    };
    let upn = match recorded("upn")? {
        Some(upn) => Some(upn),
        None => recorded("preferred_username")?,
    };
    Ok(IdTokenUser {
        subject,
        tid: recorded("tid")?,
        upn,
        auth_time: time("auth_time").or(time("iat")),
        claims,
    })
}
