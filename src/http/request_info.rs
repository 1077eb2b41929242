//! What handlers and pages read about the request being served: a bounded log field for a
//! value the client chose, and its path below the public URL's prefix.

/// A log field for a value the client chose: at most 200 bytes of it (a refusal line must not
/// become a way to fill the log). Log it with `?` so that control characters are escaped.
pub(crate) fn client_value(v: Option<&str>) -> Option<&str> {
    v.map(|v| {
        let mut end = v.len().min(200);
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        &v[..end]
    })
}

/// `path` as it would be under a public URL without a path: the prefix taken off the tenants'
/// routes (`/mcp-auth/demo/token` → `/demo/token`) and out of the metadata's (`/.well-known/
/// oauth-authorization-server/mcp-auth/demo` → `/.well-known/oauth-authorization-server/demo`),
/// for what reads routes by their segments (CORS, labels, the tenant of a request).
pub(crate) fn local_path<'a>(path: &'a str, prefix: &str) -> std::borrow::Cow<'a, str> {
    use std::borrow::Cow;
    if prefix.is_empty() {
        return Cow::Borrowed(path);
    }
    if let Some(rest) = path.strip_prefix(prefix)
        && rest.starts_with('/')
    {
        return Cow::Borrowed(rest);
    }
    for kind in ["oauth-authorization-server", "openid-configuration"] {
        let inserted = format!("/.well-known/{kind}{prefix}/");
        if let Some(tenant) = path.strip_prefix(&inserted) {
            return Cow::Owned(format!("/.well-known/{kind}/{tenant}"));
        }
    }
    Cow::Borrowed(path)
}
