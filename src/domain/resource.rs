//! `ResourceUri`: a protected resource's identifier (RFC 8707 §2, RFC 9728 §1.2), held in the
//! form the tenant file gives and compared in normalized form (RFC 3986 §6.2.2, §6.2.3), so that
//! `https://MCP.example.com:443` names the same resource as `https://mcp.example.com/`.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

/// A resource URI. `as_str` is the configured form (what records and responses carry);
/// equality uses the normalized form.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceUri(String);

impl ResourceUri {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalized form: scheme and host in lower case (done by the URL parser), the
    /// default port dropped, an empty path as `/`, dot segments removed, percent-encoded
    /// unreserved characters decoded and other escapes in upper case. A string that is not an
    /// absolute URL is its own normalized form (and so equals only itself).
    pub(crate) fn normalized(&self) -> String {
        normalize(&self.0).unwrap_or_else(|| self.0.clone())
    }

    /// Whether `other` names this resource.
    pub(crate) fn matches(&self, other: &str) -> bool {
        self.0 == other || self.normalized() == ResourceUri::new(other).normalized()
    }
}

fn normalize(raw: &str) -> Option<String> {
    // Only what the URL parser leaves as it is gets a normalized form: a string it would
    // rewrite in other ways (dot segments resolved, a backslash read as a slash, an escaped or
    // numeric host decoded, whitespace dropped) names a resource only by its exact text.
    if !raw.bytes().all(|b| b.is_ascii_graphic()) || raw.contains(['\\', '#']) {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    if url.cannot_be_a_base() || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let (_, rest) = raw.split_once("://")?;
    let (authority, path_and_query) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    if url.path() != path || url.query() != query {
        return None;
    }
    let normalized_path = normalize_escapes(path);
    if normalized_path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return None;
    }
    let host = url.host_str()?;
    if !host_of(authority).eq_ignore_ascii_case(host) {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    out.push_str(url.scheme());
    out.push_str("://");
    out.push_str(host);
    if let Some(port) = url.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(&normalized_path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(&normalize_escapes(q));
    }
    Some(out)
}

/// The host part of an authority as written (`[v6]` or a name), without its port.
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// `%7e` → `~`, `%2f` → `%2F` (RFC 3986 §6.2.2.1, §6.2.2.2).
fn normalize_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
        {
            let c = h * 16 + l;
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(c));
            } else {
                out.push('%');
                out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
            }
            i += 3;
        } else {
            out.push(char::from(bytes[i]));
            i += 1;
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

impl PartialEq for ResourceUri {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || self.normalized() == other.normalized()
    }
}

impl Eq for ResourceUri {}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "https://mcp.example.com/admin";
    const F: &str = "https://mcp.example.com/files";

    #[test]
    fn normalized_forms_meet() {
        let same = [
            ("https://mcp.example.com", "https://mcp.example.com/"),
            ("https://mcp.example.com", "HTTPS://MCP.example.com"),
            ("https://mcp.example.com/", "https://mcp.example.com:443/"),
            (
                "https://mcp.example.com/files",
                "https://mcp.example.com/%66iles",
            ),
            (
                "https://mcp.example.com/a%2fb",
                "https://mcp.example.com/a%2Fb",
            ),
            ("http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/mcp"),
            ("http://[::1]:8080/mcp", "http://[::1]:8080/mcp"),
            (
                "https://mcp.example.com/x?a=%7e",
                "https://mcp.example.com/x?a=~",
            ),
        ];
        for (a, b) in same {
            assert!(ResourceUri::new(a).matches(b), "{a} ~ {b}");
            assert_eq!(ResourceUri::new(a), ResourceUri::new(b));
        }
        let different = [
            (
                "https://mcp.example.com/files",
                "https://mcp.example.com/files/",
            ),
            (
                "https://mcp.example.com/files",
                "https://mcp.example.com/Files",
            ),
            (
                "https://mcp.example.com/files",
                "https://mcp.example.com/files/../admin",
            ),
            ("https://mcp.example.com", "http://mcp.example.com"),
            ("https://mcp.example.com", "https://mcp.example.com:8443"),
            (
                "https://mcp.example.com/a/b",
                "https://mcp.example.com/a%2Fb",
            ),
            (
                "https://mcp.example.com/x?a=1",
                "https://mcp.example.com/x?a=2",
            ),
            ("not a url", "NOT A URL"),
            // What the URL parser would rewrite names a resource only by its exact text.
            (A, "https://mcp.example.com/files/../admin"),
            (A, "https://mcp.example.com/files/%2e%2e/admin"),
            (A, "https://mcp.example.com/files/.%2E/admin"),
            (A, "https://mcp.example.com/./admin"),
            (F, "https://x:y@mcp.example.com/files"),
            (F, "https://mcp.example.com/files#frag"),
            (F, r"https:\\mcp.example.com\files"),
            (F, "https://mcp%2Eexample.com/files"),
            (F, "https://mcp.example.com/fi\tles"),
            (F, " https://mcp.example.com/files"),
            (F, "https://MCP.EXAMPLE.com:443/files/"),
            (F, "https://mcp.ex\u{e4}mple.com/files"),
            ("http://127.0.0.1/mcp", "http://2130706433/mcp"),
            ("http://[::1]/mcp", "http://[0:0::1]/mcp"),
        ];
        for (a, b) in different {
            assert!(!ResourceUri::new(a).matches(b), "{a} !~ {b}");
        }
    }
}
