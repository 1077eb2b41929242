// An enterprise IdP for Enterprise-Managed Authorization (the ext-auth extension; the ID-JAG
// draft): it signs ID tokens for its users, and exchanges one (RFC 8693, requested_token_type
// id-jag) for an Identity Assertion JWT Authorization Grant addressed to a resource
// authorization server (the shim's tenant), naming the client the company registered there.
// Discovery at /.well-known/oauth-authorization-server and /.well-known/openid-configuration,
// keys at /jwks (ES256, kid ent-1).
import { randomUUID } from 'node:crypto';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';

/**
 * @param {object} o
 * @param {string} o.issuer   http://127.0.0.1:PORT
 * @param {{id: string, secret: string}} o.client  the client that asks this IdP for ID-JAGs
 * @param {(audience: string) => string | undefined} o.clientIdAt  the client's id at the
 *   authorization server `audience` (what the company registered there)
 */
export async function createEnterpriseIdp({ issuer, client, clientIdAt }) {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'ent-1', alg: 'ES256', use: 'sig' };
  const ownKeys = createLocalJWKSet({ keys: [jwk] });
  const exchanges = [];

  const idToken = (sub) => new SignJWT({ email: `${sub}@acme.example` })
    .setProtectedHeader({ alg: 'ES256', kid: 'ent-1' })
    .setIssuer(issuer).setSubject(sub).setAudience(client.id)
    .setIssuedAt().setExpirationTime('5m').sign(privateKey);

  const json = (res, status, body) => {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'no-store');
    res.end(JSON.stringify(body));
  };
  const refuse = (res, error, description) => json(res, 400, { error, error_description: description });

  async function exchange(form, res) {
    if (form.get('client_id') !== client.id || form.get('client_secret') !== client.secret) {
      return json(res, 401, { error: 'invalid_client' });
    }
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:token-exchange') return refuse(res, 'unsupported_grant_type', form.get('grant_type'));
    if (form.get('requested_token_type') !== 'urn:ietf:params:oauth:token-type:id-jag') return refuse(res, 'invalid_request', 'requested_token_type');
    if (form.get('subject_token_type') !== 'urn:ietf:params:oauth:token-type:id_token') return refuse(res, 'invalid_request', 'subject_token_type');
    let user;
    try {
      ({ payload: user } = await jwtVerify(form.get('subject_token'), ownKeys, { issuer, audience: client.id }));
    } catch (e) {
      return refuse(res, 'invalid_grant', `subject_token: ${e.message}`);
    }
    const audience = form.get('audience');
    const resource = form.get('resource');
    const clientId = audience && clientIdAt(audience);
    if (!clientId || !resource) return refuse(res, 'invalid_target', `no client of ours at ${audience}, or no resource`);
    const claims = { client_id: clientId, resource, email: user.email, ...(form.get('scope') ? { scope: form.get('scope') } : {}) };
    const jag = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'ent-1', typ: 'oauth-id-jag+jwt' })
      .setIssuer(issuer).setSubject(user.sub).setAudience(audience)
      .setJti(randomUUID()).setIssuedAt().setExpirationTime('5m').sign(privateKey);
    exchanges.push({ audience, resource, scope: form.get('scope'), client_id: clientId, sub: user.sub });
    return json(res, 200, { access_token: jag, issued_token_type: 'urn:ietf:params:oauth:token-type:id-jag', token_type: 'N_A', expires_in: 300 });
  }

  const metadata = {
    issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`,
    grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
    response_types_supported: ['code'], token_endpoint_auth_methods_supported: ['client_secret_post'],
  };
  function handler(req, res) {
    const path = new URL(req.url, issuer).pathname;
    if (req.method === 'GET' && (path === '/.well-known/oauth-authorization-server' || path === '/.well-known/openid-configuration')) return json(res, 200, metadata);
    if (req.method === 'GET' && path === '/jwks') return json(res, 200, { keys: [jwk] });
    if (req.method === 'POST' && path === '/token') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => exchange(new URLSearchParams(Buffer.concat(chunks).toString()), res).catch((e) => json(res, 500, { error: 'server_error', error_description: e.message })));
      return undefined;
    }
    return json(res, 404, { error: 'not_found' });
  }
  return { handler, idToken, exchanges };
}
