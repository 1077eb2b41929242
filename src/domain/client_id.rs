//! `ClientId`: a client identifier (RFC 6749 §2.2) of one tenant: a UUIDv7 the shim issued at
//! registration (RFC 7591), or the https URL of the client's metadata document (CIMD).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A client identifier. Public, never a credential. Serialized as the plain string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// A new id for a registered client: a UUIDv7, a millisecond timestamp followed by a
    /// counter and random bits, so it tells when the client registered; being time-ordered,
    /// new ones land at the end of their tenant's key range, in one warm part of the store.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// A client id as a request or a document gave it; whether such a client exists is the
    /// registry's question.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<String> for ClientId {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}
