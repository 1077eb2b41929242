//! `RedirectUri`: a client's redirection endpoint (RFC 6749 §3.1.2), checked once at the edge.
//!
//! Three kinds are accepted, after RFC 8252 (OAuth for native apps) and OAuth 2.1 §2.3.1:
//! `https` URIs, `http` URIs on a loopback host (port free to vary at authorize time,
//! RFC 8252 §7.3), and private-use schemes such as `com.example.app:/cb` (RFC 8252 §7.1).

use std::fmt;
use url::{Host, Url};

/// Longest redirect URI accepted, in bytes.
pub(crate) const MAX_REDIRECT_URI_LEN: usize = 2000;

/// Schemes that can never be a private-use redirect: they run script, read local data, or are
/// ordinary network schemes that would bypass the https/loopback rules.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "vbscript",
    "file",
    "about",
    "blob",
    "filesystem",
    "view-source",
    "ftp",
    "ws",
    "wss",
    "mailto",
    "tel",
    "sms",
    "intent",
    "content",
    "jar",
];

/// Schemes (by prefix, lower case) of the handlers that browsers register to open a URL they
/// carry (`microsoft-edge:https://…`, `googlechrome://…`, `x-safari-https://…`,
/// `firefox://open-url?url=…`): as a "private-use" redirect they send the code to whatever web
/// page the URI names, in a browser, while the consent page would speak of an app on this
/// device. Never a redirect target.
const BROWSER_HANDLER_SCHEMES: &[&str] = &[
    "microsoft-edge",
    "googlechrome",
    "x-safari-",
    "firefox",
    "opera-http",
    "touch-http",
    "ohttp",
    "brave",
    "ddgquicklink",
    "onionhttp",
    "vivaldi",
    "yandexbrowser",
    "duckduckgo",
    "samsunginternet",
    "puffin",
    "ucbrowser",
    "dolphin",
    "android-app",
];

/// Whether `raw`, of scheme `scheme` (lower case, as the URL parser gives it), opens a web
/// page: a known browser's URL handler, or any scheme whose remainder is itself a web URL
/// (`somebrowser:https://…`), which no native app's callback needs to be.
fn is_browser_handler(scheme: &str, raw: &str) -> bool {
    let rest = raw
        .get(scheme.len() + 1..)
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_ascii_lowercase();
    BROWSER_HANDLER_SCHEMES
        .iter()
        .any(|prefix| scheme.starts_with(prefix))
        || rest.starts_with("http:")
        || rest.starts_with("https:")
}

/// What kind of redirect URI this is; mapping rules match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedirectKind {
    /// `http://127.0.0.1`, `http://[::1]` or `http://localhost`, any port.
    Loopback,
    /// `https://…`
    Https,
    /// A private-use URI scheme of a native app (RFC 8252 §7.1).
    PrivateUse,
}

/// A redirect URI that passed every check; `as_str` is the exact string the client registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectUri {
    raw: String,
    kind: RedirectKind,
}

