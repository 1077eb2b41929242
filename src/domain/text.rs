//! Text that someone else wrote (a client's metadata, an IdP's claims) and that the shim shows
//! on a page, writes to a log or prints in a terminal: what may never be in it.

/// Characters that reorder, hide or split the text around them: Unicode's format characters
/// (general category Cf: the bidirectional embeddings, overrides, isolates and marks, where a
/// U+202E before `lanretxe` shows `external` on screen while the bytes and the log say
/// otherwise; zero-width spaces, the word joiner, the byte-order mark, the soft hyphen, tags),
/// the line and paragraph separators (which forge log lines), and the Hangul fillers that show
/// as nothing. The zero-width joiner and non-joiner are allowed: scripts and emoji need them.
fn is_bidi_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
        | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{115F}' | '\u{1160}' | '\u{180E}'
        | '\u{200B}' | '\u{200E}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub(crate) fn bounded(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Whether `s` holds a control character (C0, DEL, C1: terminal escapes, line breaks that
/// forge log lines) or a bidirectional formatting character.
pub(crate) fn has_control_or_bidi(s: &str) -> bool {
    s.chars().any(|c| c.is_control() || is_bidi_format(c))
}

/// `s` with every control or bidirectional formatting character written as `\u{…}`, for a
/// terminal: what someone else wrote can then neither move the cursor, change colours, forge a
/// line nor reorder a column.
pub(crate) fn escape_for_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || is_bidi_format(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Longest claim value from an IdP (a subject, a sign-in name, a directory id) that the shim
/// records, logs or lists; Entra's and Okta's are well under 100 characters.
pub(crate) const MAX_CLAIM_LEN: usize = 256;

/// A claim value fit to record, log and list: at most [`MAX_CLAIM_LEN`] characters, with no
/// control or bidirectional formatting character. The error says which rule it breaks.
pub(crate) fn recordable_claim(value: &str) -> Result<&str, String> {
    if value.chars().count() > MAX_CLAIM_LEN {
        return Err(format!("is longer than {MAX_CLAIM_LEN} characters"));
    }
    if has_control_or_bidi(value) {
        return Err("holds control or bidirectional formatting characters".into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_found() {
        for bad in [
            "a\u{202E}b",
            "a\u{202A}",
            "\u{2066}x",
            "x\u{2069}",
            "\u{200E}",
            "\u{200F}",
            "\u{061C}",
            "a\nb",
            "\u{1b}[31m",
            "\u{85}",
            "a\u{200B}b",
            "\u{FEFF}x",
            "soft\u{00AD}",
            "a\u{2028}b",
            "\u{E0041}",
            "\u{3164}",
        ] {
            assert!(has_control_or_bidi(bad), "{bad:?}");
        }
        for good in [
            "Claude Code",
            "Café ☕",
            "مرحبا",
            "שלום",
            "a\u{200D}b",
            "a\u{200C}b",
        ] {
            assert!(!has_control_or_bidi(good), "{good:?}");
        }
    }

    #[test]
    fn terminal_output_is_escaped() {
        assert_eq!(escape_for_terminal("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape_for_terminal("x\u{202E}y\n"), "x\\u{202e}y\\u{a}");
        assert_eq!(escape_for_terminal("Café"), "Café");
    }

    #[test]
    fn claims_are_bounded_and_printable() {
        assert!(recordable_claim("alice@contoso.com").is_ok());
        assert!(recordable_claim(&"a".repeat(MAX_CLAIM_LEN)).is_ok());
        assert!(recordable_claim(&"a".repeat(MAX_CLAIM_LEN + 1)).is_err());
        assert!(recordable_claim("alice\nevent=forged").is_err());
        assert!(recordable_claim("admin\u{202E}moc").is_err());
    }
}
