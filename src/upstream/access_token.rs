//! The IdP's own access tokens, checked where a passthrough gateway resource receives them
//! (`docs/gateway.md`), the way Microsoft's docs tell an API to check Entra's: the signature
//! with the IdP's published keys (`idp_keys.rs`), an issuer of the tenant's directory (v2.0
//! `https://login.microsoftonline.com/{tid}/v2.0`, or v1.0 `https://sts.windows.net/{tid}/`,
//! which an API whose manifest leaves `accessTokenAcceptedVersion` unset receives), an
//! audience of the API (its App ID URI or its application id), the times, scopes (`scp`) or
//! app roles, and, so that no other app of the directory with permission to the API walks past
//! registration and consent, an app that is one of the tenant's own registrations (v2.0 `azp`,
//! v1.0 `appid`, RFC 9068 `client_id`). An ID token is not an access token: it names no app.
//!
//! What passes is put in the shape of a minted token's claims (`sub`, `client_id`, `scope`
//! with the resource's MCP-facing scope names, `roles`, `groups`, the authentication claims),
//! so that the rules, the identity JWT and the audit read one shape.

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::config::resource::ScopeConfig;

/// How far the clocks of the IdP and this server may differ, for `nbf` (a token is never
/// taken after its `exp`: an answer lives no longer than the token it was asked with).
const CLOCK_SKEW: u64 = 60;

/// Signature algorithms an IdP's access token may use: asymmetric only (a shared-key token
/// could be made by anyone holding the key, and `none` by anyone at all).
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Claims the IdP's token passes on as they are, when present: who the user is and how they
/// signed in (RFC 9068 §2.2.2 and §2.2.3, Entra's `acrs` and `tid`).
const PASSED_ON: [&str; 10] = [
    "roles",
    "groups",
    "acr",
    "amr",
    "acrs",
    "auth_time",
    "tid",
    "upn",
    "preferred_username",
    "email",
];

/// What a resource accepts of the IdP's access tokens.
pub(crate) struct Expected<'a> {
    /// The issuers of the tenant's IdP (Entra: its v2.0 and v1.0 forms).
    pub(crate) issuers: Vec<String>,
    /// The audiences of the API (`GatewayConfig::idp_audiences`).
    pub(crate) audiences: Vec<String>,
    /// The client ids of the tenant's app registrations.
    pub(crate) apps: Vec<&'a str>,
    /// The resource's scopes, to name the token's scopes as the resource does.
    pub(crate) scopes: &'a [ScopeConfig],
}

/// The issuers an access token of an IdP whose discovered issuer is `issuer` may carry:
/// itself, and for Entra's public cloud the v1.0 form of the same directory.
pub(crate) fn issuers_of(issuer: &str) -> Vec<String> {
    let mut out = vec![issuer.trim_end_matches('/').to_owned()];
    if let Some(tid) = issuer
        .strip_prefix("https://login.microsoftonline.com/")
        .and_then(|rest| rest.strip_suffix("/v2.0"))
        .filter(|tid| !tid.contains('/'))
    {
        out.push(format!("https://sts.windows.net/{tid}/"));
    }
    out
}

/// The algorithm and key id of `token`'s header, if it may be an IdP access token at all.
pub(crate) fn signing_of(token: &str) -> Result<(Algorithm, Option<String>), String> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| "the token is not a JWT the IdP signed".to_owned())?;
    // An ID token or another JWT typed as something else is not an access token.
    if let Some(typ) = header.typ.as_deref()
        && !["JWT", "at+jwt", "application/at+jwt"]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(typ))
    {
        return Err(format!(
            "the token's type is '{typ}', not an access token's"
        ));
    }
    if !ALGORITHMS.contains(&header.alg) {
        return Err(format!(
            "the token is signed with {:?}; the IdP's tokens are checked with its public keys only",
            header.alg
        ));
    }
    // Entra's tokens for Microsoft Graph carry a `nonce` in the header and cannot be checked
    // by anyone but Graph.
    if header_has_nonce(token) {
        return Err("the token is for Microsoft Graph (its header has a nonce), not for this resource's API".into());
    }
    Ok((header.alg, header.kid))
}

fn header_has_nonce(token: &str) -> bool {
    use base64::Engine;
    let Some(first) = token.split('.').next() else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .is_some_and(|h| h.contains_key("nonce"))
}

