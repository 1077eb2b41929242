// A browser-based MCP client through the gateway, in Debian's Chromium: a page of an origin the
// gateway resource allows reads the 401 challenge, the resource's metadata and the tenant's,
// registers, sends its user through the consent page and the IdP, redeems the code and calls
// the MCP server through the gateway, every request cross-origin (CORS, preflights included);
// a page of another origin is refused. Nothing here is mocked: the browser's own CORS checks
// decide what the page may read.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { chromium } from 'playwright-core';

const b64url = (b) => b.toString('base64url');
const INITIALIZE = { jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'browser agent', version: '1.0.0' } } };

/** Fills oidc-provider's login and consent forms until `delivered()`. */
async function finishAtIdp(page, idp, delivered) {
  for (let i = 0; i < 10 && !delivered(); i++) {
    await page.waitForLoadState('domcontentloaded');
    if (delivered()) break;
    assert.ok(page.url().startsWith(idp), `expected the IdP, got ${page.url()}`);
    if (await page.locator('input[name=login]').count()) {
      await page.fill('input[name=login]', 'browser-user');
      await page.fill('input[name=password]', 'any');
    }
    await Promise.all([page.waitForEvent('framenavigated', { timeout: 10_000 }).catch(() => {}), page.click('button[type=submit]')]);
    await page.waitForTimeout(50);
  }
  assert.ok(delivered(), 'the login never reached the page');
}

/**
 * `appPort`: where the page's origin (http://localhost:appPort, which the gateway resource
 * allows) is served; http://127.0.0.1:appPort is the same server on an origin it does not allow.
 */
export async function runGatewayBrowserClient({ chromiumPath, resource, idp, appPort }) {
  const appOrigin = `http://localhost:${appPort}`;
  let delivered = null;
  const app = http.createServer((q, r) => {
    if (q.url.startsWith('/callback')) delivered = new URL(q.url, appOrigin).href;
    r.setHeader('content-type', 'text/html'); r.end('<!doctype html><title>agent</title><p>browser agent</p>');
  });
  await new Promise((ok) => app.listen(appPort, '127.0.0.1', ok));
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  try {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${appOrigin}/`);
    // 1. The challenge, the resource's metadata, the tenant's metadata, a registration.
    const found = await page.evaluate(async ({ resource, init, redirect }) => {
      const r = await fetch(resource, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(init) });
      const challenge = r.headers.get('www-authenticate');
      const prmUrl = /resource_metadata="([^"]+)"/.exec(challenge)[1];
      const prm = await (await fetch(prmUrl, { headers: { 'mcp-protocol-version': '2025-11-25' } })).json();
      const issuer = new URL(prm.authorization_servers[0]);
      const meta = await (await fetch(`${issuer.origin}/.well-known/oauth-authorization-server${issuer.pathname}`)).json();
      const reg = await fetch(meta.registration_endpoint, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'Browser agent', redirect_uris: [redirect], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] }) });
      return { status: r.status, challenge, prm, meta, client: await reg.json() };
    }, { resource, init: INITIALIZE, redirect: `${appOrigin}/callback` });
    assert.equal(found.status, 401); assert.match(found.challenge, /^Bearer /);
    assert.equal(found.prm.resource, resource);
    assert.ok(found.client.client_id, JSON.stringify(found.client));
    // 2. The user's login: consent, the IdP, back to the page.
    const verifier = b64url(randomBytes(32));
    const q = new URLSearchParams({ response_type: 'code', client_id: found.client.client_id, redirect_uri: `${appOrigin}/callback`,
      state: 'browser', resource, code_challenge: b64url(createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256' });
    await page.goto(`${found.meta.authorization_endpoint}?${q}`);
    await Promise.all([page.waitForURL((u) => u.href.startsWith(idp)), page.click('button[name=decision][value=approve]')]);
    await finishAtIdp(page, idp, () => delivered);
    await page.waitForURL((u) => u.href.startsWith(`${appOrigin}/callback`));
    // 3. On the callback page: the code redeemed, the MCP server called through the gateway.
    const called = await page.evaluate(async ({ resource, init, tokenEndpoint, clientId, verifier }) => {
      const code = new URL(location.href).searchParams.get('code');
      const t = await (await fetch(tokenEndpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: `${location.origin}/callback`, code_verifier: verifier, client_id: clientId }) })).json();
      const r = await fetch(resource, { method: 'POST', body: JSON.stringify(init),
        headers: { authorization: `Bearer ${t.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' } });
      return { status: r.status, session: r.headers.get('mcp-session-id'), body: await r.text(), token: t.access_token };
    }, { resource, init: INITIALIZE, tokenEndpoint: found.meta.token_endpoint, clientId: found.client.client_id, verifier });
    assert.equal(called.status, 200, called.body);
    assert.match(called.body, /serverInfo/);
    assert.ok(called.session, 'the page reads Mcp-Session-Id (exposed by CORS)');
    // 4. A page of an origin the resource does not allow cannot call it, even with the token.
    const other = await (await browser.newContext()).newPage();
    await other.goto(`http://127.0.0.1:${appPort}/`);
    const refused = await other.evaluate(async ({ resource, init, token }) => {
      try {
        const r = await fetch(resource, { method: 'POST', body: JSON.stringify(init),
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' } });
        return `read ${r.status}`;
      } catch (e) { return `blocked: ${e.message}`; }
    }, { resource, init: INITIALIZE, token: called.token });
    assert.match(refused, /^blocked/, refused);
    return `session ${called.session.slice(0, 8)}…, other origin ${refused}`;
  } finally {
    await browser.close();
    await new Promise((ok) => app.close(ok));
  }
}
