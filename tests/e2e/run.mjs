// dcr-shim end-to-end suite: starts an oidc-provider IdP, an https CIMD document server, an MCP
// server (two endpoints, one per tenant) and the dcr-shim binary on loopback ports it picks, then
// drives the SDK's MCP client through the shim. Prints PASS/FAIL per scenario and a summary.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import express from 'express';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { createIdp, API, REPORTS_API, REPORTS_SCOPES } from './lib/idp.mjs';
import { mountMcp, mountReportsApi } from './lib/mcp-server.mjs';
import { createEnterpriseIdp } from './lib/enterprise-idp.mjs';
import { mountGatewayBackend, IDENTITY_TYPE } from './lib/gateway-backend.mjs';
// The 2.x client, whose CrossAppAccessProvider is an Enterprise-Managed Authorization client.
import { Client as Client2, StreamableHTTPClientTransport as Transport2, CrossAppAccessProvider, discoverAndRequestJwtAuthGrant, ClientCredentialsProvider, PrivateKeyJwtProvider, DpopSession } from '@modelcontextprotocol/client';
import { selfSignedClientCert, caAndServerCert } from './lib/certs.mjs';
import { Browser, TestProvider, connectClient, callTool, toolJson } from './lib/client.mjs';

const VERBOSE = !!process.env.E2E_VERBOSE;
const log = (...a) => { if (VERBOSE) console.error(...a); };
const SHIM_BIN = path.resolve(process.env.DCR_SHIM_BIN || path.join(import.meta.dirname, '../../target/debug/dcr-shim'));
const ONLY = process.env.E2E_ONLY ? new RegExp(process.env.E2E_ONLY) : null;
const ACCESS_TTL = 6;

// ---------- helpers ----------
function listen(server, port = 0, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address().port));
  });
}
async function freePort() {
  const s = net.createServer();
  const p = await listen(s);
  await new Promise((r) => s.close(r));
  return p;
}
const started = { servers: [], children: [] };
function runCmd(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    started.children.push(c);
    let out = '';
    c.stdout.on('data', (d) => { out += d; }); c.stderr.on('data', (d) => { out += d; });
    c.on('exit', (code) => resolve({ code, out }));
  });
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcr-shim-e2e-'));

