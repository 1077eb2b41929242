//! The admin API's bearer tokens: a file of `label token` lines (blank lines and `#` comments
//! skipped), readable by its owner only. Only the tokens' SHA-256 is kept in memory, and a
//! presented token is compared with every one in constant time; the label names the operator
//! in the audit log. SIGHUP reads the file again (`reload`), so a leaked token is withdrawn by
//! removing its line and signalling; a file that cannot be read or holds a bad line adds no
//! token and keeps only those in force it still lists on a good line, logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::crypto::private_file::{describe, read_private};
use crate::crypto::{Handle, HandleKey};

/// Shortest admin token accepted.
pub(crate) const MIN_TOKEN_LEN: usize = 32;

/// Labels and the hashes of their tokens.
type TokenSet = Vec<(String, HandleKey)>;

pub struct AdminTokens {
    tokens: ArcSwap<TokenSet>,
    /// The file they were read from (none for the offline commands' single token).
    file: Option<PathBuf>,
}

impl AdminTokens {
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        Ok(Self {
            tokens: ArcSwap::from_pointee(read_tokens(path)?),
            file: Some(path.to_owned()),
        })
    }

    /// One token in memory (the offline admin commands' own, never written anywhere).
    pub(crate) fn single(label: &str, token: &Handle) -> Self {
        Self {
            tokens: ArcSwap::from_pointee(vec![(label.to_owned(), token.key())]),
            file: None,
        }
    }

    /// Reads the token file again and serves its tokens from the next request on. A file that
    /// cannot be read or holds a bad line adds nothing, and withdraws every token it no longer
    /// lists on a good line. Either way it is logged.
    pub fn reload(&self) {
        let Some(path) = &self.file else { return };
        match read_tokens(path) {
            Ok(tokens) => {
                let labels: Vec<String> = tokens.iter().map(|(l, _)| l.clone()).collect();
                // In force before it is said to be: whoever reads the line finds it so.
                self.tokens.store(Arc::new(tokens));
                tracing::info!(target: "audit", event = "admin_tokens_reloaded", labels = %labels.join(" "), "admin tokens reloaded");
            }
            Err(e) => {
                // Never a token the file no longer lists (the leaked one whose line was
                // removed while another line was mistyped), never one from a bad file: what
                // stays in force is what was in force and is still listed on a good line.
                let listed = read_private(path)
                    .map(|text| parse_lines(&text).0)
                    .unwrap_or_default();
                let kept: TokenSet = self
                    .tokens
                    .load()
                    .iter()
                    .filter(|t| listed.contains(t))
                    .cloned()
                    .collect();
                let labels: Vec<String> = kept.iter().map(|(l, _)| l.clone()).collect();
                self.tokens.store(Arc::new(kept));
                tracing::error!(error = %e, still_in_force = %labels.join(" "),
                    "admin tokens not reloaded: only the tokens in force before that the file still lists on a good line stay in force, until the file is fixed and SIGHUP sent again");
            }
        }
    }

    /// The label of the token in an `Authorization: Bearer` value, if it is one of ours.
    pub(crate) fn check(&self, authorization: Option<&str>) -> Option<String> {
        let presented = crate::http::body::parse_bearer(authorization?)?;
        let presented = Handle::presented(presented);
        // Every token is compared, so the time taken does not say which one was close.
        let mut found = None;
        for (label, key) in self.tokens.load().iter() {
            if key.matches(&presented) && found.is_none() {
                found = Some(label.clone());
            }
        }
        found
    }
}

fn read_tokens(path: &Path) -> Result<TokenSet, String> {
    let text = read_private(path).map_err(|e| describe("the admin token file", path, &e))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse(text: &str) -> Result<TokenSet, String> {
    let (tokens, problems) = parse_lines(text);
    if let Some(first) = problems.into_iter().next() {
        return Err(first);
    }
    if tokens.is_empty() {
        return Err("holds no token; write one `<label> <token>` line".into());
    }
    Ok(tokens)
}

/// The lines that hold a token, and what is wrong with each of the others.
fn parse_lines(text: &str) -> (TokenSet, Vec<String>) {
    let mut tokens = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((label, token)) = line
            .split_once(char::is_whitespace)
            .map(|(l, t)| (l, t.trim()))
        else {
            problems.push(format!("line {}: write `<label> <token>`", n + 1));
            continue;
        };
        let label_ok = label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
        if !label_ok {
            problems.push(format!(
                "line {}: the label may hold letters, digits and - _ . @ only",
                n + 1
            ));
            continue;
        }
        if token.len() < MIN_TOKEN_LEN || token.contains(char::is_whitespace) {
            problems.push(format!(
                "line {}: the token must be at least {MIN_TOKEN_LEN} characters without spaces (e.g. `openssl rand -hex 32`)",
                n + 1
            ));
            continue;
        }
        tokens.push((label.to_owned(), Handle::presented(token).key()));
    }
    (tokens, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_and_checks_tokens() {
        let t = AdminTokens {
            tokens: ArcSwap::from_pointee(
                parse(&format!(
                    "# operators\nalice {}\n\nci-bot {}\n",
                    "a".repeat(40),
                    "b".repeat(40)
                ))
                .unwrap(),
            ),
            file: None,
        };
        assert_eq!(
            t.check(Some(&format!("Bearer {}", "b".repeat(40))))
                .as_deref(),
            Some("ci-bot")
        );
        assert_eq!(t.check(Some(&format!("Bearer {}", "c".repeat(40)))), None);
        assert_eq!(t.check(Some(&"a".repeat(40))), None, "no scheme");
        assert_eq!(t.check(None), None);
        assert!(parse("alice short").is_err());
        assert!(parse("").is_err());
        assert!(parse(&format!("bad/label {}", "a".repeat(40))).is_err());
    }
}
