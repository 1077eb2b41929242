//! Session ids bound to their caller. An MCP server's `Mcp-Session-Id` (2025-11-25) reaches
//! the client signed for the resource, the user and the client it was made for
//! (`base64url(id) "." mac`, `crypto/signing.rs`); a request carrying it is passed on with the
//! server's own id only when the same caller presents it. Another user holding someone's
//! session id reaches nothing: the MCP server behind may have no auth of its own to tell them
//! apart.

use super::admission::Caller;
use crate::crypto::Signer;

pub(crate) struct SessionBinding(Signer);

impl SessionBinding {
    pub(crate) fn new(signer: Signer) -> Self {
        Self(signer)
    }

    /// What a session id is bound to: the resource, the user and the client.
    fn purpose(resource: &str, caller: &Caller) -> String {
        format!(
            "gateway session v1\0{resource}\0{}\0{}",
            caller.text("sub"),
            caller.text("client_id")
        )
    }

    /// The MCP server's session id `id` as the client receives it.
    pub(crate) fn seal(&self, resource: &str, caller: &Caller, id: &str) -> String {
        self.0.sign(&Self::purpose(resource, caller), id.as_bytes())
    }

    /// The MCP server's session id inside `presented`, if `caller` is the one it was made for.
    pub(crate) fn open(&self, resource: &str, caller: &Caller, presented: &str) -> Option<String> {
        let id = self.0.verify(&Self::purpose(resource, caller), presented)?;
        String::from_utf8(id).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::ServerKeys;
    use serde_json::json;

    fn caller(sub: &str, client: &str) -> Caller {
        Caller {
            claims: json!({"sub": sub, "client_id": client})
                .as_object()
                .unwrap()
                .clone(),
        }
    }

    #[test]
    fn only_the_caller_a_session_was_made_for_gets_it_back() {
        let binding = SessionBinding::new(Signer::new(&ServerKeys::from_bytes([7; 32], None)));
        let r = "https://files.example.com/mcp";
        let ada = caller("ada", "c1");
        let sealed = binding.seal(r, &ada, "session-1");
        assert_ne!(sealed, "session-1");
        assert!(
            sealed.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "visible ASCII (Streamable HTTP)"
        );
        assert_eq!(binding.open(r, &ada, &sealed).as_deref(), Some("session-1"));
        assert_eq!(
            binding.open(r, &caller("bob", "c1"), &sealed),
            None,
            "another user"
        );
        assert_eq!(
            binding.open(r, &caller("ada", "c2"), &sealed),
            None,
            "another client"
        );
        assert_eq!(
            binding.open("https://other/mcp", &ada, &sealed),
            None,
            "another resource"
        );
        assert_eq!(
            binding.open(r, &ada, "session-1"),
            None,
            "the server's own id"
        );
    }
}
