//! Scope tokens (RFC 6749 §3.3): `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.

/// Longest scope token accepted.
pub const MAX_SCOPE_TOKEN_LEN: usize = 256;

/// Whether `token` is a single, well-formed scope token.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_SCOPE_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Splits a space-delimited scope string, refusing malformed tokens and empty items.
pub fn parse_scope_list(scope: &str) -> Result<Vec<String>, String> {
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
    }
}
