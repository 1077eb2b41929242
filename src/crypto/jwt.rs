//! The one place a JWT is read before its signature is checked: the header (to pick the key)
//! and the claims of a compact JWS, decoded and nothing more. What is read here is a claim,
//! not a fact, until a signature or the channel it came over vouches for it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why a string is not a compact JWS with JSON header and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtFormatError {
    #[error("not a signed JWT (three dot-separated parts)")]
    NotThreeParts,
    #[error("a JWT whose header is not base64url JSON")]
    Header,
    #[error("a JWT whose payload is not base64url JSON")]
    Payload,
}

/// A JWT's header and claims, unverified.
pub(crate) struct Unverified<C = Map<String, Value>> {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: C,
}

fn parts(token: &str) -> Result<(&str, &str), JwtFormatError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(_), None) => Ok((h, p)),
        _ => Err(JwtFormatError::NotThreeParts),
    }
}

fn json<T: DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The header and the claims (as `C`) of `token`, without checking its signature.
pub(crate) fn decode_unverified<C: DeserializeOwned>(
    token: &str,
) -> Result<Unverified<C>, JwtFormatError> {
    let (header, payload) = parts(token)?;
    Ok(Unverified {
        header: json(header).ok_or(JwtFormatError::Header)?,
        claims: json(payload).ok_or(JwtFormatError::Payload)?,
    })
}

/// The claims (as `C`) of `token`, without checking its signature or reading its header: its
/// second dot-separated part, whatever follows (an ID token received over TLS, or a client
/// assertion whose signature is checked later, is read as before).
pub(crate) fn unverified_claims<C: DeserializeOwned>(token: &str) -> Result<C, JwtFormatError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or(JwtFormatError::NotThreeParts)?;
    json(payload).ok_or(JwtFormatError::Payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &str) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    #[test]
    fn splits_once_and_says_what_is_wrong() {
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256"}"#),
            b64(r#"{"sub":"u"}"#)
        );
        let u: Unverified = decode_unverified(&token).unwrap();
        assert_eq!(u.header["alg"], "RS256");
        assert_eq!(u.claims["sub"], "u");
        #[derive(serde::Deserialize)]
        struct Sub {
            sub: String,
        }
        assert_eq!(unverified_claims::<Sub>(&token).unwrap().sub, "u");
        for bad in ["a.b", "a.b.c.d", "", "..."] {
            assert_eq!(
                decode_unverified::<Map<String, Value>>(bad).err(),
                Some(JwtFormatError::NotThreeParts),
                "{bad}"
            );
        }
        // The claims alone are read from the second part, as the ID token's and the client
        // assertion's readers did.
        let two = format!("{}.{}", b64("{}"), b64(r#"{"sub":"u"}"#));
        assert_eq!(unverified_claims::<Sub>(&two).unwrap().sub, "u");
        assert_eq!(
            unverified_claims::<Map<String, Value>>("nodots").err(),
            Some(JwtFormatError::NotThreeParts)
        );
        let no_header = format!("x.{}.s", b64("{}"));
        assert_eq!(
            decode_unverified::<Map<String, Value>>(&no_header).err(),
            Some(JwtFormatError::Header)
        );
        let no_payload = format!("{}.x.s", b64("{}"));
        assert_eq!(
            unverified_claims::<Map<String, Value>>(&no_payload).err(),
            Some(JwtFormatError::Payload)
        );
    }
}
