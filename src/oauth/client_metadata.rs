//! Client metadata validation, shared by registration (RFC 7591 §2) and client metadata
//! documents (draft-ietf-oauth-client-id-metadata-document §4): raw JSON in, `ClientMetadata`
//! out, or an error whose description names the field.

use serde_json::{Map, Value};
use url::Url;

use super::error::{ErrorCode, OAuthError};
use crate::domain::scope::parse_scope_list;
use crate::domain::{
    ApplicationType, AuthMethod, ClientMetadata, GrantType, RedirectKind, RedirectUri,
};

/// Most redirect URIs one client may have.
pub(crate) const MAX_REDIRECT_URIS: usize = 10;
/// Longest free-text field (client_name, software_id, …).
pub(crate) const MAX_TEXT_LEN: usize = 200;
/// Longest informational URI (client_uri, logo_uri, …).
pub(crate) const MAX_URI_LEN: usize = 2000;

/// Where the metadata came from; the rules differ slightly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataOrigin {
    /// A registration request: `token_endpoint_auth_method` defaults to `client_secret_basic`.
    Registration,
    /// A client metadata document: `client_name` required, no shared secrets, default `none`.
    Document,
}

/// Validates client metadata; unknown fields are ignored (RFC 7591 §2).
pub fn validate_client_metadata(
    raw: &Map<String, Value>,
    origin: MetadataOrigin,
) -> Result<ClientMetadata, OAuthError> {
    if raw.contains_key("software_statement") {
        return Err(OAuthError::new(
            ErrorCode::UnapprovedSoftwareStatement,
            "software_statement: software statements are not accepted by this server; register without one",
        ));
    }
    if origin == MetadataOrigin::Document && raw.contains_key("client_secret") {
        return Err(bad(
            "client_secret",
            "a client metadata document must not contain a client secret",
        ));
    }
    let redirect_uris = redirect_uris(raw)?;
    let application_type = application_type(raw, &redirect_uris)?;
    let token_endpoint_auth_method = auth_method(raw, origin)?;
    let (jwks, jwks_uri) = if token_endpoint_auth_method == AuthMethod::PrivateKeyJwt {
        client_keys(raw)?
    } else {
        (None, None)
    };
    let grant_types = grant_types(raw)?;
    let response_types = response_types(raw)?;
    let client_name = optional_text(raw, "client_name")?;
    if origin == MetadataOrigin::Document && client_name.is_none() {
        return Err(bad(
            "client_name",
            "is required in a client metadata document",
        ));
    }
    let scope = scope(raw)?;
    Ok(ClientMetadata {
        redirect_uris,
        token_endpoint_auth_method,
        grant_types,
        response_types,
        application_type,
        client_name,
        client_uri: optional_https_uri(raw, "client_uri")?,
        logo_uri: optional_https_uri(raw, "logo_uri")?,
        tos_uri: optional_https_uri(raw, "tos_uri")?,
        policy_uri: optional_https_uri(raw, "policy_uri")?,
        scope,
        contacts: contacts(raw)?,
        software_id: optional_text(raw, "software_id")?,
        software_version: optional_text(raw, "software_version")?,
        jwks,
        jwks_uri,
    })
}

/// `application_type` (OpenID Connect Registration §2), defaulting to `native` when the
/// redirect URIs say so; a web app may not register a private-use scheme.
fn application_type(
    raw: &Map<String, Value>,
    redirect_uris: &[RedirectUri],
) -> Result<ApplicationType, OAuthError> {
    let all_native_kinds = redirect_uris
        .iter()
        .all(|r| r.kind() != RedirectKind::Https);
    // A private-use scheme can only be a native app's, whatever else is listed: Cursor
    // registers `cursor://…` beside an https and a loopback URI without an application_type.
    let any_private_use = redirect_uris
        .iter()
        .any(|r| r.kind() == RedirectKind::PrivateUse);
    let application_type = match optional_str(raw, "application_type")? {
        None if all_native_kinds || any_private_use => ApplicationType::Native,
        None => ApplicationType::Web,
        Some("web") => ApplicationType::Web,
        Some("native") => ApplicationType::Native,
        Some(other) => {
            return Err(bad(
                "application_type",
                format!("'{other}' is not supported; use 'web' or 'native'"),
            ));
        }
    };
    if application_type == ApplicationType::Web
        && let Some(r) = redirect_uris
            .iter()
            .find(|r| r.kind() == RedirectKind::PrivateUse)
    {
        return Err(OAuthError::invalid_redirect_uri(format!(
            "redirect_uris: '{r}' uses a private-use scheme, which only native apps may register; send application_type \"native\""
        )));
    }
    Ok(application_type)
}