/// Checks the signed claims of an IdP access token against `expected`; the caller's claims in
/// a minted token's shape, or why not.
pub(crate) fn check(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
    now: u64,
) -> Result<Map<String, Value>, String> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    let issuer = text("iss").unwrap_or_default();
    if !expected
        .issuers
        .iter()
        .any(|i| i == issuer.trim_end_matches('/') || i == issuer)
    {
        return Err(format!(
            "the token's issuer '{issuer}' is not the tenant's IdP"
        ));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => expected.audiences.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| expected.audiences.iter().any(|e| e == a)),
        _ => false,
    };
    if !audience_ok {
        return Err("the token is for another audience than this resource's API".into());
    }
    check_times(claims, now)?;
    // An OpenID Connect ID token may name its app in `azp` too; its `nonce` or `at_hash` gives
    // it away.
    if claims.contains_key("nonce") || claims.contains_key("at_hash") {
        return Err(
            "the token is an ID token (it has a nonce or at_hash), not an access token".into(),
        );
    }
    let app = ["azp", "appid", "client_id"]
        .into_iter()
        .find_map(text)
        .ok_or(
            "the token names no app (azp, appid or client_id): an ID token is not an access token",
        )?;
    if !expected.apps.contains(&app) {
        return Err(format!(
            "the token was issued to the app {app}, which is not one of this tenant's app registrations"
        ));
    }
    let subject = text("oid")
        .or_else(|| text("sub"))
        .filter(|s| !s.is_empty())
        .ok_or("the token names no user or workload (oid or sub)")?;
    let granted = text("scp").or_else(|| text("scope")).unwrap_or_default();
    if granted.trim().is_empty() && !claims.contains_key("roles") {
        return Err("the token carries neither scopes nor app roles".into());
    }
    let mut out = Map::new();
    out.insert("sub".into(), Value::from(subject));
    out.insert("client_id".into(), Value::from(app));
    out.insert(
        "scope".into(),
        Value::from(scope_names(granted, expected.scopes)),
    );
    for key in ["iss", "aud", "exp"] {
        if let Some(v) = claims.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    for key in PASSED_ON {
        if let Some(v) = claims.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    Ok(out)
}

fn check_times(claims: &Map<String, Value>, now: u64) -> Result<(), String> {
    let time = |k: &str| claims.get(k).and_then(Value::as_u64);
    match time("exp") {
        None => return Err("the token has no expiry (exp)".into()),
        Some(exp) if exp <= now => {
            return Err("the token has expired".into());
        }
        Some(_) => {}
    }
    if time("nbf").is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW)) {
        return Err("the token is not valid yet (nbf)".into());
    }
    Ok(())
}

