// An MCP server with no auth code, as teams have them: the SDK's McpServer over its stateful
// Streamable HTTP transport (sessions, the GET stream, DELETE), with the SDK's own DNS
// rebinding protection on (it refuses a Host or Origin that is not its own). dcr-shim's gateway
// is all that stands in front of it. Its `whoami` tool trusts only the identity JWT the gateway
// adds (verified with the tenant's JWKS, its own type and this server's audience); `count`
// streams progress notifications over SSE; `delete_file` is a tool the gateway's rules guard.
import { randomUUID } from 'node:crypto';
import express from 'express';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

export const IDENTITY_HEADER = 'x-dcr-shim-identity';
export const IDENTITY_TYPE = 'dcr-shim-identity+jwt';

/**
 * Mounts the server at `path` on `app`, reachable at `host` (host:port). `shim` is the tenant's
 * metadata (issuer, jwks_uri); the identity JWT's audience is `url`.
 */
export function mountGatewayBackend(app, { path, host, url, shim, reportsUrl }) {
  const jwks = createRemoteJWKSet(new URL(shim.jwks_uri));
  const seen = [];
  const sessions = new Map();
  const deleted = [];
  const purged = [];
  const verifyIdentity = async (headers) => {
    const jwt = headers[IDENTITY_HEADER];
    if (!jwt) throw new Error('no identity JWT');
    const { payload } = await jwtVerify(jwt, jwks, { issuer: shim.issuer, audience: url, typ: IDENTITY_TYPE, maxTokenAge: '2m' });
    return payload;
  };
  const build = () => {
    const server = new McpServer({ name: 'e2e-gateway-backend', version: '1.0.0' });
    server.registerTool('whoami', { description: 'who calls, from the gateway\'s identity JWT' }, async (extra) => {
      const claims = await verifyIdentity(extra.requestInfo?.headers || {});
      return { content: [{ type: 'text', text: JSON.stringify({ sub: claims.sub, claims }) }] };
    });
    server.registerTool('count', { description: 'counts, with a progress notification per step', inputSchema: { to: z.number().int().min(1).max(50) } },
      async ({ to }, extra) => {
        const token = extra._meta?.progressToken;
        for (let i = 1; i <= to; i++) {
          if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: to } });
          await new Promise((r) => setTimeout(r, 20));
        }
        return { content: [{ type: 'text', text: JSON.stringify({ counted: to }) }] };
      });
    server.registerTool('purge', { description: 'deletes everything (the gateway lets only Files.Admin call it)' }, async (extra) => {
      const claims = await verifyIdentity(extra.requestInfo?.headers || {});
      purged.push(claims.sub);
      return { content: [{ type: 'text', text: JSON.stringify({ purged: true, sub: claims.sub, roles: claims.roles }) }] };
    });
    if (reportsUrl) {
      // Calls the downstream reports API with the token the gateway obtained for the user.
      server.registerTool('report', { description: 'reads the quarterly report from the reports API, as the caller' }, async (extra) => {
        const headers = extra.requestInfo?.headers || {};
        const claims = await verifyIdentity(headers);
        const r = await fetch(reportsUrl, { headers: { authorization: `Bearer ${headers['x-dcr-shim-downstream-token']}` } });
        return { content: [{ type: 'text', text: JSON.stringify({ status: r.status, api: await r.json(), sub: claims.sub }) }] };
      });
    }
    server.registerTool('delete_file', { description: 'deletes a file', inputSchema: { name: z.string() } }, async ({ name }, extra) => {
      const claims = await verifyIdentity(extra.requestInfo?.headers || {});
      deleted.push({ name, sub: claims.sub, scope: claims.scope });
      return { content: [{ type: 'text', text: JSON.stringify({ deleted: name, sub: claims.sub, scope: claims.scope }) }] };
    });
    return server;
  };
  const record = (req, _res, next) => { seen.push({ method: req.method, headers: { ...req.headers } }); next(); };
  const transportOptions = { enableDnsRebindingProtection: true, allowedHosts: [host], allowedOrigins: [] };
  app.post(path, record, express.json(), async (req, res) => {
    const id = req.headers['mcp-session-id'];
    let transport = id ? sessions.get(id) : undefined;
    if (!transport) {
      if (id || !isInitializeRequest(req.body)) return res.status(404).json({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
      transport = new StreamableHTTPServerTransport({
        ...transportOptions,
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sid) => sessions.set(sid, transport),
      });
      transport.onclose = () => { if (transport.sessionId) sessions.delete(transport.sessionId); };
      await build().connect(transport);
    }
    await transport.handleRequest(req, res, req.body);
  });
  const bySession = async (req, res) => {
    const transport = sessions.get(req.headers['mcp-session-id']);
    if (!transport) return res.status(404).json({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
    await transport.handleRequest(req, res);
  };
  app.get(path, record, bySession);
  app.delete(path, record, bySession);
  return { seen, sessions, deleted, purged };
}
