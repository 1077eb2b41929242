//! The wire names of the grants beyond the code and refresh grants, for the token endpoint and
//! the metadata document alike (a leaf: it imports nothing).

/// RFC 6749 §4.4.
pub(crate) const CLIENT_CREDENTIALS: &str = "client_credentials";

/// RFC 7523 §2.1.
pub(crate) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// RFC 8693 §2.1.
pub(crate) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// What the metadata's `authorization_grant_profiles_supported` lists for the ID-JAG grant.
pub(crate) const ID_JAG_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";
