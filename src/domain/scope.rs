//! Scope tokens (RFC 6749 §3.3): `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, and
//! `ScopeSet`, the ordered set of them a grant carries.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest scope token accepted.
pub(crate) const MAX_SCOPE_TOKEN_LEN: usize = 256;

/// Whether `token` is a single, well-formed scope token.
pub(crate) fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_SCOPE_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Splits a space-delimited scope string, refusing malformed tokens and empty items.
pub(crate) fn parse_scope_list(scope: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for token in scope.split(' ') {
        if !is_scope_token(token) {
            return Err(format!(
                "'{}' is not a valid scope token (RFC 6749 §3.3: printable ASCII without space, '\"' or '\\', separated by single spaces)",
                token.escape_default()
            ));
        }
        if !out.iter().any(|t| t == token) {
            out.push(token.to_owned());
        }
    }
    Ok(out)
}

/// An ordered set of scope tokens: no duplicates, kept in the order given. Serialized as a list;
/// `Display` is the space-delimited `scope` string of RFC 6749 §3.3.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    /// Adds `token` at the end unless it is already there.
    pub(crate) fn insert(&mut self, token: impl Into<String>) {
        let token = token.into();
        if !self.contains(&token) {
            self.0.push(token);
        }
    }

    /// Adds `token` at the front unless it is already there.
    pub(crate) fn insert_first(&mut self, token: impl Into<String>) {
        let token = token.into();
        if !self.contains(&token) {
            self.0.insert(0, token);
        }
    }

    pub(crate) fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: Into<String>> FromIterator<S> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut set = Self::default();
        for token in iter {
            set.insert(token);
        }
        set
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_scope_token("api://mcp-files/files.read"));
        assert!(is_scope_token("offline_access"));
        assert!(!is_scope_token(""));
        assert!(!is_scope_token("a b"));
        assert!(!is_scope_token("a\"b"));
        assert!(!is_scope_token("a\\b"));
        assert!(!is_scope_token("é"));
        assert_eq!(parse_scope_list("a b a").unwrap(), vec!["a", "b"]);
        assert!(parse_scope_list("a  b").is_err());
        let mut set: ScopeSet = ["b", "a", "b"].into_iter().collect();
        set.insert_first("openid");
        set.insert("a");
        assert_eq!(set.to_string(), "openid b a");
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"["openid","b","a"]"#
        );
    }
}
