//! DPoP proofs (RFC 9449; MCP's SEP-1932): a client proves, with each request, that it holds
//! the private key its tokens are bound to. This module checks one proof against the request
//! it came with (§4.3), computes the key's thumbprint (RFC 7638, the `cnf.jkt` of a bound
//! token), and makes and checks the server's nonces (§8, §9). It knows no HTTP and keeps no
//! state: the token endpoint (`token/dpop_binding.rs`) and the gateway spend each proof's `jti`
//! where they keep such things.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::crypto::Signer;

/// The proof's media type (§4.2).
const PROOF_TYPE: &str = "dpop+jwt";
/// Larger proofs are refused unread (an RSA-4096 key in the header is under 1 KiB).
const MAX_PROOF_BYTES: usize = 4 * 1024;
/// How old a proof may be (its `iat`), and how far ahead of this server's clock.
pub(crate) const PROOF_MAX_AGE: u64 = 300;
const PROOF_MAX_AHEAD: u64 = 60;
/// A nonce is good in the window it was made in and the next (`NONCE_WINDOW` seconds each).
const NONCE_WINDOW: u64 = 300;
const NONCE_PURPOSE: &str = "dpop nonce v1";

/// The algorithms a proof may be signed with: asymmetric only (§4.3 step 5).
pub(crate) const ALGORITHMS: [&str; 9] = crate::domain::ASYMMETRIC_JWS_ALGORITHMS;

/// The request a proof must match.
pub(crate) struct Expected<'a> {
    /// The HTTP method (`htm`).
    pub(crate) method: &'a str,
    /// The URL the request was sent to, without query or fragment (`htu`).
    pub(crate) url: &'a str,
    /// The access token the request presents, whose hash the proof must carry (`ath`).
    pub(crate) access_token: Option<&'a str>,
    pub(crate) now: u64,
}

/// A proof that passed: its key's thumbprint, and what spends it.
#[derive(Debug)]
pub(crate) struct Proof {
    /// RFC 7638 SHA-256 thumbprint of the proof's key, base64url.
    pub(crate) jkt: String,
    pub(crate) jti: String,
    pub(crate) iat: u64,
    /// The server nonce it carries, if any.
    pub(crate) nonce: Option<String>,
}

impl Proof {
    /// Until when its `jti` must be remembered: past the last second any server accepts it.
    pub(crate) fn spent_until(&self) -> u64 {
        self.iat.saturating_add(PROOF_MAX_AGE + PROOF_MAX_AHEAD)
    }
}

/// The proof in a request's `DPoP` headers, if any: more than one is refused (§4.3 step 1).
pub(crate) fn single_header<'a>(
    mut values: impl Iterator<Item = &'a str>,
) -> Result<Option<&'a str>, String> {
    let first = values.next();
    if values.next().is_some() {
        return Err("more than one DPoP header".into());
    }
    match first {
        Some(v) if v.contains(',') => Err("more than one DPoP proof in the header".into()),
        other => Ok(other),
    }
}

/// Checks `proof` against the request (§4.3): typ, algorithm, public key, signature, `htm`,
/// `htu`, `iat`, `jti`, and `ath` when a token is presented. Each failure says which rule.
pub(crate) fn check(proof: &str, expected: &Expected<'_>) -> Result<Proof, String> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(format!(
            "the DPoP proof is larger than {} KiB",
            MAX_PROOF_BYTES / 1024
        ));
    }
    let jwt = crate::crypto::jwt::decode_unverified::<Map<String, Value>>(proof)
        .map_err(|e| format!("the DPoP proof is {e}"))?;
    let header = &jwt.header;
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    if !typ.eq_ignore_ascii_case(PROOF_TYPE) {
        return Err(format!("the DPoP proof's typ is '{typ}', not {PROOF_TYPE}"));
    }
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg: Algorithm = Some(alg_name)
        .filter(|a| ALGORITHMS.contains(a))
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| {
            format!(
                "the DPoP proof's alg '{alg_name}' is not one of {}",
                ALGORITHMS.join(", ")
            )
        })?;
    let jwk_value = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or("the DPoP proof has no jwk header")?;
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|m| jwk_value.contains_key(*m))
    {
        return Err("the DPoP proof's jwk holds private or symmetric key material".into());
    }
    let jkt =
        thumbprint(jwk_value).ok_or("the DPoP proof's jwk is not an EC, RSA or OKP public key")?;
    let jwk: Jwk = serde_json::from_value(Value::Object(jwk_value.clone()))
        .map_err(|_| "the DPoP proof's jwk is not a JSON Web Key".to_owned())?;
    let key = DecodingKey::from_jwk(&jwk)
        .map_err(|_| "the DPoP proof's jwk cannot verify signatures".to_owned())?;
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Map<String, Value>>(proof, &key, &validation)
        .map_err(|_| "the DPoP proof's signature does not verify with its jwk".to_owned())?
        .claims;
    check_claims(&claims, expected, jkt)
}

fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
    jkt: String,
) -> Result<Proof, String> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or("the DPoP proof has no jti (or one over 256 characters)")?;
    let htm = text("htm").unwrap_or("");
    if htm != expected.method {
        return Err(format!(
            "the DPoP proof's htm is '{htm}', and the request is a {}",
            expected.method
        ));
    }
    let htu = text("htu").unwrap_or("");
    if htu.contains(['?', '#']) {
        return Err(format!(
            "the DPoP proof's htu '{htu}' carries a query or fragment, which RFC 9449 §4.2 leaves out"
        ));
    }
    if !same_target(htu, expected.url) {
        return Err(format!(
            "the DPoP proof's htu is '{htu}', and the request went to {}",
            expected.url
        ));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or("the DPoP proof has no iat")?;
    if iat.saturating_add(PROOF_MAX_AGE) < expected.now || iat > expected.now + PROOF_MAX_AHEAD {
        return Err(format!(
            "the DPoP proof's iat is {iat}, more than {PROOF_MAX_AGE} s from this server's clock ({}): make a new proof for each request",
            expected.now
        ));
    }
    if let Some(token) = expected.access_token {
        let want = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        match text("ath") {
            Some(ath) if crate::crypto::ct_eq(ath, &want) => {}
            Some(_) => {
                return Err("the DPoP proof's ath is not the hash of this access token".into());
            }
            None => {
                return Err("the DPoP proof has no ath for the access token it comes with".into());
            }
        }
    }
    Ok(Proof {
        jkt,
        jti: jti.to_owned(),
        iat,
        nonce: text("nonce").map(str::to_owned),
    })
}

/// Whether `htu` names `url`, ignoring any query and fragment (of `url`: a proof's `htu` has
/// none) and the case of the scheme and host (§4.3 step 9; RFC 3986 §6.2.2.1).
fn same_target(htu: &str, url: &str) -> bool {
    let norm = |u: &str| {
        url::Url::parse(u).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        })
    };
    matches!((norm(htu), norm(url)), (Some(a), Some(b)) if a == b)
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK: its required members in lexicographic
/// order, no whitespace.
pub(crate) fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let kty = jwk.get("kty")?.as_str()?;
    let members: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, m) in members.iter().enumerate() {
        let v = jwk.get(*m)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        // serde_json writes a string as JSON, escapes included.
        canonical.push_str(&format!("\"{m}\":{}", Value::String(v.to_owned())));
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// The server's DPoP nonces (§8, §9): signed with the server's key, naming the tenant and a
/// five-minute window, so that every server sharing the key accepts them without storing any.
pub(crate) struct Nonces {
    signer: Signer,
}

impl Nonces {
    pub(crate) fn new(signer: Signer) -> Self {
        Self { signer }
    }

    /// A nonce for `tenant` now.
    pub(crate) fn issue(&self, tenant: &str, now: u64) -> String {
        let window = now / NONCE_WINDOW;
        self.signer
            .sign(NONCE_PURPOSE, format!("{tenant}\n{window}").as_bytes())
    }

    /// Whether `nonce` is one of this server's for `tenant`, from this window or the last.
    pub(crate) fn is_fresh(&self, tenant: &str, nonce: &str, now: u64) -> bool {
        let Some(payload) = self.signer.verify(NONCE_PURPOSE, nonce) else {
            return false;
        };
        let Ok(text) = String::from_utf8(payload) else {
            return false;
        };
        let window = now / NONCE_WINDOW;
        match text.split_once('\n') {
            Some((t, w)) if t == tenant => w
                .parse::<u64>()
                .is_ok_and(|w| w == window || w + 1 == window),
            _ => false,
        }
    }
}

/// Why a request's DPoP proof, or its lack, is refused at a resource (RFC 9449 §7.1).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ResourceRefusal {
    /// `invalid_dpop_proof`: no proof, or one that fails a rule.
    Proof(String),
    /// `use_dpop_nonce`: the proof must carry the server's nonce.
    Nonce,
    /// `invalid_token`: a bound token presented as a bearer token, or the reverse.
    Scheme(String),
    /// 503: this server remembers as many proofs as it may; it takes no more until some age out
    /// (refusing is safer than forgetting one, which could then be replayed).
    Busy,
}

/// The DPoP proofs a server has seen at its resources (each `jti` once while it could be
/// accepted), and its nonces. The token endpoint, and the resources of servers that share a
/// store, spend proofs in the store instead (`token/dpop_binding.rs`), so that no other server
/// takes them again.
pub(crate) struct Proofs {
    pub(crate) nonces: Nonces,
    /// SHA-256 of tenant, key thumbprint and `jti`.
    seen: moka::future::Cache<[u8; 32], ()>,
    /// Past this many remembered proofs, new ones are refused (`remember`).
    refuse_from: u64,
}

/// Proofs remembered at most (2,800 calls a second, sustained for the six minutes a proof
/// lives). New proofs are refused from nine tenths of it on: the cache's count lags its
/// inserts a little, and it must never reach the capacity, where the oldest would be forgotten
/// before their time.
const MAX_REMEMBERED_PROOFS: u64 = 1_000_000;