async function main() {
  const t0 = Date.now();
  // ---------- ports and URLs ----------
  let idpHandler = (_q, r) => { r.statusCode = 503; r.end(); };
  const idpServer = http.createServer((q, r) => idpHandler(q, r));
  const idpPort = await listen(idpServer); started.servers.push(idpServer);
  const mcpApp = express();
  let mcpReady = false;
  const mcpServer = http.createServer((q, r) => (mcpReady ? mcpApp(q, r) : (r.statusCode = 503, r.end())));
  const mcpPort = await listen(mcpServer); started.servers.push(mcpServer);
  const shimPort = await freePort();
  const callbackPort = await freePort();

  const IDP = `http://127.0.0.1:${idpPort}`;
  const SHIM = `http://127.0.0.1:${shimPort}`;
  const ALPHA = `${SHIM}/alpha`; const BETA = `${SHIM}/beta`;
  const MCP_ALPHA = `http://127.0.0.1:${mcpPort}/mcp`;
  const MCP_BETA = `http://127.0.0.1:${mcpPort}/mcp-beta`;
  // An MCP server at the root of its own origin: configured without a trailing slash, while the
  // SDK's URL parser sends `resource` with one.
  const rootApp = express();
  let rootReady = false;
  const rootServer = http.createServer((q, r) => (rootReady ? rootApp(q, r) : (r.statusCode = 503, r.end())));
  const rootPort = await listen(rootServer); started.servers.push(rootServer);
  const MCP_ROOT = `http://127.0.0.1:${rootPort}`;
  const GAMMA = `${SHIM}/gamma`;
  // A tenant whose MCP server receives minted tokens and reaches a downstream API by exchange.
  const MINTED = `${SHIM}/minted`;
  const MCP_MINTED = `http://127.0.0.1:${mcpPort}/mcp-minted`;
  const REPORTS_URL = `http://127.0.0.1:${mcpPort}/reports-api`;
  const RS_SECRET = 'e2e-mcp-minted-' + 'r'.repeat(32);
  // The gateway: an SDK MCP server with no auth code, on a port of its own, reached only
  // through the shim, which serves the resource at a path on its own host.
  const gwApp = express();
  let gwReady = false;
  const gwServer = http.createServer((q, r) => (gwReady ? gwApp(q, r) : (r.statusCode = 503, r.end())));
  const gwPort = await listen(gwServer); started.servers.push(gwServer);
  const GW = `${SHIM}/gw`;
  const GW_RESOURCE = `${SHIM}/mcp/files`;
  const GW_BACKEND = `http://127.0.0.1:${gwPort}/mcp`;
  // A browser-based client's page (Chromium scenario), on an origin the gateway resource allows.
  const browserAppPort = await freePort();
  // The same behind the Python SDK's MCPServer, in a process of its own.
  const GW_EMA_RESOURCE = `${SHIM}/mcp/ema-files`;
  const GW_EMA_BACKEND = `http://127.0.0.1:${gwPort}/mcp-ema`;
  // A passthrough gateway resource: the client holds the IdP's own access token, which the
  // gateway checks (the IdP's keys, issuer, the API's audience, the tenant's app).
  const GWPT = `${SHIM}/gwpt`;
  const GW_PT_RESOURCE = `${SHIM}/mcp/pt-files`;
  const GW_PT_BACKEND = `http://127.0.0.1:${gwPort}/mcp-pt`;
  const GW_PY = `${SHIM}/gwpy`;
  const GW_PY_RESOURCE = `${SHIM}/mcp/py-files`;
  const gwPyPort = await freePort();
  const GW_PY_BACKEND = `http://127.0.0.1:${gwPyPort}/mcp`;
  // Enterprise-Managed Authorization: a tenant that trusts the suite's enterprise IdP.
  const EMA = `${SHIM}/ema`;
  const MCP_EMA = `http://127.0.0.1:${mcpPort}/mcp-ema`;
  // A tenant that asks an administrator to approve each new client, announcing each request to
  // a webhook receiver here that checks the signature as docs/approval.md says.
  const APPROVAL = `${SHIM}/approval`;
  const MCP_APPROVAL = `http://127.0.0.1:${mcpPort}/mcp-approval`;
  const HOOK_KEY = 'e2e-approval-webhook-' + 'k'.repeat(32);
  const hooks = [];
  const hookServer = http.createServer((q, r) => {
    const chunks = [];
    q.on('data', (c) => chunks.push(c));
    q.on('end', () => { hooks.push({ headers: q.headers, body: Buffer.concat(chunks) }); r.statusCode = 204; r.end(); });
  });
  const HOOK_URL = `http://127.0.0.1:${await listen(hookServer)}/hooks/approval`;
  started.servers.push(hookServer);
  const ENT_SECRET = 'ent-agent-' + 'e'.repeat(32);
  let emaAgent = null;
  let entHandler = (_q, r) => { r.statusCode = 503; r.end(); };
  const entServer = http.createServer((q, r) => entHandler(q, r));
  const ENT_IDP = `http://127.0.0.1:${await listen(entServer)}`;
  started.servers.push(entServer);
  const entIdp = await createEnterpriseIdp({ issuer: ENT_IDP, client: { id: 'ent-agent', secret: ENT_SECRET },
    clientIdAt: (audience) => (audience === EMA ? emaAgent?.client_id : undefined) });
  entHandler = entIdp.handler;
  const REDIRECT = `http://127.0.0.1:${callbackPort}/callback`;
  // Two replicas on PostgreSQL behind a round-robin relay, when the suite has a database server
  // (DCR_SHIM_TEST_POSTGRES, as .ci/run provides).
  const HA_DB = process.env.DCR_SHIM_TEST_POSTGRES;
  const haPort = await freePort();
  const HA = `http://127.0.0.1:${haPort}`;
  const HA_ALPHA = `${HA}/alpha`;
  const MCP_HA = `http://127.0.0.1:${mcpPort}/mcp-ha`;

  // ---------- key material ----------
  const jwtApp = await selfSignedClientCert('shim-jwt-app');
  const tls = await caAndServerCert();
  const w = (name, content, mode = 0o600) => { const p = path.join(tmp, name); fs.writeFileSync(p, content, { mode }); return p; };
  const secretFile = w('secret-app.secret', 'secret-app-' + 'x'.repeat(32));
  const basicSecretFile = w('basic-app.secret', 'basic-app-' + 'y'.repeat(32));
  const certFile = w('jwt-app.cert.pem', jwtApp.certPem);
  const keyFile = w('jwt-app.key.pem', jwtApp.keyPem);
  const caFile = w('cimd-ca.pem', tls.caPem);
  const { createPublicKey } = await import('node:crypto');
  const jwtPub = { ...createPublicKey(jwtApp.privateKey).export({ format: 'jwk' }), use: 'sig' };

  // ---------- IdP ----------
  const idp = createIdp({
    issuer: IDP, accessTokenTTL: ACCESS_TTL,
    clients: [
      { client_id: 'shim-secret-app', client_secret: fs.readFileSync(secretFile, 'utf8'), token_endpoint_auth_method: 'client_secret_post',
        redirect_uris: [`${ALPHA}/callback`, `${BETA}/callback`, `${GAMMA}/callback`, `${HA_ALPHA}/callback`, `${MINTED}/callback`, `${APPROVAL}/callback`, `${GW}/callback`, `${GW_PY}/callback`, `${GWPT}/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] },
      { client_id: 'shim-basic-app', client_secret: fs.readFileSync(basicSecretFile, 'utf8'), token_endpoint_auth_method: 'client_secret_basic',
        redirect_uris: [`${BETA}/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] },
      { client_id: 'shim-jwt-app', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'PS256',
        jwks: { keys: [jwtPub] }, redirect_uris: [`${ALPHA}/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] },
    ],
  });
  idpHandler = idp.callback;
  // A second IdP on another site (localhost, where the shim is 127.0.0.1), so that the browser
  // scenario crosses sites on the way back to the shim's callback.
  const idp2Server = http.createServer((q, r) => idp2.callback(q, r));
  const idp2Port = await listen(idp2Server); started.servers.push(idp2Server);
  const IDP2 = `http://localhost:${idp2Port}`;
  const DELTA = `${SHIM}/delta`;
  const idp2 = createIdp({
    issuer: IDP2, accessTokenTTL: 60,
    clients: [{ client_id: 'shim-secret-app', client_secret: fs.readFileSync(secretFile, 'utf8'), token_endpoint_auth_method: 'client_secret_post',
      redirect_uris: [`${DELTA}/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] }],
  });

  // ---------- CIMD document server (https, test CA) ----------
  const cimdDocs = new Map();
  const cimdHits = [];
  const cimdServer = https.createServer({ key: tls.keyPem, cert: tls.certPem }, (q, r) => {
    cimdHits.push(q.url);
    const doc = cimdDocs.get(q.url);
    if (!doc) { r.statusCode = 404; return r.end(); }
    r.setHeader('content-type', 'application/json'); r.setHeader('cache-control', 'max-age=60');
    r.end(JSON.stringify(doc));
  });
  const cimdPort = await listen(cimdServer); started.servers.push(cimdServer);
  // also on ::1, in case the shim resolves localhost to IPv6 first
  const cimdServer6 = https.createServer({ key: tls.keyPem, cert: tls.certPem }, cimdServer.listeners('request')[0]);
  try { await listen(cimdServer6, cimdPort, '::1'); started.servers.push(cimdServer6); } catch (e) { log(`no ::1 listener: ${e.message}`); }

  // ---------- tenants ----------
  const tenantsDir = path.join(tmp, 'tenants'); fs.mkdirSync(tenantsDir);
  const scopesToml = `scopes = [
  { name = "files.read", upstream = "${API}/files.read", description = "Read your files" },
  { name = "files.write", upstream = "${API}/files.write", description = "Change your files" },
]
default_scopes = ["files.read"]`;
  fs.writeFileSync(path.join(tenantsDir, 'alpha.toml'), `display_name = "E2E Alpha"
[upstream]
kind = "oidc"
issuer = "${IDP}"
[[apps]]
name = "agents"
client_id = "shim-secret-app"
credential = { kind = "client_secret", secret_file = "${secretFile}", method = "post" }
[[apps]]
name = "cert-agents"
client_id = "shim-jwt-app"
credential = { kind = "private_key_jwt", certificate_file = "${certFile}", key_file = "${keyFile}", algorithm = "PS256" }
[[resources]]
uri = "${MCP_ALPHA}"
name = "E2E files (alpha)"
default = true
upstream_resource = "${API}"
${scopesToml}
[[mapping]]
app = "cert-agents"
software_ids = ["jwt-agent"]
[registration]
registrations_per_minute = 1000
cimd_trusted_hosts = []
[dev]
cimd_allow_loopback = true
cimd_extra_ca_file = "${caFile}"
`);
  fs.writeFileSync(path.join(tenantsDir, 'beta.toml'), `display_name = "E2E Beta"
[upstream]
kind = "oidc"
issuer = "${IDP}"
[[apps]]
name = "agents"
client_id = "shim-basic-app"
credential = { kind = "client_secret", secret_file = "${basicSecretFile}", method = "basic" }
[[resources]]
uri = "${MCP_BETA}"
name = "E2E files (beta)"
default = true
upstream_resource = "${API}"
${scopesToml}
[registration]
registrations_per_minute = 1000
`);

  // A tenant of one resource whose app is shim-secret-app at `issuer`; `resourceLines` go into
  // the resource's table, `tables` after it.
  const secretAppTenant = ({ display, issuer, resource, resourceName, resourceLines = '', tables = '' }) => `display_name = "${display}"
[upstream]
kind = "oidc"
issuer = "${issuer}"
[[apps]]
name = "agents"
client_id = "shim-secret-app"
credential = { kind = "client_secret", secret_file = "${secretFile}", method = "post" }
[[resources]]
uri = "${resource}"
${resourceName ? `name = "${resourceName}"\n` : ''}default = true
upstream_resource = "${API}"
${resourceLines}${scopesToml}
${tables}[registration]
registrations_per_minute = 1000
`;
  fs.writeFileSync(path.join(tenantsDir, 'gamma.toml'),
    secretAppTenant({ display: 'E2E Gamma', issuer: IDP, resource: MCP_ROOT, resourceName: 'E2E files (path-less)' }));

  const { createHash } = await import('node:crypto');
  fs.writeFileSync(path.join(tenantsDir, 'minted.toml'), secretAppTenant({
    display: 'E2E Minted', issuer: IDP, resource: MCP_MINTED,
    resourceLines: 'token = "minted"\nexchange = ["reports"]\n',
    tables: `[[resource_servers]]
client_id = "e2e-mcp-minted"
secret_sha256 = "${createHash('sha256').update(RS_SECRET).digest('hex')}"
resources = ["${MCP_MINTED}"]
[[downstream_apis]]
name = "reports"
uri = "${REPORTS_API}"
scopes = ${JSON.stringify(REPORTS_SCOPES)}
`,
  }));

  // Machine clients of the gateway tenant (the client credentials grant): one with a key, as
  // the 2.x SDK's PrivateKeyJwtProvider signs with it, one with a secret.
  const machineKeys = await generateKeyPair('ES256', { extractable: true });
  const machinePrivateJwk = await exportJWK(machineKeys.privateKey);
  const machineJwksFile = w('machine.jwks.json', JSON.stringify({ keys: [{ ...(await exportJWK(machineKeys.publicKey)), alg: 'ES256', use: 'sig' }] }));
  const MACHINE_SECRET = 'e2e-machine-secret-' + 'm'.repeat(24);
  // Workload identity: a Kubernetes cluster's service-account issuer, publishing its discovery
  // document and keys as an API server does (/.well-known/openid-configuration,
  // /openid/v1/jwks), and GitHub Actions' issuer, whose keys the tenant file holds.
  const clusterKeys = await generateKeyPair('RS256', { extractable: true });
  const clusterJwk = { ...(await exportJWK(clusterKeys.publicKey)), kid: 'sa-key-1', alg: 'RS256', use: 'sig' };
  const clusterApp = express();
  const clusterServer = http.createServer(clusterApp);
  const clusterPort = await listen(clusterServer); started.servers.push(clusterServer);
  const CLUSTER = `http://127.0.0.1:${clusterPort}`;
  clusterApp.get('/.well-known/openid-configuration', (_q, r) => r.json({ issuer: CLUSTER, jwks_uri: `${CLUSTER}/openid/v1/jwks`,
    response_types_supported: ['id_token'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'] }));
  clusterApp.get('/openid/v1/jwks', (_q, r) => r.json({ keys: [clusterJwk] }));
  const githubKeys = await generateKeyPair('RS256', { extractable: true });
  const githubJwksFile = w('github.jwks.json', JSON.stringify({ keys: [{ ...(await exportJWK(githubKeys.publicKey)), kid: 'gh-key-1', alg: 'RS256', use: 'sig' }] }));
  const GITHUB = 'https://token.actions.githubusercontent.com';
  fs.writeFileSync(path.join(tenantsDir, 'gw.toml'), secretAppTenant({
    display: 'E2E Gateway', issuer: IDP, resource: GW_RESOURCE, resourceName: 'Files (through the gateway)',
    resourceLines: 'token = "minted"\nclaims = { roles = "roles" }\nexchange = ["reports"]\n',
    tables: `[resources.gateway]
backend = "${GW_BACKEND}"
downstream_api = "reports"
allowed_origins = ["http://localhost:${browserAppPort}"]
rules = [
  { methods = ["tools/call"], names = ["delete_*"], scopes = ["files.write"] },
  { methods = ["tools/call"], names = ["purge"], roles = ["Files.Admin"] },
]
[[downstream_apis]]
name = "reports"
uri = "${REPORTS_API}"
scopes = ${JSON.stringify(REPORTS_SCOPES)}
[[machine_clients]]
client_id = "e2e-key-agent"
name = "E2E agent with a key"
jwks_file = "${machineJwksFile}"
resources = ["${GW_RESOURCE}"]
[[machine_clients]]
client_id = "e2e-secret-agent"
secret_sha256 = "${createHash('sha256').update(MACHINE_SECRET).digest('hex')}"
resources = ["${GW_RESOURCE}"]
scopes = ["files.read"]
[[machine_clients]]
client_id = "e2e-cluster-agent"
name = "E2E agent in a cluster"
resources = ["${GW_RESOURCE}"]
scopes = ["files.read"]
[[machine_clients]]
client_id = "e2e-ci-agent"
name = "E2E agent in a workflow"
resources = ["${GW_RESOURCE}"]
[[trusted_workloads]]
issuer = "${CLUSTER}"
subject = "system:serviceaccount:agents:e2e-agent"
machine_client = "e2e-cluster-agent"
algorithms = ["RS256"]
single_use = false
[[trusted_workloads]]
issuer = "${GITHUB}"
subject = "repo:contoso-e2e/agent:*"
claims = { repository = "contoso-e2e/agent", ref = "refs/heads/main" }
machine_client = "e2e-ci-agent"
jwks_file = "${githubJwksFile}"
algorithms = ["RS256"]
max_lifetime = "10m"
[dpop]
require_nonce = true
[dev]
cimd_allow_loopback = true
cimd_extra_ca_file = "${caFile}"
`,
  }));
  fs.writeFileSync(path.join(tenantsDir, 'gwpy.toml'), secretAppTenant({
    display: 'E2E Gateway (Python)', issuer: IDP, resource: GW_PY_RESOURCE, resourceName: 'Files (Python, through the gateway)',
    resourceLines: 'token = "minted"\n',
    tables: `[resources.gateway]
backend = "${GW_PY_BACKEND}"
rules = [{ methods = ["tools/call"], names = ["delete_*"], scopes = ["files.write"] }]
`,
  }));

  fs.writeFileSync(path.join(tenantsDir, 'gwpt.toml'), secretAppTenant({
    display: 'E2E Gateway (passthrough)', issuer: IDP, resource: GW_PT_RESOURCE, resourceName: 'Files (the IdP\'s tokens, through the gateway)',
    tables: `[resources.gateway]
backend = "${GW_PT_BACKEND}"
rules = [{ methods = ["tools/call"], names = ["delete_*"], scopes = ["files.write"] }]
`,
  }));

  // Before its agent is registered the EMA tenant trusts no issuer; the scenario registers the
  // agent, names it in the file and reloads the shim (SIGHUP), as an operator would.
  const emaTenant = (clients) => secretAppTenant({
    display: 'E2E EMA', issuer: IDP, resource: MCP_EMA, resourceLines: 'token = "minted"\n',
    // A second resource, served by the gateway for an MCP server with no auth code.
    tables: `[[resources]]
uri = "${GW_EMA_RESOURCE}"
token = "minted"
scopes = [{ name = "ema-files.read", upstream = "${API}/files.read" }]
[resources.gateway]
backend = "${GW_EMA_BACKEND}"
${clients.length ? `[[trusted_issuers]]\nissuer = "${ENT_IDP}"\nclients = ${JSON.stringify(clients)}\n` : ''}[dev]\ncimd_allow_loopback = true\n`,
  });
  fs.writeFileSync(path.join(tenantsDir, 'ema.toml'), emaTenant([]));

  fs.writeFileSync(path.join(tenantsDir, 'approval.toml'),
    `${secretAppTenant({ display: 'E2E Approval', issuer: IDP, resource: MCP_APPROVAL })}approval = "admin"
[approval]
webhook_url = "${HOOK_URL}"
webhook_secret_file = "${w('approval-webhook.key', HOOK_KEY)}"
`);
  fs.writeFileSync(path.join(tenantsDir, 'delta.toml'),
    secretAppTenant({ display: 'E2E Delta (cross-site IdP)', issuer: IDP2, resource: `http://127.0.0.1:${mcpPort}/mcp-delta` }));

  // ---------- shim ----------
  const dataDir = path.join(tmp, 'data'); fs.mkdirSync(dataDir);
  const shimLog = fs.openSync(path.join(tmp, 'shim.log'), 'w');
  const adminPort = await freePort();
  const ADMIN_URL = `http://127.0.0.1:${adminPort}`;
  const ADMIN_TOKEN = 'e2e-admin-' + 'z'.repeat(32);
  const adminTokens = w('admin-tokens', `e2e-operator ${ADMIN_TOKEN}\n`);
  const shim = spawn(SHIM_BIN, ['serve', '--listen', `127.0.0.1:${shimPort}`, '--public-url', SHIM, '--data-dir', dataDir,
    '--tenants', tenantsDir, '--log-format', 'json', '--admin-listen', `127.0.0.1:${adminPort}`, '--admin-token-file', adminTokens], { stdio: ['ignore', shimLog, shimLog], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' } });
  started.children.push(shim);
  let shimExit = null;
  shim.on('exit', (code, sig) => { shimExit = { code, sig }; });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (shimExit) throw new Error(`dcr-shim exited at startup ${JSON.stringify(shimExit)}: ${fs.readFileSync(path.join(tmp, 'shim.log'), 'utf8').slice(-2000)}`);
    // /readyz answers 200 once the server can serve; wait until every tenant's IdP is discovered
    // too, which only the admin listener's /readyz details (the public one says only the status).
    try { const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`); if (r.status === 200 && (await r.json()).unreachable_upstreams.length === 0) break; } catch {}
    if (Date.now() > deadline) throw new Error(`dcr-shim not ready in 20 s: ${fs.readFileSync(path.join(tmp, 'shim.log'), 'utf8').slice(-2000)}`);
    await sleep(100);
  }
  const startupMs = Date.now() - t0;

  // ---------- two replicas on PostgreSQL, behind a round-robin relay ----------
  const ha = { replicas: [], served: [0, 0] };
  if (HA_DB) {
    const dbName = `e2e_ha_${process.pid}_${Date.now()}`;
    const created = await runCmd('psql', [HA_DB, '-q', '-c', `CREATE DATABASE ${dbName}`]);
    if (created.code !== 0) throw new Error(`cannot create the HA database: ${created.out}`);
    const dbUrl = new URL(HA_DB); dbUrl.pathname = `/${dbName}`;
    const haTenants = path.join(tmp, 'tenants-ha'); fs.mkdirSync(haTenants);
    fs.writeFileSync(path.join(haTenants, 'alpha.toml'), secretAppTenant({ display: 'E2E HA', issuer: IDP, resource: MCP_HA }));
    const serverSecret = w('ha-server-secret', 'c3'.repeat(32));
    for (const name of ['a', 'b']) {
      const port = await freePort();
      const dir = path.join(tmp, `ha-${name}`); fs.mkdirSync(dir);
      const logFd = fs.openSync(path.join(tmp, `ha-${name}.log`), 'w');
      const child = spawn(SHIM_BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--public-url', HA, '--data-dir', dir,
        '--tenants', haTenants, '--log-format', 'json', '--store', dbUrl.toString(), '--secret-file', serverSecret],
      { stdio: ['ignore', logFd, logFd], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' } });
      started.children.push(child);
      ha.replicas.push({ name, port, child });
    }
    for (const r of ha.replicas) {
      const until = Date.now() + 20_000;
      for (;;) {
        try { const res = await fetch(`http://127.0.0.1:${r.port}/readyz/alpha`); if (res.status === 200) break; } catch {}
        if (Date.now() > until) throw new Error(`HA replica ${r.name} not ready: ${fs.readFileSync(path.join(tmp, `ha-${r.name}.log`), 'utf8').slice(-2000)}`);
        await sleep(100);
      }
    }
    // Round robin, no affinity; a replica that refuses the connection is skipped, as a load
    // balancer's health check would.
    let next = 0;
    const relay = http.createServer((q, r) => {
      const body = [];
      q.on('data', (c) => body.push(c));
      q.on('end', () => {
        const attempt = (tries) => {
          const i = next++ % ha.replicas.length;
          const target = ha.replicas[i];
          const up = http.request({ host: '127.0.0.1', port: target.port, method: q.method, path: q.url,
            headers: { ...q.headers, host: `127.0.0.1:${haPort}` } }, (ur) => {
            ha.served[i] += 1;
            r.writeHead(ur.statusCode, ur.headers); ur.pipe(r);
          });
          up.on('error', () => (tries > 1 ? attempt(tries - 1) : (r.statusCode = 502, r.end())));
          up.end(Buffer.concat(body));
        };
        attempt(ha.replicas.length);
      });
    });
    await listen(relay, haPort); started.servers.push(relay);
  }

  // ---------- MCP server ----------
  const metaOf = async (iss) => (await fetch(`${SHIM}/.well-known/oauth-authorization-server/${new URL(iss).pathname.slice(1)}`)).json();
  const alphaMeta = await metaOf(ALPHA); const betaMeta = await metaOf(BETA);
  const jwksUri = (await (await fetch(`${IDP}/.well-known/openid-configuration`)).json()).jwks_uri;
  const mcpA = mountMcp(mcpApp, { baseUrl: `http://127.0.0.1:${mcpPort}`, path: '/mcp', shimMetadata: alphaMeta, idpIssuer: IDP, jwksUri });
  const mcpB = mountMcp(mcpApp, { baseUrl: `http://127.0.0.1:${mcpPort}`, path: '/mcp-beta', shimMetadata: betaMeta, idpIssuer: IDP, jwksUri });
  if (HA_DB) mountMcp(mcpApp, { baseUrl: `http://127.0.0.1:${mcpPort}`, path: '/mcp-ha', shimMetadata: await (await fetch(`${HA}/.well-known/oauth-authorization-server/alpha`)).json(), idpIssuer: IDP, jwksUri });
  const mintedMeta = await metaOf(MINTED);
  const reportsApi = mountReportsApi(mcpApp, { path: '/reports-api', idpIssuer: IDP, jwksUri, audience: REPORTS_API, scope: REPORTS_SCOPES[0] });
  mountMcp(mcpApp, { baseUrl: `http://127.0.0.1:${mcpPort}`, path: '/mcp-ema', shimMetadata: await metaOf(EMA), minted: true });
  mountMcp(mcpApp, { baseUrl: `http://127.0.0.1:${mcpPort}`, path: '/mcp-approval', shimMetadata: await metaOf(APPROVAL), idpIssuer: IDP, jwksUri });
  mountMcp(mcpApp, { baseUrl: `http://127.0.0.1:${mcpPort}`, path: '/mcp-minted', shimMetadata: mintedMeta, minted: true,
    exchange: { tokenEndpoint: mintedMeta.token_endpoint, clientId: 'e2e-mcp-minted', secret: RS_SECRET, audience: 'reports', apiUrl: REPORTS_URL } });
  mcpReady = true;
  const gwMeta = await metaOf(GW);
  const gwBackend = mountGatewayBackend(gwApp, { path: '/mcp', host: `127.0.0.1:${gwPort}`, url: GW_BACKEND, shim: gwMeta, reportsUrl: REPORTS_URL });
  const gwPtBackend = mountGatewayBackend(gwApp, { path: '/mcp-pt', host: `127.0.0.1:${gwPort}`, url: GW_PT_BACKEND, shim: await metaOf(GWPT) });
  const gwEmaBackend = mountGatewayBackend(gwApp, { path: '/mcp-ema', host: `127.0.0.1:${gwPort}`, url: GW_EMA_BACKEND, shim: await metaOf(EMA) });
  gwReady = true;
  const PYTHON = process.env.E2E_PYTHON;
  const pyBackend = { seen: [], ready: null };
  if (PYTHON) {
    const pyMeta = await metaOf(GW_PY);
    const child = spawn(PYTHON, [path.join(import.meta.dirname, 'py/server.py'), '--port', String(gwPyPort), '--issuer', GW_PY, '--jwks-uri', pyMeta.jwks_uri, '--url', GW_PY_BACKEND],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    started.children.push(child);
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const lines = err.split('\n'); err = lines.pop();
      for (const l of lines) { try { pyBackend.seen.push(JSON.parse(l)); } catch { log(`python server: ${l}`); } }
    });
    pyBackend.ready = new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); });
      child.on('exit', (code) => reject(new Error(`the Python MCP server exited (${code})`)));
    });
  }
  mountMcp(rootApp, { baseUrl: MCP_ROOT, path: '/', shimMetadata: await metaOf(GAMMA), idpIssuer: IDP, jwksUri });
  rootReady = true;

  // ---------- scenario plumbing ----------
  const results = [];
  const ctx = {};
  const newProvider = (opts = {}) => new TestProvider({
    redirectUrl: REDIRECT,
    clientMetadata: { client_name: opts.name || 'e2e agent', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'none', ...(opts.metadata || {}) },
    clientMetadataUrl: opts.clientMetadataUrl,
    browser: opts.browser || new Browser({ login: opts.login || 'alice', log }),
    consent: opts.consent || 'approve',
    log,
  });
  const checkCallback = (provider, issuer) => {
    for (const cb of provider.history.callbacks) assert.equal(cb.iss, issuer, `callback iss ${cb.iss} != ${issuer}`);
  };
  const accessClaims = (provider) => decodeJwt(provider.store.tokens.access_token);
  const tokenPost = (issuer, form, headers = {}) => fetch(`${issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form) });

  // knownDefect: a description of a shim defect this scenario reproduces. Its failure prints
  // XFAIL and is not counted unless E2E_STRICT=1; once it passes, drop the marker.
  async function scenario(name, fn, { knownDefect } = {}) {
    if (ONLY && !ONLY.test(name)) return;
    const s = Date.now();
    try {
      const note = await fn();
      results.push({ name, ok: true, ms: Date.now() - s });
      console.log(`PASS ${name} (${Date.now() - s} ms)${note ? ` — ${note}` : ''}${knownDefect ? ' [known-defect marker can be removed]' : ''}`);
    } catch (e) {
      if (knownDefect && !process.env.E2E_STRICT) {
        results.push({ name, ok: true, xfail: true, ms: Date.now() - s, err: e });
        console.log(`XFAIL ${name} (${Date.now() - s} ms): known shim defect: ${knownDefect}\n    ${String(e.message || e).split('\n').join('\n    ')}`);
        return;
      }
      results.push({ name, ok: false, ms: Date.now() - s, err: e });
      console.log(`FAIL ${name} (${Date.now() - s} ms): ${e.stack || e}`);
    }
  }

  // ================= scenarios =================
  await scenario('metadata: tenant discovery documents', async () => {
    for (const [t, iss] of [['alpha', ALPHA], ['beta', BETA]]) {
      for (const u of [`${SHIM}/.well-known/oauth-authorization-server/${t}`, `${SHIM}/.well-known/openid-configuration/${t}`, `${iss}/.well-known/openid-configuration`]) {
        const r = await fetch(u); assert.equal(r.status, 200, u);
        const m = await r.json();
        assert.equal(m.issuer, iss); assert.equal(m.authorization_endpoint, `${iss}/authorize`); assert.equal(m.token_endpoint, `${iss}/token`);
        assert.equal(m.registration_endpoint, `${iss}/register`); assert.ok(m.revocation_endpoint, 'revocation_endpoint');
        assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
        for (const s of ['files.read', 'files.write', 'offline_access']) assert.ok(m.scopes_supported.includes(s), `scopes_supported has ${s}: ${m.scopes_supported}`);
        assert.equal(m.client_id_metadata_document_supported, true); assert.equal(m.authorization_response_iss_parameter_supported, true);
      }
    }
    const prm = await (await fetch(`http://127.0.0.1:${mcpPort}/.well-known/oauth-protected-resource/mcp`)).json();
    assert.deepEqual(prm.authorization_servers, [ALPHA]); assert.equal(prm.resource, MCP_ALPHA);
  });

  await scenario('config: dcr-shim check accepts the tenant files (upstream_resource api://mcp-files, https:// too)', async () => {
    const r = await runCmd(SHIM_BIN, ['check', '--tenants', tenantsDir, '--public-url', SHIM]);
    assert.equal(r.code, 0, `dcr-shim check exit ${r.code}: ${r.out.trim()}`);
    const dir = path.join(tmp, 'check-tenants'); fs.mkdirSync(dir, { recursive: true });
    for (const [name, res] of [['api-scheme', 'api://mcp-files'], ['https-scheme', 'https://mcp-files.example.com']]) {
      fs.writeFileSync(path.join(dir, `${name}.toml`), fs.readFileSync(path.join(tenantsDir, 'alpha.toml'), 'utf8').replace(`upstream_resource = "${API}"`, `upstream_resource = "${res}"`));
    }
    const r2 = await runCmd(SHIM_BIN, ['check', '--tenants', dir, '--public-url', SHIM]);
    assert.equal(r2.code, 0, `dcr-shim check exit ${r2.code}: ${r2.out.trim()}`);
    // and a fragment is refused
    fs.writeFileSync(path.join(dir, 'bad.toml'), fs.readFileSync(path.join(tenantsDir, 'alpha.toml'), 'utf8').replace(`upstream_resource = "${API}"`, 'upstream_resource = "api://mcp-files#x"'));
    const r3 = await runCmd(SHIM_BIN, ['check', '--tenants', dir, '--public-url', SHIM]);
    assert.equal(r3.code, 1, r3.out); assert.match(r3.out, /bad\.toml: resources\[0\]\.upstream_resource/);
  });

  await scenario('DCR: 401 -> discovery -> registration -> consent -> upstream login -> token -> whoami', async () => {
    const p = newProvider({ login: 'alice', name: 'dcr agent' });
    const { client } = await connectClient({ mcpUrl: MCP_ALPHA, provider: p, log });
    const out = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(out.sub, 'alice');
    assert.equal(p.history.registrations, 1, 'one registration');
    assert.match(p.store.client.client_id, /.+/); assert.ok(!p.store.client.client_id.startsWith('http'), 'DCR client id');
    assert.equal(p.browser.pages.shimConsent, 1, 'shim consent page shown'); assert.equal(p.browser.pages.idpLogin, 1, 'IdP login shown');
    checkCallback(p, ALPHA);
    const au = new URL(p.history.authorizationUrls[0]);
    assert.equal(au.origin + au.pathname, `${ALPHA}/authorize`); assert.equal(au.searchParams.get('resource'), MCP_ALPHA);
    const c = out.claims; const tc = accessClaims(p);
    assert.equal(c.iss, IDP); assert.equal(c.aud, API); assert.equal(c.client_id, 'shim-secret-app'); assert.equal(tc.jti, c.jti);
    assert.deepEqual(c.scope.split(' ').filter((s) => s.startsWith(API)), [`${API}/files.read`]);
    assert.ok(p.store.tokens.refresh_token, 'shim refresh token handed out');
    // what the shim sent upstream
    const up = idp.events.filter((e) => e.kind === 'authorize').at(-1).params;
    assert.equal(up.client_id, 'shim-secret-app'); assert.equal(up.redirect_uri, `${ALPHA}/callback`); assert.equal(up.resource, API);
    assert.equal(up.code_challenge_method, 'S256'); assert.ok(up.nonce && up.state, 'nonce/state');
    assert.deepEqual(up.scope.split(' ').sort(), ['openid', `${API}/files.read`, 'offline_access'].sort());
    ctx.dcr = { p, client, oldRefresh: p.store.tokens.refresh_token };
    // consent is remembered for this browser and client: a second login skips the shim's page
    p.store.tokens = undefined;
    const again = await connectClient({ mcpUrl: MCP_ALPHA, provider: p, log });
    assert.equal(toolJson(await again.client.callTool({ name: 'whoami', arguments: {} })).sub, 'alice');
    assert.equal(p.browser.pages.shimConsent, 0, 'consent remembered'); assert.equal(p.history.registrations, 1);
    ctx.dcr = { p, client: again.client };
    return `client ${p.store.client.client_id}`;
  });

  await scenario('Minted tokens: the MCP server validates the shim\'s JWT (jwks_uri, aud = itself); a tool reaches a downstream API by token exchange', async () => {
    const p = newProvider({ login: 'mina', name: 'minted agent' });
    const { client } = await connectClient({ mcpUrl: MCP_MINTED, provider: p, log });
    const c = toolJson(await client.callTool({ name: 'whoami', arguments: {} })).claims;
    assert.equal(c.iss, MINTED); assert.equal(c.aud, MCP_MINTED); assert.equal(c.sub, 'mina');
    assert.equal(c.scope, 'files.read'); assert.equal(c.client_id, p.store.client.client_id); assert.ok(c.sid && c.jti && c.auth_time);
    const h = decodeProtectedHeader(p.store.tokens.access_token);
    assert.equal(h.typ, 'at+jwt'); assert.equal(h.alg, 'ES256');
    assert.ok((await (await fetch(mintedMeta.jwks_uri)).json()).keys.some((k) => k.kid === h.kid), 'kid in the JWKS');
    // The login asked the IdP for the downstream API too (oidc-provider ties refresh tokens to it).
    const up = idp.events.filter((e) => e.kind === 'authorize').at(-1).params;
    assert.ok(up.scope.split(' ').includes(REPORTS_SCOPES[0]), up.scope);
    const rep = toolJson(await client.callTool({ name: 'report', arguments: {} }));
    assert.equal(rep.exchangeStatus, 200, JSON.stringify(rep)); assert.equal(rep.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
    assert.equal(rep.apiStatus, 200, JSON.stringify(rep)); assert.equal(rep.api.for, 'mina'); assert.equal(rep.api.aud, REPORTS_API);
    assert.equal(reportsApi.calls.at(-1).sub, 'mina');
    // The token is this MCP server's alone: the alpha MCP server refuses it.
    const other = await fetch(MCP_ALPHA, { method: 'POST', headers: { authorization: `Bearer ${p.store.tokens.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
    assert.equal(other.status, 401);
    // A refresh through the shim mints a new token of the same login; exchange still works after it.
    const r = await tokenPost(MINTED, { grant_type: 'refresh_token', refresh_token: p.store.tokens.refresh_token, client_id: p.store.client.client_id });
    const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b));
    const c2 = decodeJwt(b.access_token); assert.equal(c2.sid, c.sid); assert.equal(c2.aud, MCP_MINTED); assert.notEqual(c2.jti, c.jti);
    p.store.tokens = b;
    const rep2 = toolJson(await client.callTool({ name: 'report', arguments: {} }));
    assert.equal(rep2.apiStatus, 200, JSON.stringify(rep2));
    // The MCP server may introspect it too.
    const basicAuth = `Basic ${Buffer.from(`e2e-mcp-minted:${RS_SECRET}`).toString('base64')}`;
    const i = await fetch(mintedMeta.introspection_endpoint, { method: 'POST', headers: { authorization: basicAuth, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: b.access_token }) });
    const ib = await i.json(); assert.equal(ib.active, true, JSON.stringify(ib)); assert.equal(ib.sub, 'mina');
    return `sub ${c.sub}, report for ${rep.api.for}`;
  });

  await scenario('Gateway: an SDK MCP server with no auth code behind the gateway; the SDK client logs in by DCR, streams progress over SSE in a session, steps up to files.write, reaches its downstream API with the token the gateway obtained for the user; the server verifies the identity JWT', async () => {
    const p = newProvider({ login: 'gail', name: 'gateway agent' });
    const { client, transport } = await connectClient({ mcpUrl: GW_RESOURCE, provider: p, log });
    // The client found the tenant from the gateway's challenge and metadata.
    const au = new URL(p.history.authorizationUrls[0]);
    assert.equal(au.origin + au.pathname, `${GW}/authorize`); assert.equal(au.searchParams.get('resource'), GW_RESOURCE);
    const who = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(who.sub, 'gail'); assert.equal(who.claims.iss, GW); assert.equal(who.claims.aud, GW_BACKEND);
    assert.equal(who.claims.client_id, p.store.client.client_id); assert.equal(who.claims.resource, GW_RESOURCE);
    assert.equal(who.claims.scope, 'files.read');
    assert.equal(decodeJwt(p.store.tokens.access_token).aud, GW_RESOURCE, 'the token is for the resource the gateway serves');
    // A session of the 2025-11-25 protocol, through the gateway.
    // The client holds the session id bound to it; the MCP server gets its own back.
    const backendSession = [...gwBackend.sessions.keys()].at(-1);
    assert.ok(transport.sessionId && backendSession && transport.sessionId !== backendSession, 'the client holds a bound session id');
    assert.equal(gwBackend.seen.at(-1).headers['mcp-session-id'], backendSession, 'the MCP server gets its own id');
    // Progress notifications arrive over SSE, each as it is sent.
    const progress = [];
    const counted = toolJson(await client.callTool({ name: 'count', arguments: { to: 5 } }, undefined, { onprogress: (n) => progress.push(n.progress) }));
    assert.equal(counted.counted, 5); assert.deepEqual(progress, [1, 2, 3, 4, 5]);
    // Step-up: the gateway's rule wants files.write for delete_*; the client asks again.
    const del = toolJson(await callTool(client, null, p, 'delete_file', { name: 'a.txt' }));
    assert.equal(del.deleted, 'a.txt'); assert.equal(del.sub, 'gail');
    assert.deepEqual(del.scope.split(' ').sort(), ['files.read', 'files.write']);
    assert.equal(p.history.authorizationUrls.length, 2, 'a second authorization for the wider scope');
    assert.deepEqual(new URL(p.history.authorizationUrls[1]).searchParams.get('scope').split(' ').sort(), ['files.read', 'files.write']);
    // The client's token never reached the MCP server; every request had an identity of the shim's.
    assert.ok(gwBackend.seen.length >= 4, `${gwBackend.seen.length} requests`);
    for (const s of gwBackend.seen) {
      assert.equal(s.headers.authorization, undefined, `${s.method} carried Authorization`);
      assert.equal(s.headers.host, `127.0.0.1:${gwPort}`);
      assert.equal(decodeProtectedHeader(s.headers['x-dcr-shim-identity']).typ, IDENTITY_TYPE);
    }
    // The MCP server reaches its downstream API as the user with the token the gateway added.
    const report = toolJson(await client.callTool({ name: 'report', arguments: {} }));
    assert.equal(report.status, 200, JSON.stringify(report)); assert.equal(report.api.for, 'gail'); assert.equal(report.api.aud, REPORTS_API);
    assert.equal(reportsApi.calls.at(-1).sub, 'gail');
    // A tool refused by role: not listed, and refused when called anyway.
    const listed = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(listed, ['count', 'delete_file', 'report', 'whoami'], 'purge is not listed for a caller without Files.Admin');
    await assert.rejects(client.callTool({ name: 'purge', arguments: {} }), /403|Files\.Admin/);
    assert.deepEqual(gwBackend.purged, [], 'purge never reached the MCP server');
    // Ending the session: DELETE passes through.
    const sid = backendSession;
    await transport.terminateSession();
    assert.ok(gwBackend.seen.some((s) => s.method === 'DELETE'), 'DELETE reached the MCP server');
    assert.ok(!gwBackend.sessions.has(sid), 'the session ended');
    // Without a token: the challenge the SDK followed.
    const bare = await fetch(GW_RESOURCE, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
    assert.equal(bare.status, 401);
    assert.match(bare.headers.get('www-authenticate'), new RegExp(`resource_metadata="${SHIM}/.well-known/oauth-protected-resource/mcp/files"`));
    await client.close();
    return `${gwBackend.seen.length} requests reached the MCP server, methods ${[...new Set(gwBackend.seen.map((s) => s.method))].join(' ')}`;
  });

  await scenario('Gateway, passthrough: the SDK client holds the IdP\'s own access token; the gateway checks it with the IdP\'s keys, steps the client up to files.write, and the MCP server gets the identity JWT, never the token', async () => {
    const p = newProvider({ login: 'pat', name: 'passthrough gateway agent' });
    const { client } = await connectClient({ mcpUrl: GW_PT_RESOURCE, provider: p, log });
    const held = decodeJwt(p.store.tokens.access_token);
    assert.equal(held.iss, IDP, 'the client holds the IdP\'s token'); assert.equal(held.aud, API);
    const who = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(who.sub, 'pat'); assert.equal(who.claims.iss, GWPT); assert.equal(who.claims.aud, GW_PT_BACKEND);
    assert.equal(who.claims.client_id, 'shim-secret-app', 'the app the IdP issued the token to');
    assert.equal(who.claims.scope, 'files.read'); assert.equal(who.claims.resource, GW_PT_RESOURCE);
    const del = toolJson(await callTool(client, null, p, 'delete_file', { name: 'b.txt' }));
    assert.equal(del.deleted, 'b.txt');
    assert.deepEqual(del.scope.split(' ').sort(), ['files.read', 'files.write']);
    for (const s of gwPtBackend.seen) assert.equal(s.headers.authorization, undefined, `${s.method} carried Authorization`);
    // The IdP's token with its audience changed to another API is refused, and reaches nothing.
    const [h, , sig] = p.store.tokens.access_token.split('.');
    const otherApi = Buffer.from(JSON.stringify({ ...decodeJwt(p.store.tokens.access_token), aud: REPORTS_API })).toString('base64url');
    const before = gwPtBackend.seen.length;
    const forged = await fetch(GW_PT_RESOURCE, { method: 'POST', headers: { authorization: `Bearer ${h}.${otherApi}.${sig}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
    assert.equal(forged.status, 401); assert.equal(gwPtBackend.seen.length, before);
    // Closed, so that its event stream does not reconnect and refresh at the IdP later (the HA
    // scenario counts the IdP's refreshes).
    await client.close();
    return `${gwPtBackend.seen.length} requests reached the MCP server with the IdP's token checked`;
  });

  await scenario('Client credentials: the 2.x SDK\'s PrivateKeyJwtProvider and ClientCredentialsProvider get minted tokens for themselves (no user, no browser) and call through the gateway; the MCP server verifies the identity JWT', async () => {
    const out = [];
    for (const [name, provider] of [
      ['e2e-key-agent', new PrivateKeyJwtProvider({ clientId: 'e2e-key-agent', privateKey: machinePrivateJwk, algorithm: 'ES256', expectedIssuer: GW })],
      ['e2e-secret-agent', new ClientCredentialsProvider({ clientId: 'e2e-secret-agent', clientSecret: MACHINE_SECRET, expectedIssuer: GW })],
    ]) {
      const client = new Client2({ name, version: '1.0.0' });
      await client.connect(new Transport2(new URL(GW_RESOURCE), { authProvider: provider }));
      const who = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
      assert.equal(who.sub, name); assert.equal(who.claims.client_id, name, 'client_id = sub: no user');
      assert.equal(who.claims.iss, GW); assert.equal(who.claims.aud, GW_BACKEND);
      const held = decodeJwt((await provider.tokens()).access_token);
      assert.equal(held.sub, name); assert.equal(held.aud, GW_RESOURCE); assert.equal(held.sid, undefined);
      out.push(`${name}: scope ${held.scope}`);
      await client.close();
    }
    return out.join('; ');
  });

  await scenario('Workload identity: a Kubernetes service-account token (keys by the cluster\'s discovery) and a GitHub Actions token, each presented by the 2.x SDK as a JWT-bearer grant with no secret, get minted tokens for their machine clients and call through the gateway; the MCP server verifies the identity JWT', async () => {
    const now = Math.floor(Date.now() / 1000);
    const platformTokens = {
      // What the kubelet projects into the pod (audience set in the pod's volume).
      'e2e-cluster-agent': () => new SignJWT({ 'kubernetes.io': { namespace: 'agents', serviceaccount: { name: 'e2e-agent', uid: 'c0ffee' }, pod: { name: 'e2e-agent-7d9', uid: 'beef' } } })
        .setProtectedHeader({ alg: 'RS256', kid: 'sa-key-1' }).setIssuer(CLUSTER).setSubject('system:serviceaccount:agents:e2e-agent')
        .setAudience([GW]).setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 3600).setJti(crypto.randomUUID()).sign(clusterKeys.privateKey),
      // What `core.getIDToken(<the tenant's issuer URL>)` returns in a workflow run.
      'e2e-ci-agent': () => new SignJWT({ repository: 'contoso-e2e/agent', repository_owner: 'contoso-e2e', ref: 'refs/heads/main', workflow: 'nightly',
        job_workflow_ref: 'contoso-e2e/agent/.github/workflows/nightly.yml@refs/heads/main', runner_environment: 'github-hosted' })
        .setProtectedHeader({ alg: 'RS256', kid: 'gh-key-1', typ: 'JWT' }).setIssuer(GITHUB).setSubject('repo:contoso-e2e/agent:ref:refs/heads/main')
        .setAudience(GW).setIssuedAt(now).setNotBefore(now - 5).setExpirationTime(now + 300).setJti(crypto.randomUUID()).sign(githubKeys.privateKey),
    };
    const out = [];
    for (const [name, platformToken] of Object.entries(platformTokens)) {
      // As the SDK's conformance client does for auth/wif-jwt-bearer: a provider whose
      // prepareTokenRequest sends the JWT-bearer grant; the SDK adds client_id and resource.
      const sent = [];
      const provider = {
        get redirectUrl() { return undefined; },
        get clientMetadata() { return { client_name: name, redirect_uris: [], grant_types: ['urn:ietf:params:oauth:grant-type:jwt-bearer'], token_endpoint_auth_method: 'none' }; },
        clientInformation: () => ({ client_id: name }),
        tokens() { return this._tokens; },
        saveTokens(t) { this._tokens = t; },
        redirectToAuthorization() { throw new Error('a workload has no browser'); },
        saveCodeVerifier() {},
        codeVerifier() { throw new Error('no code flow'); },
        prepareTokenRequest: async () => { const assertion = await platformToken(); sent.push(assertion); return new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }); },
      };
      const client = new Client2({ name, version: '1.0.0' });
      await client.connect(new Transport2(new URL(GW_RESOURCE), { authProvider: provider }));
      const who = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
      assert.equal(who.sub, name); assert.equal(who.claims.client_id, name, 'client_id = sub: no user');
      assert.equal(who.claims.iss, GW); assert.equal(who.claims.aud, GW_BACKEND);
      const held = decodeJwt((await provider.tokens()).access_token);
      assert.equal(held.sub, name); assert.equal(held.aud, GW_RESOURCE); assert.equal(held.sid, undefined);
      await client.close();
      // GitHub's token is spent: presented again, it is refused. The kubelet's projected token
      // is taken again (single_use = false), as the pod presents it until it is renewed.
      assert.equal(sent.length, 1);
      const again = await fetch(`${GW}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: sent[0], resource: GW_RESOURCE }) });
      const body = await again.json();
      if (name === 'e2e-ci-agent') {
        assert.equal(again.status, 400); assert.equal(body.error, 'invalid_grant'); assert.match(body.error_description, /already used/);
      } else {
        assert.equal(again.status, 200, JSON.stringify(body));
      }
      out.push(`${name}: scope ${held.scope}`);
    }
    return out.join('; ');
  });

  await scenario('DPoP: the 2.x SDK\'s ClientCredentialsProvider with a DpopSession gets a DPoP-bound token (answering the token endpoint\'s use_dpop_nonce, its nonce then good at the gateway) and calls through the gateway with a proof per request; a user\'s login by the 2.x client binds its access and refresh tokens to the SDK\'s key; the bound token is refused without its proof, with a replayed proof, with another key and at another URL', async () => {
    class DpopClientCredentials extends ClientCredentialsProvider {
      constructor(o) { super(o); this.session = DpopSession.create(); }
      dpop() { return this.session; }
    }
    const provider = new DpopClientCredentials({ clientId: 'e2e-secret-agent', clientSecret: MACHINE_SECRET, expectedIssuer: GW });
    const session = await provider.session;
    // Every answer the SDK gets, to see the nonce challenges it answered.
    const answers = [];
    const recording = async (url, init) => {
      const res = await fetch(url, init);
      const error = res.status >= 400 ? (await res.clone().json().catch(() => ({}))).error : undefined;
      answers.push({ url: String(url), status: res.status, error });
      return res;
    };
    const client = new Client2({ name: 'e2e-dpop-agent', version: '1.0.0' });
    await client.connect(new Transport2(new URL(GW_RESOURCE), { authProvider: provider, fetch: recording }));
    const who = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(who.sub, 'e2e-secret-agent');
    const tokens = await provider.tokens();
    assert.equal(tokens.token_type, 'DPoP');
    const token = tokens.access_token;
    assert.equal(decodeJwt(token).cnf.jkt, session.thumbprint, 'bound to the SDK\'s key');
    const nonceAnswers = answers.filter((a) => a.error === 'use_dpop_nonce').map((a) => `${a.status} ${new URL(a.url).pathname}`);
    assert.ok(nonceAnswers.includes('400 /gw/token'), `the token endpoint asked for a nonce: ${JSON.stringify(answers)}`);
    // The gateway shares the token endpoint's origin and tenant: the nonce the SDK kept for the
    // origin is good there too, so it is not asked again.
    assert.ok(!nonceAnswers.includes('401 /mcp/files'), `the gateway took the origin's nonce: ${JSON.stringify(answers)}`);
    await client.close();
    const before = gwBackend.seen.length;
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    const call = (url, headers) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body });
    const proof = (s, url) => s.buildProof({ htm: 'POST', htu: url, accessToken: token, nonce: session.nonceFor(GW_RESOURCE) });
    const refusals = {};
    refusals.without = await call(GW_RESOURCE, { authorization: `DPoP ${token}` });
    refusals.asBearer = await call(GW_RESOURCE, { authorization: `Bearer ${token}` });
    const good = await proof(session, GW_RESOURCE);
    const first = await call(GW_RESOURCE, { authorization: `DPoP ${token}`, dpop: good });
    assert.equal(first.status, 200, await first.clone().text());
    refusals.replayed = await call(GW_RESOURCE, { authorization: `DPoP ${token}`, dpop: good });
    const other = await DpopSession.create();
    other.rememberNonce(GW_RESOURCE, session.nonceFor(GW_RESOURCE));
    refusals.otherKey = await call(GW_RESOURCE, { authorization: `DPoP ${token}`, dpop: await proof(other, GW_RESOURCE) });
    refusals.otherUrl = await call(GW_RESOURCE, { authorization: `DPoP ${token}`, dpop: await proof(session, `${SHIM}/mcp/other`) });
    for (const [what, res] of Object.entries(refusals)) {
      assert.equal(res.status, 401, `${what}: ${res.status}`);
      assert.match(res.headers.get('www-authenticate'), /^DPoP error="(invalid_dpop_proof|invalid_token)"/, what);
    }
    assert.equal(gwBackend.seen.length, before + 1, 'only the call with its proof reached the MCP server');

    // A user's login by the SDK's public client, with its key: the access token and the
    // refresh token are bound; a refresh without a proof of the key is refused.
    const p = newProvider({ login: 'dana', name: 'e2e DPoP user agent' });
    const userSession = DpopSession.create();
    p.dpop = () => userSession;
    // The 2.x client (the 1.x SDK of connectClient has no DPoP): its first connect sends the
    // user through the browser and stops; finishAuth redeems the code with a proof.
    const userClient = new Client2({ name: 'e2e-dpop-user-agent', version: '1.0.0' });
    let transport = new Transport2(new URL(GW_RESOURCE), { authProvider: p });
    try { await userClient.connect(transport); } catch (e) {
      if (!p.pendingCode) throw e;
      await transport.finishAuth(new URLSearchParams(p.lastCallback.params)); p.pendingCode = undefined;
      transport = new Transport2(new URL(GW_RESOURCE), { authProvider: p });
      await userClient.connect(transport);
    }
    assert.equal(toolJson(await userClient.callTool({ name: 'whoami', arguments: {} })).sub, 'dana');
    await userClient.close();
    const held = p.store.tokens;
    assert.equal(held.token_type, 'DPoP');
    assert.equal(decodeJwt(held.access_token).cnf.jkt, (await userSession).thumbprint);
    const tokenUrl = `${GW}/token`;
    const refresh = (headers) => fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: held.refresh_token, client_id: p.store.client.client_id }) });
    const bare = await refresh({});
    assert.equal((await bare.json()).error, 'invalid_dpop_proof');
    const stranger = await DpopSession.create();
    const wrongKey = await refresh({ dpop: await stranger.buildProof({ htm: 'POST', htu: tokenUrl, nonce: (await userSession).nonceFor(tokenUrl) }) });
    assert.equal((await wrongKey.json()).error, 'invalid_dpop_proof');
    const own = await refresh({ dpop: await (await userSession).buildProof({ htm: 'POST', htu: tokenUrl }) });
    const renewed = await own.json();
    assert.equal(own.status, 200, JSON.stringify(renewed)); assert.equal(renewed.token_type, 'DPoP');
    return `token bound to ${session.thumbprint.slice(0, 8)}…; refused: ${Object.keys(refusals).join(', ')}; a user's refresh token bound to the SDK's key`;
  });

  await scenario('Gateway with CIMD: a client identified by its metadata document logs in and calls through the gateway; the identity JWT names the document', async () => {
    const url = `https://localhost:${cimdPort}/clients/gateway-agent.json`;
    cimdDocs.set('/clients/gateway-agent.json', { client_id: url, client_name: 'CIMD gateway agent', redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    const p = newProvider({ login: 'cora', clientMetadataUrl: url });
    const { client } = await connectClient({ mcpUrl: GW_RESOURCE, provider: p, log });
    const who = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(who.sub, 'cora'); assert.equal(who.claims.client_id, url); assert.equal(p.store.client.client_id, url);
    await client.close();
  });

  await scenario('Gateway: an app role (Files.Admin, in the ID token) lets its holder list and call the tool the gateway keeps from others', async () => {
    const p = newProvider({ login: 'root-admin', name: 'gateway admin agent' });
    const { client } = await connectClient({ mcpUrl: GW_RESOURCE, provider: p, log });
    const listed = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(listed.includes('purge'), `listed: ${listed}`);
    const out = toolJson(await client.callTool({ name: 'purge', arguments: {} }));
    assert.equal(out.purged, true); assert.equal(out.sub, 'root-admin'); assert.deepEqual(out.roles, ['Files.Admin']);
    assert.deepEqual(decodeJwt(p.store.tokens.access_token).roles, ['Files.Admin'], 'the minted token carries the roles it copied');
    await client.close();
  });

  await scenario('Gateway (Python SDK): MCPServer with no auth code behind the gateway; the v2 Client (server/discover first, the stateless 2026-07-28 protocol) logs in by DCR, gets progress, steps up; the server verifies the identity JWT', async () => {
    if (!PYTHON) { assert.ok(!process.env.CI, 'CI needs the Python SDK (run.sh makes its venv)'); return 'skipped: no E2E_PYTHON'; }
    await pyBackend.ready;
    const child = spawn(PYTHON, [path.join(import.meta.dirname, 'py/client.py'), '--url', GW_PY_RESOURCE, '--redirect-uri', REDIRECT], { stdio: ['pipe', 'pipe', 'pipe'] });
    started.children.push(child);
    const browser = new Browser({ login: 'pia', log });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const done = await new Promise((resolve, reject) => {
      let buf = '';
      child.stdout.on('data', async (d) => {
        buf += d;
        const lines = buf.split('\n'); buf = lines.pop();
        for (const line of lines) {
          const m = JSON.parse(line);
          if (m.done) resolve(m.done);
          if (m.authorize) {
            try {
              const back = await browser.navigate(new URL(m.authorize), { stopAt: REDIRECT, consent: 'approve' });
              child.stdin.write(`${JSON.stringify(Object.fromEntries(back.searchParams))}\n`);
            } catch (e) { reject(e); }
          }
        }
      });
      child.on('exit', (code) => reject(new Error(`the Python client exited (${code}): ${stderr.slice(-3000)}`)));
    });
    assert.equal(done.whoami.sub, 'pia', JSON.stringify(done.whoami));
    assert.equal(done.whoami.claims.aud, GW_PY_BACKEND); assert.equal(done.whoami.claims.resource, GW_PY_RESOURCE);
    assert.equal(done.whoami.claims.client_id, done.client_id);
    assert.equal(done.count.counted, 4); assert.deepEqual(done.progress, [1, 2, 3, 4]);
    assert.equal(done.delete.deleted, 'b.txt', JSON.stringify(done.delete));
    assert.deepEqual(done.delete.scope.split(' ').sort(), ['files.read', 'files.write']);
    assert.equal(done.authorizations.length, 2, 'a second authorization for the wider scope');
    for (const s of pyBackend.seen) {
      assert.equal(s.headers.authorization, undefined, `${s.method} carried Authorization`);
      assert.equal(s.headers.host, `127.0.0.1:${gwPyPort}`);
    }
    const versions = [...new Set(pyBackend.seen.map((s) => s.headers['mcp-protocol-version']).filter(Boolean))];
    const methods = [...new Set(pyBackend.seen.map((s) => s.headers['mcp-method']).filter(Boolean))];
    assert.ok(methods.includes('server/discover') && methods.includes('tools/call'), `Mcp-Method headers seen: ${methods}`);
    return `${pyBackend.seen.length} requests reached the Python server; protocol versions ${versions.join(', ')}; methods ${methods.join(', ')}`;
  });

  // The 2.x SDK's Enterprise-Managed Authorization client for the registered agent, with an
  // ID-JAG the enterprise IdP issues for `user`.
  const emaProvider = async (user) => {
    const idToken = await entIdp.idToken(user);
    return new CrossAppAccessProvider({
      assertion: async (c) => (await discoverAndRequestJwtAuthGrant({ idpUrl: ENT_IDP, audience: c.authorizationServerUrl, resource: c.resourceUrl,
        idToken, clientId: 'ent-agent', clientSecret: ENT_SECRET, scope: c.scope, fetchFn: c.fetchFn })).jwtAuthGrant,
      clientId: emaAgent.client_id, clientSecret: emaAgent.client_secret, expectedIssuer: EMA,
    });
  };

  await scenario('EMA: the 2.x SDK\'s CrossAppAccessProvider with an enterprise IdP\'s ID-JAG, no browser; the MCP server accepts the minted token', async () => {
    // The company registers its agent at the tenant once, names it in the tenant file, reloads.
    const reg = await fetch(`${EMA}/register`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'ema agent', redirect_uris: ['https://agent.example.com/cb'], grant_types: ['authorization_code'], token_endpoint_auth_method: 'client_secret_basic' }) });
    emaAgent = await reg.json(); assert.equal(reg.status, 201, JSON.stringify(emaAgent));
    fs.writeFileSync(path.join(tenantsDir, 'ema.toml'), emaTenant([emaAgent.client_id]));
    shim.kill('SIGHUP');
    for (let i = 0; !(await metaOf(EMA)).authorization_grant_profiles_supported; i++) {
      if (i > 100) throw new Error(`the shim did not reload the EMA tenant: ${fs.readFileSync(path.join(tmp, 'shim.log'), 'utf8').slice(-1500)}`);
      await sleep(50);
    }
    const meta = await metaOf(EMA);
    assert.ok(meta.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:jwt-bearer'));
    const provider = await emaProvider('erin');
    const client = new Client2({ name: 'ema agent', version: '1.0.0' });
    await client.connect(new Transport2(new URL(MCP_EMA), { authProvider: provider }));
    const c = toolJson(await client.callTool({ name: 'whoami', arguments: {} })).claims;
    assert.equal(c.iss, EMA); assert.equal(c.aud, MCP_EMA); assert.equal(c.sub, 'erin'); assert.equal(c.client_id, emaAgent.client_id);
    assert.ok(c.scope.split(' ').includes('files.read'), c.scope);
    const ex = entIdp.exchanges.at(-1);
    assert.equal(ex.audience, EMA); assert.equal(new URL(ex.resource).href, new URL(MCP_EMA).href); assert.equal(ex.client_id, emaAgent.client_id);
    await client.close();
    // The operator sees the grant by user, as an id-jag grant of this issuer.
    const grants = await (await fetch(`${ADMIN_URL}/admin/v1/tenants/ema/grants?user=erin`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    assert.equal(grants.grants[0].kind, 'id-jag'); assert.equal(grants.grants[0].issuer, ENT_IDP);
    return `sub ${c.sub}, scope ${c.scope}`;
  });

  await scenario('EMA through the gateway: the 2.x SDK\'s CrossAppAccessProvider gets a minted token for a gateway resource with no browser; the MCP server behind verifies the identity JWT', async () => {
    assert.ok(emaAgent, 'the EMA scenario registered the agent');
    const provider = await emaProvider('erin');
    const client = new Client2({ name: 'ema agent', version: '1.0.0' });
    await client.connect(new Transport2(new URL(GW_EMA_RESOURCE), { authProvider: provider }));
    const who = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(who.sub, 'erin'); assert.equal(who.claims.iss, EMA); assert.equal(who.claims.aud, GW_EMA_BACKEND);
    assert.equal(who.claims.client_id, emaAgent.client_id); assert.equal(who.claims.resource, GW_EMA_RESOURCE);
    assert.equal(new URL(entIdp.exchanges.at(-1).resource).href, new URL(GW_EMA_RESOURCE).href, 'the ID-JAG names the gateway resource');
    for (const s of gwEmaBackend.seen) assert.equal(s.headers.authorization, undefined);
    await client.close();
    return `sub ${who.sub} through the gateway, ${gwEmaBackend.seen.length} requests reached the MCP server`;
  });

  await scenario('Path-less MCP server: configured without the slash, the SDK sends it; refresh token handed out', async () => {
    const p = newProvider({ login: 'gina', name: 'path-less agent' });
    const { client } = await connectClient({ mcpUrl: MCP_ROOT, provider: p, log });
    const out = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(out.sub, 'gina');
    const au = new URL(p.history.authorizationUrls[0]);
    assert.equal(au.origin + au.pathname, `${GAMMA}/authorize`);
    assert.equal(au.searchParams.get('resource'), `${MCP_ROOT}/`, 'the SDK adds the slash');
    assert.ok(p.store.tokens.refresh_token, 'refresh token handed out');
    checkCallback(p, GAMMA);
    const r = await tokenPost(GAMMA, { grant_type: 'refresh_token', refresh_token: p.store.tokens.refresh_token, client_id: p.store.client.client_id });
    const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); assert.ok(b.refresh_token && b.access_token);
    return `resource ${au.searchParams.get('resource')}`;
  });

  await scenario('A client that never sends prompt still gets a refresh token from a strict OIDC provider', async () => {
    const reg = await fetch(`${ALPHA}/register`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'no-prompt agent', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }) });
    const client = await reg.json(); assert.equal(reg.status, 201, JSON.stringify(client));
    const verifier = 'v'.repeat(20) + Math.random().toString(36).slice(2).padEnd(30, 'x');
    const { createHash } = await import('node:crypto');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const q = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: REDIRECT, code_challenge: challenge,
      code_challenge_method: 'S256', state: 'no-prompt', scope: 'files.read offline_access', resource: MCP_ALPHA });
    const browser = new Browser({ login: 'nora', log });
    const back = await browser.navigate(`${ALPHA}/authorize?${q}`, { stopAt: REDIRECT });
    assert.equal(back.searchParams.get('state'), 'no-prompt', back.href);
    const up = idp.events.filter((e) => e.kind === 'authorize').at(-1).params;
    assert.equal(up.prompt, 'consent', 'the shim asked the strict provider for consent to offline access');
    const t = await tokenPost(ALPHA, { grant_type: 'authorization_code', code: back.searchParams.get('code'), redirect_uri: REDIRECT, code_verifier: verifier, client_id: client.client_id });
    const tokens = await t.json(); assert.equal(t.status, 200, JSON.stringify(tokens));
    assert.ok(tokens.refresh_token, `refresh token: ${JSON.stringify(tokens)}`);
    const r = await tokenPost(ALPHA, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id });
    const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); assert.ok(b.refresh_token);
  });

  await scenario('CIMD: https metadata document on loopback (test CA), no registration', async () => {
    const url = `https://localhost:${cimdPort}/clients/e2e-agent.json`;
    cimdDocs.set('/clients/e2e-agent.json', { client_id: url, client_name: 'CIMD e2e agent', redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    const p = newProvider({ login: 'carol', clientMetadataUrl: url });
    const hits = cimdHits.length;
    const { client } = await connectClient({ mcpUrl: MCP_ALPHA, provider: p, log });
    const out = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(out.sub, 'carol'); assert.equal(p.store.client.client_id, url);
    assert.ok(cimdHits.length > hits, 'shim fetched the metadata document');
    assert.equal(p.browser.pages.shimConsent, 1); checkCallback(p, ALPHA);
    assert.equal(out.claims.client_id, 'shim-secret-app');
    const au = new URL(p.history.authorizationUrls[0]); assert.equal(au.searchParams.get('client_id'), url);
  });

  await scenario('Refresh: expired access token refreshed through the shim; old refresh token rotated', async () => {
    const { p, client } = ctx.dcr;
    const before = { ...p.store.tokens }; const oldClaims = decodeJwt(before.access_token);
    const waitMs = oldClaims.exp * 1000 - Date.now() + 1500;
    if (waitMs > 0) await sleep(waitMs);
    const tokensBefore = idp.events.filter((e) => e.kind === 'grant.success' && e.grant_type === 'refresh_token').length;
    const out = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(out.sub, 'alice');
    const after = p.store.tokens;
    assert.notEqual(after.access_token, before.access_token, 'new access token');
    assert.notEqual(after.refresh_token, before.refresh_token, 'refresh token rotated');
    assert.ok(out.claims.exp > oldClaims.exp && out.claims.jti !== oldClaims.jti);
    assert.equal(idp.events.filter((e) => e.kind === 'grant.success' && e.grant_type === 'refresh_token').length, tokensBefore + 1, 'one upstream refresh');
    assert.equal(p.history.authorizationUrls.length, 2, 'no new authorization');
    // within the shim's documented 60 s grace window a retry of the old token gets the same successor
    const retry = await tokenPost(ALPHA, { grant_type: 'refresh_token', refresh_token: before.refresh_token, client_id: p.store.client.client_id });
    const retryBody = await retry.json();
    assert.equal(retry.status, 200, JSON.stringify(retryBody)); assert.equal(retryBody.refresh_token, after.refresh_token, 'grace retry returns the same successor');
    // presented by another client: refused at once
    const other = await tokenPost(ALPHA, { grant_type: 'refresh_token', refresh_token: after.refresh_token, client_id: ctx.otherClientId || 'no-such-client' });
    assert.equal(other.status >= 400 && other.status < 500, true, `other client: ${other.status}`);
    ctx.rotated = { at: Date.now(), old: before.refresh_token, current: after.refresh_token, clientId: p.store.client.client_id };
    return `waited ${Math.max(0, waitMs)} ms for expiry`;
  });

  await scenario('Step-up: write_file -> 403 insufficient_scope -> re-authorize with files.write', async () => {
    const p = newProvider({ login: 'dave', name: 'step-up agent' });
    const { client } = await connectClient({ mcpUrl: MCP_ALPHA, provider: p, log });
    assert.equal(toolJson(await client.callTool({ name: 'whoami', arguments: {} })).sub, 'dave');
    assert.ok(!accessClaims(p).scope.includes(`${API}/files.write`));
    const out = toolJson(await callTool(client, null, p, 'write_file', { name: 'a.txt', content: 'hello' }));
    assert.equal(out.sub, 'dave'); assert.equal(out.wrote, 'a.txt');
    assert.ok(out.claims.scope.split(' ').includes(`${API}/files.write`), `scope ${out.claims.scope}`);
    assert.equal(p.history.authorizationUrls.length, 2, 'second authorization');
    const au = new URL(p.history.authorizationUrls[1]);
    assert.deepEqual(au.searchParams.get('scope').split(' ').sort(), ['files.read', 'files.write']);
    assert.equal(p.history.registrations, 1, 'no re-registration'); checkCallback(p, ALPHA);
    const up = idp.events.filter((e) => e.kind === 'authorize').at(-1).params;
    assert.ok(up.scope.split(' ').includes(`${API}/files.write`));
    ctx.stepUp = { p };
    return `consent pages on step-up: ${p.browser.pages.shimConsent}`;
  });

  await scenario('Approval: a new SDK client is held after its user signs in, announced to a signed webhook, approved with the CLI, then logs in', async () => {
    const browser = new Browser({ login: 'hana', log, followBackLink: true });
    const p = newProvider({ login: 'hana', name: 'approval agent', browser });
    await assert.rejects(connectClient({ mcpUrl: MCP_APPROVAL, provider: p, log }), /authorization ended without a code/);
    assert.equal(browser.held.length, 1, 'the held page was shown');
    assert.match(browser.held[0], /must approve this application/);
    const back = p.lastCallback.params;
    assert.equal(back.error, 'access_denied'); assert.equal(back.iss, APPROVAL);
    const reference = /REQ-[0-9A-Z]{8}/.exec(back.error_description)?.[0];
    assert.ok(reference, back.error_description);
    assert.ok(browser.held[0].includes(reference), 'the page shows the same reference');
    // The webhook: signed over "{timestamp}.{body}" with the tenant's key.
    for (let i = 0; i < 100 && hooks.length === 0; i++) await sleep(50);
    assert.equal(hooks.length, 1, 'one notification');
    const { createHmac, timingSafeEqual } = await import('node:crypto');
    const { headers, body } = hooks[0];
    const ts = headers['x-dcr-shim-timestamp'];
    assert.ok(Math.abs(Date.now() / 1000 - Number(ts)) < 300, 'a recent timestamp');
    const expected = Buffer.from(`v1=${createHmac('sha256', HOOK_KEY).update(`${ts}.`).update(body).digest('hex')}`);
    const presented = Buffer.from(headers['x-dcr-shim-signature'] || '');
    assert.ok(presented.length === expected.length && timingSafeEqual(presented, expected), 'the signature verifies');
    const note = JSON.parse(body);
    assert.equal(note.reference, reference); assert.equal(note.user.subject, 'hana');
    assert.equal(note.client.claimed_name, 'approval agent'); assert.equal(note.client.client_id, p.store.client.client_id);
    // Nothing for the client meanwhile.
    const t = await tokenPost(APPROVAL, { grant_type: 'authorization_code', code: 'x', redirect_uri: REDIRECT, code_verifier: 'v'.repeat(43), client_id: p.store.client.client_id });
    assert.equal(t.status, 400); assert.equal((await t.json()).error, 'unauthorized_client');
    const env = { env: { ...process.env, DCR_SHIM_ADMIN_TOKEN: ADMIN_TOKEN } };
    const pending = await runCmd(SHIM_BIN, ['clients', 'pending', '--tenant', 'approval', '--admin-url', ADMIN_URL], env);
    assert.equal(pending.code, 0, pending.out); assert.ok(pending.out.includes(reference), pending.out);
    const cli = await runCmd(SHIM_BIN, ['clients', 'approve', '--tenant', 'approval', reference, '--admin-url', ADMIN_URL], env);
    assert.equal(cli.code, 0, cli.out);
    // The same client (no new registration) signs in again; the MCP server accepts its token.
    browser.followBackLink = false;
    const { client } = await connectClient({ mcpUrl: MCP_APPROVAL, provider: p, log });
    assert.equal(toolJson(await client.callTool({ name: 'whoami', arguments: {} })).sub, 'hana');
    assert.equal(p.history.registrations, 1, 'no re-registration');
    assert.equal(hooks.length, 1, 'no second notification');
    return `reference ${reference}; CLI: ${cli.out.trim().split('\n')[0]}`;
  });

  await scenario('Admin: a user revoked with the CLI is sent back to log in by the SDK client', async () => {
    const p = newProvider({ login: 'rita', name: 'revoked-user agent' });
    const { client } = await connectClient({ mcpUrl: MCP_ALPHA, provider: p, log });
    assert.equal(toolJson(await client.callTool({ name: 'whoami', arguments: {} })).sub, 'rita');
    const cli = await runCmd(SHIM_BIN, ['grants', 'revoke', '--tenant', 'alpha', '--user', 'rita', '--admin-url', ADMIN_URL],
      { env: { ...process.env, DCR_SHIM_ADMIN_TOKEN: ADMIN_TOKEN } });
    assert.equal(cli.code, 0, cli.out); assert.match(cli.out, /1 grant\(s\) revoked/);
    // Once the access token expires, the refresh is refused and the SDK starts a new login.
    const exp = accessClaims(p).exp * 1000;
    await sleep(Math.max(0, exp - Date.now() + 1500));
    assert.equal(toolJson(await callTool(client, null, p, 'whoami', {})).sub, 'rita');
    assert.equal(p.history.authorizationUrls.length, 2, 'a second authorization after the revocation');
    return `CLI: ${cli.out.trim()}`;
  });

  await scenario('Revocation: RFC 7009 revoke of the shim refresh token, then refresh refused', async () => {
    const { p } = ctx.stepUp; const rt = p.store.tokens.refresh_token; const clientId = p.store.client.client_id;
    assert.ok(rt);
    const r = await fetch(alphaMeta.revocation_endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: rt, token_type_hint: 'refresh_token', client_id: clientId }) });
    assert.equal(r.status, 200, await r.text());
    const t = await tokenPost(ALPHA, { grant_type: 'refresh_token', refresh_token: rt, client_id: clientId });
    const b = await t.json(); assert.equal(t.status, 400, JSON.stringify(b)); assert.equal(b.error, 'invalid_grant');
  });

  await scenario('private_key_jwt app: software_id mapping rule -> cert-agents (shim-jwt-app)', async () => {
    const p = newProvider({ login: 'erin', name: 'jwt agent', metadata: { software_id: 'jwt-agent' } });
    const before = idp.events.length;
    const { client } = await connectClient({ mcpUrl: MCP_ALPHA, provider: p, log });
    const out = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(out.sub, 'erin'); assert.equal(out.claims.client_id, 'shim-jwt-app');
    const ev = idp.events.slice(before);
    assert.equal(ev.find((e) => e.kind === 'authorize').params.client_id, 'shim-jwt-app');
    assert.ok(ev.some((e) => e.kind === 'grant.success' && e.client === 'shim-jwt-app' && e.grant_type === 'authorization_code'), JSON.stringify(ev));
    checkCallback(p, ALPHA);
  });

  await scenario('Second tenant (beta): own tenant file, client_secret_basic app', async () => {
    const p = newProvider({ login: 'bob', name: 'beta agent' });
    const { client } = await connectClient({ mcpUrl: MCP_BETA, provider: p, log });
    const out = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(out.sub, 'bob'); assert.equal(out.claims.client_id, 'shim-basic-app');
    const au = new URL(p.history.authorizationUrls[0]); assert.equal(au.origin + au.pathname, `${BETA}/authorize`);
    assert.equal(au.searchParams.get('resource'), MCP_BETA);
    checkCallback(p, BETA);
    ctx.beta = { p };
  });

  await scenario('Refusal: client registered at alpha used against beta', async () => {
    const alphaClient = ctx.dcr?.p.store.client;
    assert.ok(alphaClient, 'needs the DCR scenario');
    const p = newProvider({ login: 'mallory' });
    // client information as an application that does not track issuers would hold it
    const { issuer: _drop, ...unbound } = alphaClient;
    p.store.client = unbound;
    let err;
    try { await connectClient({ mcpUrl: MCP_BETA, provider: p, log }); } catch (e) { err = e; }
    assert.ok(err, 'connect must fail');
    assert.ok(err.status >= 400 && err.status < 500, `shim answers an error page, got ${err.status}: ${err.message}`);
    assert.ok(err.url.startsWith(`${BETA}/authorize`), `error shown at beta's authorize endpoint, got ${err.url}`);
    assert.equal(p.history.callbacks.length, 0, 'never redirected to the client');
    assert.equal(p.browser.pages.shimConsent + p.browser.pages.idpLogin, 0);
    // and at the token endpoint: an alpha client_id is unknown to beta
    const r = await tokenPost(BETA, { grant_type: 'authorization_code', code: 'x', client_id: alphaClient.client_id, redirect_uri: REDIRECT, code_verifier: 'x'.repeat(43) });
    const b = await r.json(); assert.ok(r.status === 400 || r.status === 401, `${r.status}`); assert.equal(b.error, 'invalid_client', JSON.stringify(b));
    return `error page HTTP ${err.status}`;
  });

  if (HA_DB) await scenario('HA: two replicas on PostgreSQL: the SDK login split across both, 50 parallel refreshes -> one successor, one SIGKILLed under registration load -> nothing acknowledged lost', async () => {
    const p = newProvider({ login: 'hank', name: 'ha agent' });
    const { client } = await connectClient({ mcpUrl: MCP_HA, provider: p, log });
    assert.equal(toolJson(await client.callTool({ name: 'whoami', arguments: {} })).sub, 'hank');
    checkCallback(p, HA_ALPHA);
    assert.ok(ha.served[0] > 0 && ha.served[1] > 0, `both replicas served the login: ${ha.served}`);
    const clientId = p.store.client.client_id;
    const refreshVia = (rt) => tokenPost(HA_ALPHA, { grant_type: 'refresh_token', refresh_token: rt, client_id: clientId });

    // 50 parallel refreshes of one family, spread over both replicas: one successor for all,
    // one call to the IdP.
    const upstreamBefore = idp.events.filter((e) => e.kind === 'grant.success' && e.grant_type === 'refresh_token').length;
    const parallel = await Promise.all(Array.from({ length: 50 }, () => refreshVia(p.store.tokens.refresh_token).then(async (r) => ({ status: r.status, body: await r.json() }))));
    for (const r of parallel) assert.equal(r.status, 200, JSON.stringify(r.body));
    const successors = new Set(parallel.map((r) => r.body.refresh_token));
    assert.equal(successors.size, 1, `one successor, got ${successors.size}`);
    assert.equal(idp.events.filter((e) => e.kind === 'grant.success' && e.grant_type === 'refresh_token').length, upstreamBefore + 1, 'one upstream refresh');
    let current = [...successors][0];

    // Registrations under load while one replica is SIGKILLed: every one acknowledged (201)
    // is there afterwards, on the survivor.
    const acknowledged = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const r = await fetch(`${HA_ALPHA}/register`, { method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_name: 'ha load', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }) }).catch(() => null);
        if (r && r.status === 201) acknowledged.push(await r.json());
      }
    })();
    await sleep(300);
    ha.replicas[0].child.kill('SIGKILL');
    await new Promise((r) => (ha.replicas[0].child.exitCode !== null || ha.replicas[0].child.signalCode ? r() : ha.replicas[0].child.once('exit', r)));
    await sleep(300);
    stop = true; await load;
    assert.ok(acknowledged.length > 5, `registrations acknowledged under load: ${acknowledged.length}`);
    for (const reg of acknowledged) {
      const read = await fetch(reg.registration_client_uri.replace(HA, `http://127.0.0.1:${ha.replicas[1].port}`), { headers: { authorization: `Bearer ${reg.registration_access_token}` } });
      assert.equal(read.status, 200, `acknowledged client ${reg.client_id} kept`);
    }
    // The grant, refreshed on the survivor.
    const refreshed = await refreshVia(current);
    const body = await refreshed.json();
    assert.equal(refreshed.status, 200, JSON.stringify(body));
    assert.ok(body.refresh_token && body.refresh_token !== current, 'rotated on the survivor');
    current = body.refresh_token;
    return `requests served: replica a ${ha.served[0]}, b ${ha.served[1]}; ${acknowledged.length} registrations acknowledged across the kill, all kept`;
  });

  await scenario('Refusal: consent denied -> access_denied at the client', async () => {
    const p = newProvider({ login: 'alice', consent: 'deny', name: 'denied agent' });
    const before = idp.events.filter((e) => e.kind === 'authorize').length;
    let err;
    try { await connectClient({ mcpUrl: MCP_ALPHA, provider: p, log }); } catch (e) { err = e; }
    assert.ok(err, 'connect must fail');
    assert.equal(p.lastCallback?.params.error, 'access_denied', JSON.stringify(p.lastCallback));
    assert.equal(p.lastCallback.params.iss, ALPHA);
    assert.equal(p.store.tokens, undefined);
    assert.equal(idp.events.filter((e) => e.kind === 'authorize').length, before, 'IdP never visited');
  });

  const chromiumPath = process.env.E2E_CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
  if (chromiumPath || process.env.CI) {
    await scenario('Browser: Chromium through consent, a cross-site IdP and back; approval remembered; consent unframeable', async () => {
      assert.ok(chromiumPath, 'CI needs Chromium (.ci/run installs Debian\'s chromium); set E2E_CHROMIUM to its path');
      const { runBrowserLogin } = await import('./lib/chromium.mjs');
      return runBrowserLogin({ chromiumPath, shim: SHIM, issuer: DELTA, idp: IDP2, redirect: REDIRECT, log });
    });
  } else {
    console.log('SKIP Browser: no Chromium here (set E2E_CHROMIUM, or install Debian\'s chromium)');
  }
  if (chromiumPath || process.env.CI) {
    await scenario('Browser through the gateway: a page of an allowed origin reads the challenge and both metadata documents, registers, logs its user in through Chromium and calls the MCP server, all by CORS; a page of another origin is refused', async () => {
      assert.ok(chromiumPath, 'CI needs Chromium (.ci/run installs Debian\'s chromium); set E2E_CHROMIUM to its path');
      const { runGatewayBrowserClient } = await import('./lib/chromium-gateway.mjs');
      return runGatewayBrowserClient({ chromiumPath, resource: GW_RESOURCE, idp: IDP, appPort: browserAppPort });
    });
  }

  const node22 = path.join(import.meta.dirname, 'node_modules/node/bin/node');
  const conformanceCli = path.join(import.meta.dirname, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
  if (!process.env.E2E_SKIP_CONFORMANCE && fs.existsSync(node22) && fs.existsSync(conformanceCli)) {
    await scenario('conformance: @modelcontextprotocol/conformance authorization against tenant alpha', async () => {
      const port = await freePort();
      const cb = `http://127.0.0.1:${port}/callback`;
      const reg = await fetch(`${ALPHA}/register`, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'conformance', redirect_uris: [cb], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }) });
      const regBody = await reg.json(); assert.equal(reg.status, 201, JSON.stringify(regBody));
      const outDir = path.join(tmp, 'conformance');
      const child = spawn(node22, [conformanceCli, 'authorization', '--url', ALPHA, '--client-id', regBody.client_id, '--resource', MCP_ALPHA, '--port', String(port), '-o', outDir],
        { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmp });
      started.children.push(child);
      let out = ''; const opened = new Set(); const browser = new Browser({ login: 'conformance-user', log });
      const browse = async (url) => {
        try {
          const final = await browser.navigate(url, { stopAt: cb });
          log(`conformance: delivering ${final.href}`);
          // the CLI prints the URL before its callback server listens: retry briefly
          for (let i = 0; ; i++) {
            try { const r = await fetch(final); await r.arrayBuffer(); break; } catch (e) { if (i > 50) throw e; await sleep(100); }
          }
        } catch (e) { out += `\n[e2e browser error: ${e.message}]\n`; }
      };
      const pending = [];
      const onData = (d) => {
        out += d;
        for (const m of out.matchAll(/https?:\/\/\S+\/authorize\?\S+/g)) {
          if (!opened.has(m[0])) { opened.add(m[0]); pending.push(browse(m[0])); }
        }
      };
      child.stdout.on('data', onData); child.stderr.on('data', onData);
      const code = await Promise.race([new Promise((r) => child.on('exit', r)), sleep(120_000).then(() => 'timeout')]);
      if (code === 'timeout') child.kill('SIGTERM');
      await Promise.all(pending);
      fs.writeFileSync(path.join(tmp, 'conformance.log'), out);
      const summary = out.split('\n').filter((l) => /passed|failed|warning|FAIL|✗|Total|SUCCESS|FAILURE/i.test(l)).slice(-15).join('\n');
      ctx.conformance = { code, out };
      assert.equal(code, 0, `conformance exit ${code}; opened ${opened.size} URL(s); full log ${path.join(tmp, 'conformance.log')}\n${out.slice(-3000)}`);
      return `opened ${opened.size} authorize URL(s); ${summary.replace(/\n/g, ' | ').slice(0, 400)}`;
    });
  }

  if (ctx.rotated) {
    await scenario('Refresh: old shim refresh token refused after the grace window (family revoked)', async () => {
      const wait = ctx.rotated.at + 61_000 - Date.now();
      if (wait > 0) await sleep(wait);
      const r = await tokenPost(ALPHA, { grant_type: 'refresh_token', refresh_token: ctx.rotated.old, client_id: ctx.rotated.clientId });
      const b = await r.json();
      assert.equal(r.status, 400, JSON.stringify(b)); assert.equal(b.error, 'invalid_grant');
      const r2 = await tokenPost(ALPHA, { grant_type: 'refresh_token', refresh_token: ctx.rotated.current, client_id: ctx.rotated.clientId });
      const b2 = await r2.json();
      assert.equal(r2.status, 400, `successor must be revoked too: ${JSON.stringify(b2)}`); assert.equal(b2.error, 'invalid_grant');
      return `waited ${Math.max(0, wait)} ms`;
    });
  }

  // ---------- summary ----------
  const passed = results.filter((r) => r.ok && !r.xfail).length; const failed = results.filter((r) => !r.ok).length;
  const xfailed = results.filter((r) => r.xfail).length;
  if (xfailed) console.log(`${xfailed} known shim defect(s) reproduced (XFAIL; E2E_STRICT=1 counts them as failures)`);
  console.log(`\nstartup ${startupMs} ms, total ${Date.now() - t0} ms; shim log: ${path.join(tmp, 'shim.log')}`);
  if (failed && VERBOSE) console.log(fs.readFileSync(path.join(tmp, 'shim.log'), 'utf8').split('\n').slice(-40).join('\n'));
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && results.length > 0;
}

async function stopAll() {
  for (const c of started.children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      await Promise.race([new Promise((r) => c.once('exit', r)), sleep(3000)]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  }
  for (const s of started.servers) { s.closeAllConnections?.(); s.close(); }
}

let ok = false;
try { ok = await main(); } catch (e) { console.log(`FAIL setup: ${e.stack || e}`); console.log('0 passed, 1 failed'); }
await stopAll();
if (!process.env.E2E_KEEP_TMP && ok) fs.rmSync(tmp, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