/// `scope`: the scopes the client may ask for, checked and normalised.
fn scope(raw: &Map<String, Value>) -> Result<Option<String>, OAuthError> {
    Ok(match optional_str(raw, "scope")? {
        None => None,
        Some(s) if s.len() > 1000 => return Err(bad("scope", "is longer than 1000 characters")),
        Some(s) => Some(parse_scope_list(s).map_err(|e| bad("scope", e))?.join(" ")),
    })
}

/// Most keys a client's JWK Set may hold.
pub(crate) const MAX_CLIENT_KEYS: usize = 10;

/// JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_KEY_MEMBERS: [&str; 9] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"];

/// The public keys of a `private_key_jwt` client: exactly one of `jwks` and `jwks_uri`
/// (RFC 7591 §2).
fn client_keys(raw: &Map<String, Value>) -> Result<(Option<Value>, Option<String>), OAuthError> {
    let jwks_uri = optional_str(raw, "jwks_uri")?;
    match (raw.get("jwks").filter(|v| !v.is_null()), jwks_uri) {
        (Some(_), Some(_)) => Err(bad("jwks", "give jwks or jwks_uri, not both (RFC 7591 §2)")),
        (None, None) => Err(bad(
            "jwks_uri",
            "private_key_jwt needs the client's public keys: a jwks_uri or an inline jwks",
        )),
        (None, Some(uri)) => {
            let ok = uri.len() <= MAX_URI_LEN
                && Url::parse(uri)
                    .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
            if !ok {
                return Err(bad("jwks_uri", "must be an https URL"));
            }
            Ok((None, Some(uri.to_owned())))
        }
        (Some(jwks), None) => {
            check_jwks(jwks).map_err(|why| bad("jwks", why))?;
            Ok((Some(jwks.clone()), None))
        }
    }
}

/// A JWK Set of 1 to `MAX_CLIENT_KEYS` public signing keys (RFC 7517 §5).
pub(crate) fn check_jwks(jwks: &Value) -> Result<jsonwebtoken::jwk::JwkSet, String> {
    check_jwks_up_to(jwks, MAX_CLIENT_KEYS)
}

/// A JWK Set of 1 to `max_keys` public signing keys.
pub(crate) fn check_jwks_up_to(
    jwks: &Value,
    max_keys: usize,
) -> Result<jsonwebtoken::jwk::JwkSet, String> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("must be a JWK Set: an object with a \"keys\" array")?;
    if keys.is_empty() || keys.len() > max_keys {
        return Err(format!("must hold 1 to {max_keys} keys"));
    }
    for (i, key) in keys.iter().enumerate() {
        if let Some(m) = PRIVATE_KEY_MEMBERS.iter().find(|m| key.get(**m).is_some()) {
            return Err(format!(
                "keys[{i}] has the member \"{m}\", which only a private or shared key has; publish public keys only"
            ));
        }
    }
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| format!("is not a valid JWK Set: {e}"))?;
    Ok(set)
}

fn bad(field: &str, why: impl std::fmt::Display) -> OAuthError {
    OAuthError::invalid_client_metadata(format!("{field}: {why}"))
}

fn redirect_uris(raw: &Map<String, Value>) -> Result<Vec<RedirectUri>, OAuthError> {
    let list = match raw.get("redirect_uris") {
        None | Some(Value::Null) => {
            return Err(OAuthError::invalid_redirect_uri(
                "redirect_uris: is required for the authorization_code grant",
            ));
        }
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(OAuthError::invalid_redirect_uri(
                "redirect_uris: must be an array of strings",
            ));
        }
    };
    if list.is_empty() {
        return Err(OAuthError::invalid_redirect_uri(
            "redirect_uris: must contain at least one URI",
        ));
    }
    if list.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::invalid_redirect_uri(format!(
            "redirect_uris: at most {MAX_REDIRECT_URIS} are accepted"
        )));
    }
    let mut out: Vec<RedirectUri> = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let Value::String(s) = v else {
            return Err(OAuthError::invalid_redirect_uri(format!(
                "redirect_uris[{i}]: must be a string"
            )));
        };
        let uri = RedirectUri::parse(s).map_err(|e| {
            OAuthError::invalid_redirect_uri(format!(
                "redirect_uris[{i}]: '{}' {e}",
                s.escape_default()
            ))
        })?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