/// The resource's names for the upstream scopes `granted` (Entra's `scp` names a scope without
/// its API: `Files.Read` for `api://files/Files.Read`); scopes it does not know are dropped.
fn scope_names(granted: &str, scopes: &[ScopeConfig]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for item in granted.split(' ').filter(|s| !s.is_empty()) {
        for s in scopes {
            let short = s.upstream.rsplit_once('/').map(|(_, last)| last);
            if (s.upstream == item || short == Some(item)) && !names.contains(&s.name.as_str()) {
                names.push(&s.name);
            }
        }
    }
    names.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TID: &str = "11111111-2222-3333-4444-555555555555";
    const APP: &str = "aaaaaaaa-0000-0000-0000-000000000001";
    const API: &str = "bbbbbbbb-0000-0000-0000-00000000000a";

    fn scopes() -> Vec<ScopeConfig> {
        vec![
            ScopeConfig {
                name: "files.read".into(),
                upstream: "api://files/Files.Read".into(),
                description: None,
                acr_values: Vec::new(),
            },
            ScopeConfig {
                name: "files.write".into(),
                upstream: "api://files/Files.Write".into(),
                description: None,
                acr_values: Vec::new(),
            },
        ]
    }

    fn expected(scopes: &[ScopeConfig]) -> Expected<'_> {
        Expected {
            issuers: issuers_of(&format!("https://login.microsoftonline.com/{TID}/v2.0")),
            audiences: vec!["api://files".into(), API.into()],
            apps: vec![APP],
            scopes,
        }
    }

    fn v2() -> Map<String, Value> {
        json!({
            "iss": format!("https://login.microsoftonline.com/{TID}/v2.0"),
            "aud": API, "azp": APP, "oid": "user-oid", "sub": "pairwise", "tid": TID,
            "scp": "Files.Read Other.Scope", "exp": 2_000, "nbf": 900, "ver": "2.0",
            "roles": ["Files.Admin"], "acrs": ["c1"]
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn v1() -> Map<String, Value> {
        json!({
            "iss": format!("https://sts.windows.net/{TID}/"),
            "aud": "api://files", "appid": APP, "oid": "user-oid", "tid": TID,
            "scp": "Files.Read Files.Write", "exp": 2_000, "ver": "1.0"
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn entra_v2_and_v1_tokens_come_out_as_a_minted_tokens_claims() {
        let s = scopes();
        let out = check(&v2(), &expected(&s), 1_000).unwrap();
        assert_eq!(out["sub"], "user-oid", "oid, the same in every app");
        assert_eq!(out["client_id"], APP);
        assert_eq!(out["scope"], "files.read", "an unknown scope is dropped");
        assert_eq!(out["roles"], json!(["Files.Admin"]));
        assert_eq!(out["acrs"], json!(["c1"]));
        let out = check(&v1(), &expected(&s), 1_000).unwrap();
        assert_eq!(out["client_id"], APP, "v1.0 names the app appid");
        assert_eq!(out["scope"], "files.read files.write");
    }

    #[test]
    fn what_is_not_the_tenants_apis_token_is_refused_with_the_reason() {
        let s = scopes();
        let other_directory =
            "https://login.microsoftonline.com/99999999-2222-3333-4444-555555555555/v2.0";
        // Each case changes the v2 token's claims (null removes one).
        let cases = [
            (
                "another directory",
                json!({"iss": other_directory}),
                "issuer",
            ),
            (
                "another API",
                json!({"aud": "00000003-0000-0000-c000-000000000000"}),
                "audience",
            ),
            (
                "another app of the directory",
                json!({"azp": "cccccccc-0000-0000-0000-000000000009"}),
                "not one of this tenant's app registrations",
            ),
            ("an ID token", json!({"azp": null}), "ID token"),
            (
                "an OIDC ID token with azp",
                json!({"nonce": "n"}),
                "ID token",
            ),
            (
                "an ID token with at_hash",
                json!({"at_hash": "h"}),
                "ID token",
            ),
            ("expired", json!({"exp": 900}), "expired"),
            ("expired this second", json!({"exp": 1_000}), "expired"),
            ("no expiry", json!({"exp": null}), "no expiry"),
            ("not yet valid", json!({"nbf": 1_100}), "not valid yet"),
            (
                "no scopes nor roles",
                json!({"scp": null, "roles": null}),
                "neither scopes nor app roles",
            ),
            (
                "no subject",
                json!({"oid": null, "sub": null}),
                "names no user",
            ),
        ];
        for (what, change, why) in cases {
            let mut claims = v2();
            for (k, v) in change.as_object().unwrap() {
                if v.is_null() {
                    claims.remove(k);
                } else {
                    claims.insert(k.clone(), v.clone());
                }
            }
            let err = check(&claims, &expected(&s), 1_000).unwrap_err();
            assert!(err.contains(why), "{what}: {err}");
        }
    }

    #[test]
    fn the_v1_issuer_is_the_public_clouds_alone() {
        assert_eq!(
            issuers_of(&format!("https://login.microsoftonline.com/{TID}/v2.0")),
            [
                format!("https://login.microsoftonline.com/{TID}/v2.0"),
                format!("https://sts.windows.net/{TID}/")
            ]
        );
        assert_eq!(
            issuers_of("https://login.microsoftonline.us/x/v2.0"),
            ["https://login.microsoftonline.us/x/v2.0"]
        );
        assert_eq!(
            issuers_of("http://127.0.0.1:9/idp/"),
            ["http://127.0.0.1:9/idp"]
        );
    }

    #[test]
    fn shared_key_none_and_graph_tokens_are_refused_by_their_header() {
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let token = |h: Value| format!("{}.{}.sig", b64(h), b64(json!({})));
        for (header, why) in [
            (json!({"alg": "none"}), "JWT"),
            (json!({"alg": "HS256"}), "public keys only"),
            (json!({"alg": "RS256", "nonce": "n"}), "Microsoft Graph"),
            (
                json!({"alg": "RS256", "typ": "dcr-shim-identity+jwt"}),
                "not an access token",
            ),
        ] {
            let err = signing_of(&token(header.clone())).unwrap_err();
            assert!(err.contains(why), "{header}: {err}");
        }
        let (alg, kid) = signing_of(&token(json!({"alg": "RS256", "kid": "k1"}))).unwrap();
        assert_eq!((alg, kid.as_deref()), (Algorithm::RS256, Some("k1")));
    }
}
