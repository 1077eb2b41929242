//! DPoP at the token endpoint (RFC 9449 §5, §8): a token request's proof is checked (its
//! rules, the tenant's nonce when `[dpop] require_nonce` asks for one, and its `jti`, spent in
//! the store so that no server takes it twice) before the grant runs. The key it proves is
//! what the grant binds its minted token to (`cnf.jkt`, `token_type: DPoP`) and, for a public
//! client, its refresh token. A passthrough resource's token is the IdP's and stays a bearer
//! token: the client reads that from `token_type`.

use super::Tokens;
use crate::config::Tenant;
use crate::config::resource::MintedResource;
use crate::domain::ClientId;
use crate::oauth::dpop::{Expected, Proof, ResourceRefusal, check};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::records::SpendOnce;

/// `invalid_dpop_proof` (RFC 9449 §5), and why.
pub(crate) fn invalid_dpop_proof(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, why)
}

impl Tokens {
    /// A token request's DPoP proof, if it sends one, checked (its rules and the tenant's
    /// nonce) but not yet spent: `spend_dpop` spends it once the client is authenticated, so
    /// that an anonymous request costs no write.
    pub(super) fn dpop_proof(
        &self,
        tenant: &Tenant,
        proof: Option<&str>,
        now: u64,
    ) -> Result<Option<Proof>, OAuthError> {
        let Some(proof) = proof else {
            return Ok(None);
        };
        let url = format!("{}/token", tenant.issuer);
        let expected = Expected {
            method: "POST",
            url: &url,
            access_token: None,
            now,
        };
        let checked = check(proof, &expected).map_err(invalid_dpop_proof)?;
        if tenant.dpop_requires_nonce()
            && !checked
                .nonce
                .as_deref()
                .is_some_and(|n| self.proofs.nonces.is_fresh(tenant.id.as_str(), n, now))
        {
            return Err(OAuthError::new(
                ErrorCode::UseDpopNonce,
                "the DPoP proof must carry this server's nonce: make a new proof with the nonce the DPoP-Nonce header gives",
            ));
        }
        Ok(Some(checked))
    }

    /// Spends a checked proof's `jti` in the store (no server takes it twice): the thumbprint
    /// of the key the tokens are then bound to.
    pub(super) async fn spend_dpop(
        &self,
        tenant: &Tenant,
        proof: Option<&Proof>,
        now: u64,
    ) -> Result<Option<String>, OAuthError> {
        let Some(checked) = proof else {
            return Ok(None);
        };
        if !self.spend_proof(tenant, "dpop", checked, now).await? {
            return Err(invalid_dpop_proof(
                "the DPoP proof was used before; make a new one for each request",
            ));
        }
        Ok(Some(checked.jkt.clone()))
    }

    /// Checks the proof of a gateway call with a token bound to `jkt` (`Proofs::check_at_resource`)
    /// and spends its `jti`: in the store when servers share one (a replay to another replica is
    /// caught too), else in this process's memory.
    pub(crate) async fn check_resource_proof(
        &self,
        tenant: &Tenant,
        proof: Option<&str>,
        expected: &Expected<'_>,
        jkt: &str,
    ) -> Result<Result<(), ResourceRefusal>, OAuthError> {
        let checked = match self.proofs.check_at_resource(
            tenant.id.as_str(),
            tenant.dpop_requires_nonce(),
            proof,
            expected,
            jkt,
        ) {
            Ok(c) => c,
            Err(refused) => return Ok(Err(refused)),
        };
        let fresh = if self.records.backend().is_shared() {
            self.spend_proof(tenant, "dpop-call", &checked, expected.now)
                .await?
        } else {
            match self.proofs.remember(tenant.id.as_str(), &checked).await {
                Ok(fresh) => fresh,
                Err(refused) => return Ok(Err(refused)),
            }
        };
        Ok(if fresh {
            Ok(())
        } else {
            Err(ResourceRefusal::Proof(
                "the DPoP proof was used before; make a new one for each request".into(),
            ))
        })
    }

    /// Spends a proof's `jti` in the store under `kind` and its key until no server would
    /// accept it: `false` when it was spent already.
    async fn spend_proof(
        &self,
        tenant: &Tenant,
        kind: &str,
        proof: &Proof,
        now: u64,
    ) -> Result<bool, OAuthError> {
        let scope = format!("{kind}\n{}", proof.jkt);
        let once = SpendOnce {
            scope: &scope,
            jti: &proof.jti,
            client_id: &ClientId::new("dpop"),
            until: proof.spent_until(),
        };
        Ok(once.spend(&self.records, &tenant.id, now).await?)
    }

    /// A fresh nonce of `tenant` for the `DPoP-Nonce` header.
    pub(crate) fn dpop_nonce(&self, tenant: &Tenant, now: u64) -> String {
        self.proofs.nonces.issue(tenant.id.as_str(), now)
    }
}

/// A token for `resource` bound to `binding`, or the refusal when the resource wants bound
/// tokens only and the request proved no key.
pub(super) fn bound_for(
    resource: MintedResource<'_>,
    binding: Option<&str>,
) -> Result<(), OAuthError> {
    if resource.requires_dpop() && binding.is_none() {
        return Err(invalid_dpop_proof(format!(
            "the tokens of {} are DPoP-bound only: send a DPoP proof with the token request (RFC 9449)",
            resource.uri
        )));
    }
    Ok(())
}