fn auth_method(raw: &Map<String, Value>, origin: MetadataOrigin) -> Result<AuthMethod, OAuthError> {
    const FIELD: &str = "token_endpoint_auth_method";
    let Some(value) = optional_str(raw, FIELD)? else {
        return Ok(match origin {
            MetadataOrigin::Registration => AuthMethod::ClientSecretBasic,
            MetadataOrigin::Document => AuthMethod::None,
        });
    };
    match (AuthMethod::parse(value), origin) {
        (Some(AuthMethod::None), _) => Ok(AuthMethod::None),
        (Some(AuthMethod::PrivateKeyJwt), MetadataOrigin::Document) => {
            Ok(AuthMethod::PrivateKeyJwt)
        }
        (Some(AuthMethod::PrivateKeyJwt), MetadataOrigin::Registration) => Err(bad(
            FIELD,
            "'private_key_jwt' is accepted from client metadata documents (a client_id that is an https URL); register with 'none', 'client_secret_basic' or 'client_secret_post'",
        )),
        (Some(m), MetadataOrigin::Registration) => Ok(m),
        (Some(_), MetadataOrigin::Document) => Err(bad(
            FIELD,
            format!(
                "'{value}' uses a shared secret, which a client metadata document cannot have; use 'none' or 'private_key_jwt'"
            ),
        )),
        (None, _) => Err(bad(
            FIELD,
            format!(
                "'{value}' is not supported; use 'none', 'client_secret_basic', 'client_secret_post' or (in a client metadata document) 'private_key_jwt'"
            ),
        )),
    }
}

/// The grant types the client may use here. Values this server does not offer are dropped
/// rather than refused (RFC 7591 §2 lets the server register less than asked; the response says
/// what was registered): VS Code lists the device-code grant, claude.ai's metadata document the
/// JWT-bearer grant, and both log in with the authorization code.
fn grant_types(raw: &Map<String, Value>) -> Result<Vec<GrantType>, OAuthError> {
    let Some(values) = optional_string_list(raw, "grant_types")? else {
        return Ok(vec![GrantType::AuthorizationCode]);
    };
    let mut out = Vec::new();
    for g in values.iter().filter_map(|v| GrantType::parse(v)) {
        if !out.contains(&g) {
            out.push(g);
        }
    }
    if !out.contains(&GrantType::AuthorizationCode) {
        return Err(bad(
            "grant_types",
            "must include 'authorization_code', the only way to obtain tokens here",
        ));
    }
    Ok(out)
}

fn response_types(raw: &Map<String, Value>) -> Result<Vec<String>, OAuthError> {
    let Some(values) = optional_string_list(raw, "response_types")? else {
        return Ok(vec!["code".to_owned()]);
    };
    if let Some(v) = values.iter().find(|v| *v != "code") {
        return Err(bad(
            "response_types",
            format!("'{v}' is not supported; only 'code' is"),
        ));
    }
    Ok(vec!["code".to_owned()])
}

fn contacts(raw: &Map<String, Value>) -> Result<Vec<String>, OAuthError> {
    let values = optional_string_list(raw, "contacts")?.unwrap_or_default();
    if values.len() > 10 || values.iter().any(|c| c.len() > 254 || has_control(c)) {
        return Err(bad(
            "contacts",
            "at most 10 addresses of up to 254 printable characters",
        ));
    }
    Ok(values)
}