/// Why a string is not an acceptable redirect URI; `Display` is a sentence for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("is longer than {MAX_REDIRECT_URI_LEN} bytes")]
    TooLong,
    #[error("contains whitespace, control or bidirectional formatting characters")]
    ControlCharacters,
    #[error("is not an absolute URI")]
    NotAbsolute,
    #[error("has a fragment; redirect URIs must not contain '#'")]
    Fragment,
    #[error("contains user information before the host")]
    UserInfo,
    #[error(
        "uses http on a host that is not loopback; use https, or http://127.0.0.1 / http://[::1] / http://localhost for native apps"
    )]
    HttpNotLoopback,
    #[error("has no host")]
    NoHost,
    #[error("uses the scheme '{0}', which can never be a redirect target")]
    ForbiddenScheme(String),
    #[error(
        "uses the scheme '{0}', a browser's handler that opens the URL it carries in a browser; a native app registers a scheme of its own (RFC 8252 §7.1), a web client an https URI"
    )]
    BrowserHandler(String),
}

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<Self, RedirectUriError> {
        if raw.len() > MAX_REDIRECT_URI_LEN {
            return Err(RedirectUriError::TooLong);
        }
        // The URL parser silently drops tabs, newlines and surrounding spaces; refuse them here
        // so that the string we store is the string we compare.
        if super::text::has_control_or_bidi(raw) || raw.chars().any(char::is_whitespace) {
            return Err(RedirectUriError::ControlCharacters);
        }
        if raw.contains('#') {
            return Err(RedirectUriError::Fragment);
        }
        let url = Url::parse(raw).map_err(|_| RedirectUriError::NotAbsolute)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::UserInfo);
        }
        let kind = match url.scheme() {
            "https" => {
                if url.host().is_none() {
                    return Err(RedirectUriError::NoHost);
                }
                RedirectKind::Https
            }
            "http" => {
                if !is_loopback_host(&url) {
                    return Err(RedirectUriError::HttpNotLoopback);
                }
                RedirectKind::Loopback
            }
            scheme if FORBIDDEN_SCHEMES.contains(&scheme) => {
                return Err(RedirectUriError::ForbiddenScheme(scheme.to_owned()));
            }
            scheme if is_browser_handler(scheme, raw) => {
                return Err(RedirectUriError::BrowserHandler(scheme.to_owned()));
            }
            _ => RedirectKind::PrivateUse,
        };
        Ok(Self {
            raw: raw.to_owned(),
            kind,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether this is a loopback redirect URI (the user's own machine).
    pub(crate) fn is_loopback(&self) -> bool {
        self.kind == RedirectKind::Loopback
    }

    /// The URI with `params` appended to its query: an authorization response or error
    /// (RFC 6749 §4.1.2) sent back to the client.
    pub(crate) fn with_query(&self, params: &[(&str, &str)]) -> String {
        let Ok(mut url) = Url::parse(&self.raw) else {
            return self.raw.clone();
        };
        url.query_pairs_mut().extend_pairs(params);
        url.into()
    }

    /// The URI a browser approval covers: a loopback URI without its port (RFC 8252 §7.3: the
    /// port changes with every run of a native app), any other URI as it is.
    pub(crate) fn without_loopback_port(&self) -> String {
        match Url::parse(&self.raw) {
            Ok(mut u) if self.is_loopback() => {
                let _ = u.set_port(None);
                u.into()
            }
            _ => self.raw.clone(),
        }
    }

    pub fn kind(&self) -> RedirectKind {
        self.kind
    }

    /// Where the browser will be sent, for the consent page: the host of an https or loopback
    /// URI; for a private-use URI its whole scheme and never a host, since whatever app claims
    /// the scheme receives the code, whatever host follows it (`myapp://claude.ai/cb` is not
    /// claude.ai).
    pub(crate) fn display_host(&self) -> String {
        match Url::parse(&self.raw) {
            Ok(u) if self.kind == RedirectKind::PrivateUse => {
                format!("{}: (an app on this device)", u.scheme())
            }
            Ok(u) => u.host_str().unwrap_or_default().to_owned(),
            Err(_) => String::new(),
        }
    }

    /// Whether `requested` (from an authorization request) designates this registered URI:
    /// byte-for-byte equality, except that a loopback URI may carry any port (RFC 8252 §7.3).
    pub fn matches(&self, requested: &str) -> bool {
        if self.raw == requested {
            return true;
        }
        if self.kind != RedirectKind::Loopback {
            return false;
        }
        let (Some(registered), Some(requested)) = (
            canonical_without_port(&self.raw),
            canonical_without_port(requested),
        ) else {
            return false;
        };
        registered == requested
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Serde for a `RedirectUri` as its string, checked again when read back.
pub(crate) mod as_string {
    use super::RedirectUri;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &RedirectUri, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RedirectUri, D::Error> {
        RedirectUri::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Serde for a list of `RedirectUri`s as strings.
pub(crate) mod as_strings {
    use super::RedirectUri;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[RedirectUri], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(RedirectUri::as_str))
    }

    /// A stored URI that a later release refuses (a browser handler's scheme, refused since
    /// issue 22) is left out, with a warning, rather than making the whole record unreadable:
    /// the client keeps its other URIs, and that one no longer matches any request.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<RedirectUri>, D::Error> {
        let mut kept = Vec::new();
        for s in Vec::<String>::deserialize(d)? {
            match RedirectUri::parse(&s) {
                Ok(uri) => kept.push(uri),
                Err(e @ super::RedirectUriError::BrowserHandler(_)) => {
                    tracing::warn!(redirect_uri = %s.escape_debug(), reason = %e, "a stored redirect URI is no longer honoured");
                }
                Err(e) => return Err(serde::de::Error::custom(e)),
            }
        }
        Ok(kept)
    }
}

/// Whether the URL's host is `localhost` or a loopback address (127.0.0.0/8, ::1).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// https, or http on a loopback host (tests and local IdPs): where codes and tokens may go.
pub fn is_https_or_loopback(url: &Url) -> bool {
    url.scheme() == "https" || (url.scheme() == "http" && is_loopback_host(url))
}

/// A loopback URI with its port removed, only when the input is already in the URL parser's
/// canonical form (so that dot segments, case or escapes cannot make two strings meet).
fn canonical_without_port(raw: &str) -> Option<String> {
    let parsed = RedirectUri::parse(raw).ok()?;
    if parsed.kind != RedirectKind::Loopback {
        return None;
    }
    let mut url = Url::parse(raw).ok()?;
    // An empty path is the one difference allowed: `http://127.0.0.1:33418` is
    // `http://127.0.0.1:33418/` (RFC 3986 §6.2.3), and clients register it either way.
    let empty_path = url.path() == "/" && url.query().is_none() && !raw.ends_with('/');
    if url.as_str() != raw && !(empty_path && url.as_str().strip_suffix('/') == Some(raw)) {
        return None;
    }
    url.set_port(None).ok()?;
    Some(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_refusals() {
        use RedirectKind::*;
        let ok: &[(&str, RedirectKind)] = &[
            ("https://app.example.com/cb", Https),
            ("https://app.example.com/cb?x=1", Https),
            ("http://127.0.0.1:33418/callback", Loopback),
            ("http://localhost/callback", Loopback),
            ("http://[::1]:8080/", Loopback),
            ("com.example.app:/oauth2redirect", PrivateUse),
            ("cursor://anysphere.cursor-mcp/oauth/callback", PrivateUse),
        ];
        for (raw, kind) in ok {
            assert_eq!(
                RedirectUri::parse(raw).map(|r| r.kind()),
                Ok(*kind),
                "{raw}"
            );
        }
        let bad: &[(&str, RedirectUriError)] = &[
            ("https://a.example/cb#frag", RedirectUriError::Fragment),
            ("https://a.example/cb#", RedirectUriError::Fragment),
            ("http://evil.example/cb", RedirectUriError::HttpNotLoopback),
            (
                "http://127.0.0.1.evil.example/cb",
                RedirectUriError::HttpNotLoopback,
            ),
            ("https://user:pw@a.example/cb", RedirectUriError::UserInfo),
            ("https://user@a.example/cb", RedirectUriError::UserInfo),
            (
                "javascript:alert(1)",
                RedirectUriError::ForbiddenScheme("javascript".into()),
            ),
            (
                "data:text/html,x",
                RedirectUriError::ForbiddenScheme("data".into()),
            ),
            (
                "JavaScript:alert(1)",
                RedirectUriError::ForbiddenScheme("javascript".into()),
            ),
            ("/relative/cb", RedirectUriError::NotAbsolute),
            ("https://a.example/c b", RedirectUriError::ControlCharacters),
            (
                "https://a.example/cb\n",
                RedirectUriError::ControlCharacters,
            ),
        ];
        for (raw, err) in bad {
            assert_eq!(RedirectUri::parse(raw), Err(err.clone()), "{raw}");
        }
        // Regression (issue 22, item 4): browsers' URL handlers were private-use URIs.
        for raw in [
            "microsoft-edge:https://evil.example/cb",
            "microsoft-edge-https://evil.example/cb",
            "googlechrome://evil.example/cb",
            "googlechromes://evil.example/cb",
            "x-safari-https://evil.example/cb",
            "firefox://open-url?url=https://evil.example/cb",
            "firefox:https://evil.example/cb",
            "opera-http://evil.example/cb",
            "opera-https://evil.example/cb",
            "Microsoft-Edge:https://evil.example/cb",
            "android-app://com.android.chrome/https/evil.example/cb",
            "touch-https://evil.example/cb",
            "samsunginternet://open?url=https://evil.example",
            "somebrowser:https://evil.example/cb",
            "otherbrowser://http://evil.example/cb",
        ] {
            assert!(
                matches!(
                    RedirectUri::parse(raw),
                    Err(RedirectUriError::BrowserHandler(_))
                ),
                "{raw}"
            );
        }
    }

    #[test]
    fn a_private_use_uri_shows_its_scheme_and_never_a_host() {
        let app = RedirectUri::parse("myapp://claude.ai/cb").unwrap();
        assert_eq!(app.display_host(), "myapp: (an app on this device)");
        let cursor = RedirectUri::parse("cursor://anysphere.cursor-mcp/oauth/callback").unwrap();
        assert!(!cursor.display_host().contains("anysphere"));
        let web = RedirectUri::parse("https://claude.ai/api/mcp/auth_callback").unwrap();
        assert_eq!(web.display_host(), "claude.ai");
    }

    #[test]
    fn a_stored_browser_handler_uri_is_dropped_not_the_record() {
        #[derive(serde::Deserialize)]
        struct Stored {
            #[serde(with = "as_strings")]
            uris: Vec<RedirectUri>,
        }
        let stored: Stored = serde_json::from_str(
            r#"{"uris": ["microsoft-edge:https://evil.example/cb", "https://app.example/cb"]}"#,
        )
        .unwrap();
        assert_eq!(stored.uris.len(), 1);
        assert_eq!(stored.uris[0].as_str(), "https://app.example/cb");
    }

    #[test]
    fn loopback_port_may_vary_but_nothing_else() {
        let reg = RedirectUri::parse("http://127.0.0.1/callback").unwrap();
        assert!(reg.matches("http://127.0.0.1:50123/callback"));
        assert!(reg.matches("http://127.0.0.1/callback"));
        assert!(!reg.matches("http://127.0.0.1:50123/callbackx"));
        assert!(!reg.matches("http://localhost:50123/callback"));
        assert!(!reg.matches("http://127.0.0.1:50123/x/../callback"));
        assert!(!reg.matches("https://127.0.0.1:50123/callback"));
        let web = RedirectUri::parse("https://app.example.com/cb").unwrap();
        assert!(web.matches("https://app.example.com/cb"));
        assert!(!web.matches("https://app.example.com:444/cb"));
        assert!(!web.matches("https://app.example.com/cb/"));
        assert!(!web.matches("https://APP.example.com/cb"));
        // A loopback URI with an empty path is the same as with `/`, either side.
        let bare = RedirectUri::parse("http://127.0.0.1").unwrap();
        assert!(bare.matches("http://127.0.0.1:33418/"));
        assert!(bare.matches("http://127.0.0.1:33418"));
        assert!(!bare.matches("http://127.0.0.1:33418/x"));
        let slash = RedirectUri::parse("http://127.0.0.1:33418/").unwrap();
        assert!(slash.matches("http://127.0.0.1:50000"));
        assert!(!slash.matches("http://127.0.0.1:50000?x=1"));
    }
}
