//! What Entra's errors mean: its AADSTS codes (found in an error description) mapped to the
//! OAuth error code a client should get and a sentence that tells the operator what to fix.

/// The OAuth error code to answer the client with, and advice for the operator, for an AADSTS
/// code.
struct Meaning {
    codes: &'static [&'static str],
    oauth_error: &'static str,
    advice: &'static str,
}

/// What each AADSTS code means. Codes from Microsoft's Entra authentication and authorization
/// error codes reference.
const MEANINGS: &[Meaning] = &[
    Meaning {
        codes: &["AADSTS50105"],
        oauth_error: "access_denied",
        advice: "the user is not assigned to the app registration; an Entra admin must assign the user or a group under Enterprise applications → Users and groups",
    },
    Meaning {
        codes: &["AADSTS65001"],
        oauth_error: "consent_required",
        advice: "consent for the app's API permissions is missing; an Entra admin must grant admin consent",
    },
    Meaning {
        codes: &["AADSTS65004"],
        oauth_error: "access_denied",
        advice: "the user declined to consent to the app; nothing to fix unless that was a mistake",
    },
    Meaning {
        codes: &["AADSTS90094", "AADSTS90095"],
        oauth_error: "access_denied",
        advice: "the directory requires an admin to approve this app for the user; an Entra admin must grant tenant-wide admin consent to the app registration (Enterprise applications → Permissions), or let users consent",
    },
    Meaning {
        codes: &["AADSTS50076", "AADSTS50079", "AADSTS50158"],
        oauth_error: "interaction_required",
        advice: "multi-factor authentication or another interactive step is required; sign in again interactively",
    },
    Meaning {
        codes: &["AADSTS50058", "AADSTS16000"],
        oauth_error: "login_required",
        advice: "the user is not signed in; sign in interactively",
    },
    Meaning {
        codes: &["AADSTS54005", "AADSTS70008"],
        oauth_error: "invalid_grant",
        advice: "the authorization code was already used or has expired; start the login again",
    },
    Meaning {
        codes: &["AADSTS700082", "AADSTS70043", "AADSTS50173", "AADSTS700084"],
        oauth_error: "invalid_grant",
        advice: "the refresh token expired or was revoked; sign in again",
    },
    Meaning {
        codes: &["AADSTS50196"],
        oauth_error: "temporarily_unavailable",
        advice: "Entra throttled a login loop; wait before retrying",
    },
    Meaning {
        codes: &["AADSTS7000215"],
        oauth_error: "server_error",
        advice: "the shim's client secret for this app is invalid; update the secret the tenant file references",
    },
    Meaning {
        codes: &["AADSTS7000222"],
        oauth_error: "server_error",
        advice: "the shim's client secret for this app has expired; create a new one under Certificates & secrets and update the secret the tenant file references",
    },
    Meaning {
        codes: &["AADSTS700027", "AADSTS700024", "AADSTS7000274"],
        oauth_error: "server_error",
        advice: "the shim's client assertion was rejected; check the certificate uploaded to the app registration and the shim's clock",
    },
    Meaning {
        codes: &["AADSTS7000218"],
        oauth_error: "server_error",
        advice: "Entra expected a client credential: register the shim's callback under the Web platform and give the app a secret, certificate or federated credential",
    },
    Meaning {
        codes: &["AADSTS9002326"],
        oauth_error: "server_error",
        advice: "the token request carried an Origin header, which Entra refuses for a Web redirect URI; the shim sends none, so a proxy between the shim and Entra added it: remove it there",
    },
    Meaning {
        codes: &["AADSTS9002327"],
        oauth_error: "server_error",
        advice: "the callback is registered under the Single-page application platform; register <issuer>/callback under the Web platform instead",
    },
    Meaning {
        codes: &["AADSTS50011"],
        oauth_error: "server_error",
        advice: "the shim's callback URL is not a redirect URI of the app registration; add <issuer>/callback under the Web platform",
    },
    Meaning {
        codes: &["AADSTS700016"],
        oauth_error: "server_error",
        advice: "the app's client_id is not known in this directory; check apps[].client_id and upstream.directory_id",
    },
    Meaning {
        codes: &["AADSTS9010010", "AADSTS901002"],
        oauth_error: "invalid_target",
        advice: "Entra rejected the resource parameter; the shim should not send it to Entra",
    },
    Meaning {
        codes: &[
            "AADSTS650053",
            "AADSTS70011",
            "AADSTS28000",
            "AADSTS700022",
            "AADSTS28003",
        ],
        oauth_error: "invalid_scope",
        advice: "the scopes are not valid for this app: use fully qualified scopes of one API, and .default alone",
    },
    Meaning {
        codes: &["AADSTS90072", "AADSTS50020"],
        oauth_error: "access_denied",
        advice: "the user's account does not belong to this directory; invite the user or use the right tenant",
    },
    Meaning {
        codes: &["AADSTS53000", "AADSTS53001"],
        oauth_error: "access_denied",
        advice: "a Conditional Access policy requires a compliant or domain-joined device, and this one is not; the user must sign in from a managed device, or an admin must change the policy",
    },
    Meaning {
        codes: &["AADSTS53003"],
        oauth_error: "access_denied",
        advice: "a Conditional Access policy blocked the sign-in; an admin can see which in the sign-in logs (by the correlation id)",
    },
];

/// AADSTS code → (the OAuth error code to answer the client with, advice for the operator);
/// a code not in `MEANINGS` is a `server_error` the operator looks up.
pub(crate) fn aadsts_meaning(code: &str) -> (&'static str, &'static str) {
    MEANINGS.iter().find(|m| m.codes.contains(&code)).map_or(
        (
            "server_error",
            "see the Entra error code reference for this code",
        ),
        |m| (m.oauth_error, m.advice),
    )
}
