//! `private_key_jwt` client assertions (RFC 7523 §2.2, §3; OpenID Connect Core §9): a JWT the
//! client signs with a key from its published JWK Set. This module checks one against the
//! keys; finding the keys and spending the `jti` is `client_auth.rs`'s job.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Signature algorithms accepted: asymmetric only (a shared-key HMAC would need a shared
/// secret, which a metadata document cannot hold; `none` signs nothing).
pub(crate) const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
/// Their names, for the metadata document.
pub(crate) const ALGORITHM_NAMES: [&str; 9] = crate::domain::ASYMMETRIC_JWS_ALGORITHMS;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY: u64 = 60;
/// Longest an assertion may live (`exp` after now). The MCP TypeScript SDK signs for 300 s;
/// the bound also bounds how long a spent `jti` must be remembered.
pub(crate) const MAX_LIFETIME: u64 = 900;

/// An assertion whose signature and claims checked out.
#[derive(Debug)]
pub(crate) struct VerifiedAssertion {
    pub(crate) jti: String,
    pub(crate) exp: u64,
}

/// Why an assertion was refused; each says which rule failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AssertionError {
    #[error("the client assertion is not a JWT")]
    Malformed,
    #[error(
        "the client assertion is signed with '{0}'; use one of RS256, PS256, ES256 (or RS384, RS512, PS384, PS512, ES384, EdDSA)"
    )]
    Algorithm(String),
    /// No key of the client's JWK Set fits (the caller may fetch the set again once).
    #[error(
        "no key in the client's JWK Set matches the assertion's kid and algorithm; publish the key in jwks or at jwks_uri"
    )]
    NoKey,
    #[error("the client assertion's signature does not verify with the client's keys")]
    Signature,
    #[error("the client assertion has expired")]
    Expired,
    #[error("the client assertion is not valid yet (nbf or iat in the future)")]
    NotYetValid,
    #[error(
        "the client assertion lives too long: exp may be at most {MAX_LIFETIME} seconds from now"
    )]
    TooLong,
    #[error("the client assertion's {0}")]
    Claim(&'static str),
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default)]
    aud: Audience,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    jti: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
    #[default]
    Missing,
}

impl Audience {
    fn contains_any(&self, accepted: &[&str]) -> bool {
        match self {
            Self::One(a) => accepted.contains(&a.as_str()),
            Self::Many(list) => list.iter().any(|a| accepted.contains(&a.as_str())),
            Self::Missing => false,
        }
    }
}

/// The `sub` of an assertion, read without verifying it: the client id, when the request
/// does not name one (RFC 7523 §3 makes `client_id` optional with an assertion).
pub(crate) fn unverified_subject(assertion: &str) -> Option<String> {
    crate::crypto::jwt::unverified_claims::<Claims>(assertion)
        .ok()?
        .sub
}

/// Checks `assertion` as `client_id`'s, signed by one of `keys`, for one of `audiences` (the
/// endpoint called, the token endpoint or the issuer).
pub(crate) fn verify(
    assertion: &str,
    client_id: &str,
    keys: &JwkSet,
    audiences: &[&str],
    now: u64,
) -> Result<VerifiedAssertion, AssertionError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| AssertionError::Malformed)?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(AssertionError::Algorithm(format!("{:?}", header.alg)));
    }
    let claims = match signed_claims::<Claims>(assertion, keys, header.kid.as_deref(), header.alg) {
        Ok(c) => c,
        Err(Unverified::NoKey) => return Err(AssertionError::NoKey),
        Err(Unverified::Signature) => return Err(AssertionError::Signature),
    };
    check_claims(&claims, client_id, audiences, now)
}

/// Why `signed_claims` found no claims.
pub(crate) enum Unverified {
    /// No key of the set fits `kid` and the algorithm.
    NoKey,
    /// None of the keys that fit verifies the signature.
    Signature,
}

/// The claims of the JWS `token`, once its signature verifies with `alg` and a key of `keys`
/// that fits it (and carries `kid`, when one is given). No claim is checked: each caller
/// checks its own, with descriptions that say which one failed.
pub(crate) fn signed_claims<T: serde::de::DeserializeOwned>(
    token: &str,
    keys: &JwkSet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<T, Unverified> {
    let mut candidates = keys
        .keys
        .iter()
        .filter(|k| kid.is_none_or(|id| k.common.key_id.as_deref() == Some(id)))
        .filter(|k| fits(k, alg))
        .peekable();
    if candidates.peek().is_none() {
        return Err(Unverified::NoKey);
    }
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    candidates
        .filter_map(|k| DecodingKey::from_jwk(k).ok())
        .find_map(|key| jsonwebtoken::decode::<T>(token, &key, &validation).ok())
        .map(|d| d.claims)
        .ok_or(Unverified::Signature)
}

/// Whether a JWK can verify `alg`: the key type fits, it is not a shared key, and a key that
/// names its algorithm or use names this one.
pub(crate) fn fits(key: &Jwk, alg: Algorithm) -> bool {
    let family_fits = match &key.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        AlgorithmParameters::EllipticCurve(_) => matches!(alg, Algorithm::ES256 | Algorithm::ES384),
        AlgorithmParameters::OctetKeyPair(_) => alg == Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => false,
    };
    let alg_fits = key
        .common
        .key_algorithm
        .is_none_or(|ka| format!("{ka:?}") == format!("{alg:?}"));
    let use_fits = !matches!(
        key.common.public_key_use,
        Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
    );
    family_fits && alg_fits && use_fits
}

