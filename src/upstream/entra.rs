//! What Entra's errors mean: its AADSTS codes (found in an error description) mapped to the
//! OAuth error code a client should get and a sentence that tells the operator what to fix.

/// AADSTS code → (the OAuth error code to answer the client with, advice for the operator).
/// Codes from Microsoft's Entra authentication and authorization error codes reference.
pub(crate) fn aadsts_meaning(code: &str) -> (&'static str, &'static str) {
    match code {
        "AADSTS50105" => (
            "access_denied",
            "the user is not assigned to the app registration; an Entra admin must assign the user or a group under Enterprise applications → Users and groups",
        ),
        "AADSTS65001" => (
            "consent_required",
            "consent for the app's API permissions is missing; an Entra admin must grant admin consent",
        ),
        "AADSTS65004" => (
            "access_denied",
            "the user declined to consent to the app; nothing to fix unless that was a mistake",
        ),
        "AADSTS90094" | "AADSTS90095" => (
            "access_denied",
            "the directory requires an admin to approve this app for the user; an Entra admin must grant tenant-wide admin consent to the app registration (Enterprise applications → Permissions), or let users consent",
        ),
        "AADSTS50076" | "AADSTS50079" | "AADSTS50158" => (
            "interaction_required",
            "multi-factor authentication or another interactive step is required; sign in again interactively",
        ),
        "AADSTS50058" | "AADSTS16000" => (
            "login_required",
            "the user is not signed in; sign in interactively",
        ),
        "AADSTS54005" | "AADSTS70008" => (
            "invalid_grant",
            "the authorization code was already used or has expired; start the login again",
        ),
        "AADSTS700082" | "AADSTS70043" | "AADSTS50173" | "AADSTS700084" => (
            "invalid_grant",
            "the refresh token expired or was revoked; sign in again",
        ),
        "AADSTS50196" => (
            "temporarily_unavailable",
            "Entra throttled a login loop; wait before retrying",
        ),
        "AADSTS7000215" => (
            "server_error",
            "the shim's client secret for this app is invalid; update the secret the tenant file references",
        ),
        "AADSTS7000222" => (
            "server_error",
            "the shim's client secret for this app has expired; create a new one under Certificates & secrets and update the secret the tenant file references",
        ),
        "AADSTS700027" | "AADSTS700024" | "AADSTS7000274" => (
            "server_error",
            "the shim's client assertion was rejected; check the certificate uploaded to the app registration and the shim's clock",
        ),
        "AADSTS7000218" => (
            "server_error",
            "Entra expected a client credential: register the shim's callback under the Web platform and give the app a secret, certificate or federated credential",
        ),
        "AADSTS9002326" => (
            "server_error",
            "the token request carried an Origin header, which Entra refuses for a Web redirect URI; the shim sends none, so a proxy between the shim and Entra added it: remove it there",
        ),
        "AADSTS9002327" => (
            "server_error",
            "the callback is registered under the Single-page application platform; register <issuer>/callback under the Web platform instead",
        ),
        "AADSTS50011" => (
            "server_error",
            "the shim's callback URL is not a redirect URI of the app registration; add <issuer>/callback under the Web platform",
        ),
        "AADSTS700016" => (
            "server_error",
            "the app's client_id is not known in this directory; check apps[].client_id and upstream.directory_id",
        ),
        "AADSTS9010010" | "AADSTS901002" => (
            "invalid_target",
            "Entra rejected the resource parameter; the shim should not send it to Entra",
        ),
        "AADSTS650053" | "AADSTS70011" | "AADSTS28000" | "AADSTS700022" | "AADSTS28003" => (
            "invalid_scope",
            "the scopes are not valid for this app: use fully qualified scopes of one API, and .default alone",
        ),
        "AADSTS90072" | "AADSTS50020" => (
            "access_denied",
            "the user's account does not belong to this directory; invite the user or use the right tenant",
        ),
        "AADSTS53000" | "AADSTS53001" => (
            "access_denied",
            "a Conditional Access policy requires a compliant or domain-joined device, and this one is not; the user must sign in from a managed device, or an admin must change the policy",
        ),
        "AADSTS53003" => (
            "access_denied",
            "a Conditional Access policy blocked the sign-in; an admin can see which in the sign-in logs (by the correlation id)",
        ),
        _ => (
            "server_error",
            "see the Entra error code reference for this code",
        ),
    }
}