impl Proofs {
    pub(crate) fn new(signer: Signer) -> Self {
        Self::with_capacity(signer, MAX_REMEMBERED_PROOFS)
    }

    fn with_capacity(signer: Signer, capacity: u64) -> Self {
        Self {
            refuse_from: capacity / 10 * 9,
            nonces: Nonces::new(signer),
            seen: moka::future::Cache::builder()
                // Every new proof is kept (TinyLFU could turn one away, which could then be
                // replayed); the capacity is never reached, `remember` refuses first.
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .max_capacity(capacity)
                .time_to_live(std::time::Duration::from_secs(
                    PROOF_MAX_AGE + PROOF_MAX_AHEAD,
                ))
                .build(),
        }
    }

    /// Checks the proof of a call to a resource with a token bound to `jkt`: the proof's rules
    /// (`check`, with `ath`), its key, and the tenant's nonce if it wants one. Its `jti` is
    /// the caller's to spend (`remember`, or the store).
    pub(crate) fn check_at_resource(
        &self,
        tenant: &str,
        require_nonce: bool,
        proof: Option<&str>,
        expected: &Expected<'_>,
        jkt: &str,
    ) -> Result<Proof, ResourceRefusal> {
        let proof = proof.ok_or_else(|| {
            ResourceRefusal::Proof("the token is DPoP-bound and the call has no DPoP proof".into())
        })?;
        let checked = check(proof, expected).map_err(ResourceRefusal::Proof)?;
        if !crate::crypto::ct_eq(&checked.jkt, jkt) {
            return Err(ResourceRefusal::Proof(
                "the DPoP proof is signed by another key than the one the token is bound to".into(),
            ));
        }
        if require_nonce
            && !checked
                .nonce
                .as_deref()
                .is_some_and(|n| self.nonces.is_fresh(tenant, n, expected.now))
        {
            return Err(ResourceRefusal::Nonce);
        }
        Ok(checked)
    }

    /// Remembers a resource proof's `jti` in this process: `false` if it was seen before.
    pub(crate) async fn remember(
        &self,
        tenant: &str,
        proof: &Proof,
    ) -> Result<bool, ResourceRefusal> {
        if self.seen.entry_count() >= self.refuse_from {
            crate::metrics::metrics()
                .rate_limited
                .with_label_values(&[tenant, "dpop_proofs"])
                .inc();
            tracing::warn!(
                tenant,
                remembered = self.seen.entry_count(),
                "a DPoP call was refused: this server remembers as many proofs as it may until some are six minutes old"
            );
            return Err(ResourceRefusal::Busy);
        }
        let key: [u8; 32] =
            Sha256::digest(format!("{tenant}\n{}\n{}", proof.jkt, proof.jti)).into();
        Ok(self.seen.entry(key).or_insert(()).await.is_fresh())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk = json!({"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(
            thumbprint(jwk.as_object().unwrap()).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        assert!(thumbprint(json!({"kty": "oct", "k": "c2VjcmV0"}).as_object().unwrap()).is_none());
    }

    #[tokio::test]
    async fn a_full_memory_of_proofs_refuses_and_says_so() {
        let keys = crate::crypto::keys::ServerKeys::from_bytes([5; 32], None);
        let proofs = Proofs::with_capacity(Signer::new(&keys), 20);
        let proof = |jti: usize| Proof {
            jkt: "k".into(),
            jti: jti.to_string(),
            iat: 0,
            nonce: None,
        };
        let counted = || {
            crate::metrics::metrics()
                .rate_limited
                .with_label_values(&["full-tenant", "dpop_proofs"])
                .get()
        };
        let before = counted();
        for i in 0..18 {
            assert_eq!(proofs.remember("full-tenant", &proof(i)).await, Ok(true));
            if i == 5 {
                assert_eq!(
                    proofs.remember("full-tenant", &proof(3)).await,
                    Ok(false),
                    "a replay"
                );
            }
        }
        proofs.seen.run_pending_tasks().await;
        assert_eq!(
            proofs.remember("full-tenant", &proof(99)).await,
            Err(ResourceRefusal::Busy)
        );
        assert_eq!(counted(), before + 1, "the refusal is counted");
    }

    #[test]
    fn one_proof_per_request() {
        assert_eq!(single_header(std::iter::empty()), Ok(None));
        assert_eq!(single_header(["a.b.c"].into_iter()), Ok(Some("a.b.c")));
        assert!(single_header(["a.b.c", "d.e.f"].into_iter()).is_err());
        assert!(single_header(["a.b.c, d.e.f"].into_iter()).is_err());
    }

    #[test]
    fn targets_compare_without_query_and_fragment() {
        assert!(same_target(
            "https://Shim.example/t/token",
            "https://shim.example/t/token"
        ));
        assert!(same_target(
            "https://shim.example/t/token?x=1#f",
            "https://shim.example/t/token"
        ));
        assert!(!same_target(
            "https://shim.example/t/token/",
            "https://shim.example/t/token"
        ));
        assert!(!same_target(
            "https://shim.example/u/token",
            "https://shim.example/t/token"
        ));
        assert!(!same_target("", "https://shim.example/t/token"));
    }
}
