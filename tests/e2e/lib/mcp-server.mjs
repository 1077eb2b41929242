// The MCP server (resource server): protected-resource metadata pointing at a shim tenant,
// bearer auth verifying the IdP's JWT access tokens (or, for a minted tenant, the shim's), tools
// whoami (files.read) and write_file (files.write), and for a minted tenant `report`, which
// reaches the suite's downstream API through the shim's token exchange.
import express from 'express';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { mcpAuthMetadataRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { z } from 'zod';
import { API } from './idp.mjs';

const SCOPE_PREFIX = `${API}/`;

/** Verifier: signature (IdP JWKS), issuer, audience; scopes mapped to MCP-facing names. */
export function makeVerifier({ idpIssuer, jwksUri, seen }) {
  const jwks = createRemoteJWKSet(new URL(jwksUri));
  return {
    async verifyAccessToken(token) {
      let payload;
      try {
        ({ payload } = await jwtVerify(token, jwks, { issuer: idpIssuer, audience: API }));
      } catch (e) {
        throw new InvalidTokenError(`access token rejected: ${e.code || ''} ${e.message}`);
      }
      seen.push(payload);
      const scopes = String(payload.scope || '').split(' ').filter(Boolean)
        .map((s) => (s.startsWith(SCOPE_PREFIX) ? s.slice(SCOPE_PREFIX.length) : s));
      return { token, clientId: String(payload.client_id || ''), scopes, expiresAt: payload.exp, extra: { claims: payload } };
    },
  };
}

/**
 * Verifier for the shim's minted tokens (docs/tokens.md): keys from the shim's jwks_uri, ES256,
 * typ at+jwt, the tenant's issuer, this resource as the audience.
 */
export function makeMintedVerifier({ shimMetadata, resource, seen }) {
  const jwks = createRemoteJWKSet(new URL(shimMetadata.jwks_uri));
  return {
    async verifyAccessToken(token) {
      let payload;
      try {
        ({ payload } = await jwtVerify(token, jwks, { issuer: shimMetadata.issuer, audience: resource, algorithms: ['ES256'], typ: 'at+jwt' }));
      } catch (e) {
        throw new InvalidTokenError(`access token rejected: ${e.code || ''} ${e.message}`);
      }
      seen.push(payload);
      const scopes = String(payload.scope || '').split(' ').filter(Boolean);
      return { token, clientId: String(payload.client_id || ''), scopes, expiresAt: payload.exp, extra: { claims: payload } };
    },
  };
}

/**
 * The downstream API of the suite: validates the IdP's tokens for `audience` (signature,
 * issuer, audience, scope) and says whose report it serves.
 */
export function mountReportsApi(app, { path, idpIssuer, jwksUri, audience, scope }) {
  const jwks = createRemoteJWKSet(new URL(jwksUri));
  const calls = [];
  app.get(path, async (req, res) => {
    const token = (req.headers.authorization || '').replace(/^Bearer /, '');
    try {
      const { payload } = await jwtVerify(token, jwks, { issuer: idpIssuer, audience });
      if (!String(payload.scope || '').split(' ').includes(scope)) return res.status(403).json({ error: 'insufficient_scope' });
      calls.push(payload);
      res.json({ report: 'quarterly', for: payload.sub, aud: payload.aud, scope: payload.scope });
    } catch (e) {
      res.status(401).json({ error: 'invalid_token', error_description: e.message });
    }
  });
  return { calls };
}

/** A tool body that exchanges the caller's minted token at the shim and calls the reports API. */
async function callReports(exchange, subjectToken) {
  const r = await fetch(exchange.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${exchange.clientId}:${exchange.secret}`).toString('base64')}` },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      audience: exchange.audience,
    }),
  });
  const exchanged = await r.json();
  if (r.status !== 200) return { exchangeStatus: r.status, exchanged };
  const api = await fetch(exchange.apiUrl, { headers: { authorization: `Bearer ${exchanged.access_token}` } });
  return { exchangeStatus: 200, issued_token_type: exchanged.issued_token_type, apiStatus: api.status, api: await api.json() };
}

function buildMcp(exchange) {
  const server = new McpServer({ name: 'e2e-files', version: '1.0.0' });
  if (exchange) {
    server.registerTool('report', { description: 'a report from the downstream API, as the user' }, async (extra) => ({
      content: [{ type: 'text', text: JSON.stringify(await callReports(exchange, extra.authInfo.token)) }],
    }));
  }
  server.registerTool('whoami', { description: 'who the token belongs to' }, async (extra) => {
    const claims = extra.authInfo?.extra?.claims || {};
    return { content: [{ type: 'text', text: JSON.stringify({ sub: claims.sub, claims }) }] };
  });
  server.registerTool('write_file', { description: 'write a file', inputSchema: { name: z.string(), content: z.string() } },
    async ({ name, content }, extra) => {
      const claims = extra.authInfo?.extra?.claims || {};
      return { content: [{ type: 'text', text: JSON.stringify({ wrote: name, bytes: content.length, sub: claims.sub, claims }) }] };
    });
  return server;
}

const TOOL_SCOPES = { whoami: 'files.read', write_file: 'files.write', report: 'files.read' };

/**
 * Mounts one MCP endpoint at `path` protected for `shimIssuer`.
 * @returns {{ url: string, seen: object[] }}
 */
export function mountMcp(app, { baseUrl, path, shimMetadata, idpIssuer, jwksUri, minted, exchange }) {
  const resourceUrl = new URL(path, baseUrl);
  const seen = [];
  const prmUrl = getOAuthProtectedResourceMetadataUrl(resourceUrl);
  app.use(mcpAuthMetadataRouter({ oauthMetadata: shimMetadata, resourceServerUrl: resourceUrl, resourceName: `e2e MCP ${path}` }));
  const verifier = minted
    ? makeMintedVerifier({ shimMetadata, resource: resourceUrl.href, seen })
    : makeVerifier({ idpIssuer, jwksUri, seen });
  const bearer = requireBearerAuth({ verifier, requiredScopes: ['files.read'], resourceMetadataUrl: prmUrl });

  // Per-tool scope check: a tools/call whose tool needs a scope the token lacks gets 403 insufficient_scope.
  const toolScope = (req, res, next) => {
    const msgs = Array.isArray(req.body) ? req.body : [req.body];
    for (const m of msgs) {
      if (m?.method !== 'tools/call') continue;
      const need = TOOL_SCOPES[m.params?.name];
      if (need && !req.auth.scopes.includes(need)) {
        const all = [...new Set([...req.auth.scopes, need])].join(' ');
        res.set('WWW-Authenticate', `Bearer error="insufficient_scope", scope="${all}", resource_metadata="${prmUrl}", error_description="${need} required"`);
        return res.status(403).json({ error: 'insufficient_scope', error_description: `${need} required` });
      }
    }
    next();
  };

  // Stateless: a fresh server + transport per request.
  app.post(path, express.json(), bearer, toolScope, async (req, res) => {
    const server = buildMcp(exchange);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => { transport.close(); server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app.get(path, bearer, (_req, res) => res.status(405).set('Allow', 'POST').end());
  app.delete(path, bearer, (_req, res) => res.status(405).set('Allow', 'POST').end());
  return { url: resourceUrl.href, seen };
}