fn check_claims(
    claims: &Claims,
    client_id: &str,
    audiences: &[&str],
    now: u64,
) -> Result<VerifiedAssertion, AssertionError> {
    use AssertionError::Claim;
    if claims.iss.as_deref() != Some(client_id) {
        return Err(Claim("iss must be the client_id"));
    }
    if claims.sub.as_deref() != Some(client_id) {
        return Err(Claim("sub must be the client_id"));
    }
    if !claims.aud.contains_any(audiences) {
        return Err(Claim(
            "aud must name this server's token endpoint or its issuer",
        ));
    }
    let exp = claims.exp.ok_or(Claim("exp is missing"))?;
    if exp.saturating_add(LEEWAY) <= now {
        return Err(AssertionError::Expired);
    }
    if exp > now + MAX_LIFETIME + LEEWAY {
        return Err(AssertionError::TooLong);
    }
    if claims.nbf.is_some_and(|t| t > now + LEEWAY) || claims.iat.is_some_and(|t| t > now + LEEWAY)
    {
        return Err(AssertionError::NotYetValid);
    }
    let jti = claims
        .jti
        .clone()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(Claim(
            "jti is missing (or longer than 256 characters); every assertion needs its own",
        ))?;
    Ok(VerifiedAssertion { jti, exp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const CLIENT: &str = "https://agent.example.com/client.json";
    const AUD: &str = "https://auth.example.com/t1/token";

    fn keys() -> (EncodingKey, JwkSet) {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let key = EncodingKey::from_rsa_pem(&std::fs::read(fixtures.join("app-key.pem")).unwrap())
            .unwrap();
        let jwks: JwkSet =
            serde_json::from_str(&std::fs::read_to_string(fixtures.join("app-jwks.json")).unwrap())
                .unwrap();
        (key, jwks)
    }

    fn sign(alg: Algorithm, claims: serde_json::Value, key: &EncodingKey) -> String {
        let mut h = Header::new(alg);
        h.kid = Some("app-key-1".into());
        jsonwebtoken::encode(&h, &claims, key).unwrap()
    }

    fn claims(now: u64) -> serde_json::Value {
        json!({"iss": CLIENT, "sub": CLIENT, "aud": AUD, "exp": now + 300, "iat": now, "jti": "j1"})
    }

    #[test]
    fn a_good_assertion_passes_and_each_rule_has_its_failure() {
        let (key, jwks) = keys();
        let now = 1_800_000_000;
        let ok = sign(Algorithm::RS256, claims(now), &key);
        let v = verify(&ok, CLIENT, &jwks, &[AUD], now).unwrap();
        assert_eq!((v.jti.as_str(), v.exp), ("j1", now + 300));
        let ps = sign(Algorithm::PS256, claims(now), &key);
        assert!(verify(&ps, CLIENT, &jwks, &[AUD], now).is_ok());

        let with = |k: &str, v: serde_json::Value| {
            let mut c = claims(now);
            c[k] = v;
            sign(Algorithm::RS256, c, &key)
        };
        let fail = |a: &str| verify(a, CLIENT, &jwks, &[AUD], now).unwrap_err();
        assert_eq!(
            fail(&with("iss", json!("x"))),
            AssertionError::Claim("iss must be the client_id")
        );
        assert_eq!(
            fail(&with("sub", json!("x"))),
            AssertionError::Claim("sub must be the client_id")
        );
        assert!(matches!(
            fail(&with("aud", json!("https://elsewhere/token"))),
            AssertionError::Claim(_)
        ));
        assert!(verify(&with("aud", json!(["x", AUD])), CLIENT, &jwks, &[AUD], now).is_ok());
        assert_eq!(
            fail(&with("exp", json!(now - 120))),
            AssertionError::Expired
        );
        assert_eq!(
            fail(&with("exp", json!(now + 3600))),
            AssertionError::TooLong
        );
        assert_eq!(
            fail(&with("nbf", json!(now + 600))),
            AssertionError::NotYetValid
        );
        assert!(matches!(
            fail(&with("jti", json!(""))),
            AssertionError::Claim(_)
        ));
        let mut tampered = ok.clone();
        tampered.truncate(ok.len() - 4);
        tampered.push_str("AAAA");
        assert_eq!(fail(&tampered), AssertionError::Signature);
        assert_eq!(fail("not-a-jwt"), AssertionError::Malformed);
        // HS256 signed with the public key's bytes, and `none`: refused by algorithm.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(now),
            &EncodingKey::from_secret(b"public"),
        )
        .unwrap();
        assert!(matches!(fail(&hs), AssertionError::Algorithm(_)));
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some("another-key".into());
        let other_kid = jsonwebtoken::encode(&h, &claims(now), &key).unwrap();
        assert_eq!(fail(&other_kid), AssertionError::NoKey);
        assert_eq!(
            verify(&ok, "https://other.example.com/c.json", &jwks, &[AUD], now).unwrap_err(),
            AssertionError::Claim("iss must be the client_id")
        );
    }

    #[test]
    fn the_subject_is_readable_before_verification() {
        let (key, _) = keys();
        let a = sign(Algorithm::RS256, claims(1), &key);
        assert_eq!(unverified_subject(&a).as_deref(), Some(CLIENT));
        assert_eq!(unverified_subject("x.y.z"), None);
    }
}