fn optional_str<'a>(
    raw: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, OAuthError> {
    match raw.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

/// A non-empty list of strings, or `None` when absent.
fn optional_string_list(
    raw: &Map<String, Value>,
    field: &str,
) -> Result<Option<Vec<String>>, OAuthError> {
    match raw.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= 20 => list
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad(field, "must be an array of strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::Array(_)) => Err(bad(field, "must contain between 1 and 20 strings")),
        Some(_) => Err(bad(field, "must be an array of strings")),
    }
}

/// Control characters, and the bidirectional formatting ones that make a name read otherwise
/// on the consent page or in a log (`domain/text.rs`).
fn has_control(s: &str) -> bool {
    crate::domain::text::has_control_or_bidi(s)
}

fn optional_text(raw: &Map<String, Value>, field: &str) -> Result<Option<String>, OAuthError> {
    match optional_str(raw, field)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Err(bad(field, "must not be empty")),
        Some(s) if s.chars().count() > MAX_TEXT_LEN => Err(bad(
            field,
            format!("is longer than {MAX_TEXT_LEN} characters"),
        )),
        Some(s) if has_control(s) => Err(bad(
            field,
            "must not contain control characters, or invisible or bidirectional formatting characters (such as U+200B, U+200E, U+200F, U+061C, U+202A–U+202E, U+2066–U+2069, U+FEFF)",
        )),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

fn optional_https_uri(raw: &Map<String, Value>, field: &str) -> Result<Option<String>, OAuthError> {
    let Some(s) = optional_str(raw, field)? else {
        return Ok(None);
    };
    let ok = s.len() <= MAX_URI_LEN
        && !has_control(s)
        && !s.contains(' ')
        && Url::parse(s).is_ok_and(|u| {
            u.scheme() == "https"
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none()
        });
    if !ok {
        return Err(bad(
            field,
            format!("must be an absolute https URL of at most {MAX_URI_LEN} bytes"),
        ));
    }
    Ok(Some(s.to_owned()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn grant_types_this_server_does_not_offer_are_dropped_not_refused() {
        let m = validate_client_metadata(
            json!({"redirect_uris": ["http://127.0.0.1/"], "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]}).as_object().unwrap(),
            MetadataOrigin::Registration,
        )
        .unwrap();
        assert_eq!(
            m.grant_types,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        for without_code in [
            json!(["urn:ietf:params:oauth:grant-type:device_code"]),
            json!(["refresh_token"]),
        ] {
            let raw = json!({"redirect_uris": ["http://127.0.0.1/"], "grant_types": without_code});
            assert!(
                validate_client_metadata(raw.as_object().unwrap(), MetadataOrigin::Registration)
                    .is_err()
            );
        }
    }

    #[test]
    fn a_private_use_redirect_makes_a_native_app_by_default() {
        let raw = json!({"redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback", "https://www.cursor.com/agents/mcp/oauth/callback"]});
        let m = validate_client_metadata(raw.as_object().unwrap(), MetadataOrigin::Registration)
            .unwrap();
        assert_eq!(m.application_type, ApplicationType::Native);
    }

    use super::*;
    use serde_json::json;

    fn check(v: Value, origin: MetadataOrigin) -> Result<ClientMetadata, OAuthError> {
        validate_client_metadata(v.as_object().unwrap(), origin)
    }

    #[test]
    fn defaults() {
        let m = check(
            json!({"redirect_uris": ["http://127.0.0.1/cb"]}),
            MetadataOrigin::Registration,
        )
        .unwrap();
        assert_eq!(m.application_type, ApplicationType::Native);
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(m.grant_types, vec![GrantType::AuthorizationCode]);
        let m = check(
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": "A"}),
            MetadataOrigin::Document,
        )
        .unwrap();
        assert_eq!(m.application_type, ApplicationType::Web);
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::None);
    }

    #[test]
    fn document_rules() {
        let doc = |extra: Value| {
            let mut v = json!({"redirect_uris": ["https://a.example/cb"], "client_name": "A"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            check(v, MetadataOrigin::Document)
                .map(|_| ())
                .map_err(|e| e.code)
        };
        assert_eq!(doc(json!({})), Ok(()));
        assert_eq!(
            doc(json!({"client_secret": "x"})),
            Err(ErrorCode::InvalidClientMetadata)
        );
        assert_eq!(
            doc(json!({"token_endpoint_auth_method": "client_secret_post"})),
            Err(ErrorCode::InvalidClientMetadata)
        );
        assert_eq!(
            doc(json!({"client_name": null})),
            Err(ErrorCode::InvalidClientMetadata)
        );
        // Regression (issue 22, item 5): a document's name is shown on the consent page.
        assert_eq!(
            doc(json!({"client_name": "Contoso \u{202E}lanretxe"})),
            Err(ErrorCode::InvalidClientMetadata)
        );
        assert_eq!(
            doc(json!({"redirect_uris": ["microsoft-edge:https://evil.example/cb"]})),
            Err(ErrorCode::InvalidRedirectUri)
        );
    }
}
