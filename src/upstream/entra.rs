//! IdP errors → OAuth errors for the client, and a line for the operator. Entra's AADSTS codes
//! (REFERENCE.md) get an error code and a sentence that says what to fix; any other IdP's
//! standard error code is passed through.

use crate::oauth::{ErrorCode, OAuthError};

/// What the IdP said went wrong, from an authorization or token error response.
#[derive(Clone, Debug, Default)]
pub struct IdpError {
    pub error: String,
    pub description: Option<String>,
    pub correlation_id: Option<String>,
    pub trace_id: Option<String>,
}

impl IdpError {
    /// The `AADSTS<n>` code in the description, if any.
    pub fn aadsts(&self) -> Option<String> {
        let d = self.description.as_deref()?;
        let start = d.find("AADSTS")?;
        let digits: String = d[start + 6..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
    }

    /// The error for the client, with the IdP's own code kept in the description.
    pub fn to_client(&self) -> OAuthError {
        let (code, advice) = match self.aadsts().as_deref() {
            Some(aadsts) => map_aadsts(aadsts),
            None => (
                ErrorCode::parse(&self.error).unwrap_or(ErrorCode::ServerError),
                "",
            ),
        };
        // invalid_client / unauthorized_client from the IdP are about the shim's own app
        // credential, not the MCP client's: telling the client would make it drop its
        // registration. The operator's log has the IdP's words.
        if matches!(
            code,
            ErrorCode::InvalidClient | ErrorCode::UnauthorizedClient
        ) {
            return OAuthError::new(
                ErrorCode::ServerError,
                "the identity provider refused this server's app credentials; the operator's log has the reason",
            );
        }
        let idp_said = self
            .description
            .as_deref()
            .map(|d| {
                d.lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect::<String>()
            })
            .unwrap_or_else(|| self.error.clone());
        let description = if advice.is_empty() {
            format!("the identity provider refused: {idp_said}")
        } else {
            format!("the identity provider refused ({advice}): {idp_said}")
        };
        OAuthError::new(code, description)
    }

    /// What the operator should do, for the log.
    pub fn operator_advice(&self) -> &'static str {
        self.aadsts()
            .as_deref()
            .map(|c| map_aadsts(c).1)
            .unwrap_or("see the identity provider's description")
    }
}

/// AADSTS code → (client error code, advice).
fn map_aadsts(code: &str) -> (ErrorCode, &'static str) {
    use ErrorCode::*;
    match code {
        "AADSTS50105" => (
            AccessDenied,
            "the user is not assigned to the app registration; an Entra admin must assign the user or a group under Enterprise applications → Users and groups",
        ),
        "AADSTS65001" | "AADSTS65004" => (
            ConsentRequired,
            "consent for the app's API permissions is missing; an Entra admin must grant admin consent",
        ),
        "AADSTS50076" | "AADSTS50079" | "AADSTS50158" => (
            InteractionRequired,
            "multi-factor authentication or another interactive step is required; sign in again interactively",
        ),
        "AADSTS50058" | "AADSTS16000" => (
            LoginRequired,
            "the user is not signed in; sign in interactively",
        ),
        "AADSTS54005" | "AADSTS70008" => (
            InvalidGrant,
            "the authorization code was already used or has expired; start the login again",
        ),
        "AADSTS700082" | "AADSTS70043" | "AADSTS50173" | "AADSTS700084" => (
            InvalidGrant,
            "the refresh token expired or was revoked; sign in again",
        ),
        "AADSTS50196" => (
            TemporarilyUnavailable,
            "Entra throttled a login loop; wait before retrying",
        ),
        "AADSTS7000215" | "AADSTS7000222" => (
            ServerError,
            "the shim's client secret for this app is invalid or expired; update the secret the tenant file references",
        ),
        "AADSTS700027" | "AADSTS700024" | "AADSTS7000274" => (
            ServerError,
            "the shim's client assertion was rejected; check the certificate uploaded to the app registration and the shim's clock",
        ),
        "AADSTS7000218" => (
            ServerError,
            "Entra expected a client credential: register the shim's callback under the Web platform and give the app a secret, certificate or federated credential",
        ),
        "AADSTS9002326" => (
            ServerError,
            "the callback is registered under the SPA platform; register it under the Web platform",
        ),
        "AADSTS50011" => (
            ServerError,
            "the shim's callback URL is not a redirect URI of the app registration; add <issuer>/callback under the Web platform",
        ),
        "AADSTS700016" => (
            ServerError,
            "the app's client_id is not known in this directory; check apps[].client_id and upstream.directory_id",
        ),
        "AADSTS9010010" | "AADSTS901002" => (
            InvalidTarget,
            "Entra rejected the resource parameter; the shim should not send it to Entra",
        ),
        "AADSTS650053" | "AADSTS70011" | "AADSTS28000" | "AADSTS700022" | "AADSTS28003" => (
            InvalidScope,
            "the scopes are not valid for this app: use fully qualified scopes of one API, and .default alone",
        ),
        "AADSTS90072" | "AADSTS50020" => (
            AccessDenied,
            "the user's account does not belong to this directory; invite the user or use the right tenant",
        ),
        "AADSTS53003" => (
            AccessDenied,
            "a Conditional Access policy blocked the sign-in",
        ),
        _ => (
            ServerError,
            "see the Entra error code reference for this code",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_codes_are_found_and_mapped() {
        let e = IdpError {
            error: "invalid_request".into(),
            description: Some(
                "AADSTS50105: The signed in user 'x' is not assigned to a role.\r\nTrace ID: 1"
                    .into(),
            ),
            ..Default::default()
        };
        assert_eq!(e.aadsts().as_deref(), Some("AADSTS50105"));
        let c = e.to_client();
        assert_eq!(c.code, ErrorCode::AccessDenied);
        assert!(c.description.contains("AADSTS50105"));
        let plain = IdpError {
            error: "access_denied".into(),
            ..Default::default()
        };
        assert_eq!(plain.to_client().code, ErrorCode::AccessDenied);
        let odd = IdpError {
            error: "weird".into(),
            ..Default::default()
        };
        assert_eq!(odd.to_client().code, ErrorCode::ServerError);
    }
}
