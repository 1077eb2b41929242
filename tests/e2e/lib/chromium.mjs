// A real browser through the shim's pages: Debian's Chromium, headless, driven by
// playwright-core. One public client logs in through a tenant whose IdP is on another site
// (localhost, while the shim is 127.0.0.1), so the shim's cookies must survive the IdP's
// cross-site redirect back to the callback exactly as Chromium applies their attributes.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { chromium } from 'playwright-core';

const b64url = (b) => b.toString('base64url');

/** An authorization URL for `clientId` with fresh PKCE and state. */
function authorizeUrl(issuer, clientId, redirect) {
  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(16));
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirect, state,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256', scope: 'files.read offline_access' });
  return { url: `${issuer}/authorize?${q}`, verifier, state };
}

async function register(issuer, redirect, name) {
  const r = await fetch(`${issuer}/register`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: name, redirect_uris: [redirect], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }) });
  const body = await r.json(); assert.equal(r.status, 201, JSON.stringify(body));
  return body.client_id;
}

/**
 * Drives the page from wherever it is until the client's redirect URI is reached, filling the
 * IdP's login and consent forms (oidc-provider devInteractions). Returns the pages it saw.
 */
async function finishAtIdp(page, { idp, delivered, log }) {
  const seen = [];
  for (let i = 0; i < 10 && !delivered(); i++) {
    await page.waitForLoadState('domcontentloaded');
    if (delivered()) break;
    const url = page.url();
    seen.push(url);
    assert.ok(url.startsWith(idp), `expected the IdP, got ${url}: ${(await page.content()).slice(0, 400)}`);
    if (await page.locator('input[name=login]').count()) {
      await page.fill('input[name=login]', 'chrome-user');
      await page.fill('input[name=password]', 'any');
    }
    log(`chromium: submitting ${url}`);
    await Promise.all([page.waitForEvent('framenavigated', { timeout: 10_000 }).catch(() => {}), page.click('button[type=submit]')]);
    await page.waitForTimeout(50);
  }
  assert.ok(delivered(), `the login never reached the client; pages: ${seen.join(' -> ')}`);
  return seen;
}

export async function runBrowserLogin({ chromiumPath, shim, issuer, idp, redirect, log = () => {} }) {
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  const closers = [];
  try {
    const context = await browser.newContext();
    // The client's loopback redirect URI, listening as a native client's would (interception
    // cannot see the end of a redirect chain).
    let delivered = null;
    const target = new URL(redirect);
    const listener = http.createServer((q, r) => {
      const url = new URL(q.url, redirect);
      if (url.pathname === target.pathname) delivered = url.href; // not /favicon.ico
      r.setHeader('content-type', 'text/plain'); r.end('signed in');
    });
    await new Promise((ok) => listener.listen(Number(target.port), target.hostname, ok));
    closers.push(() => new Promise((ok) => listener.close(ok)));
    const page = await context.newPage();
    const clientId = await register(issuer, redirect, 'Chromium agent');

    // 1. The consent page: shown, unframeable, with a CSRF cookie as Chromium stores it.
    const first = authorizeUrl(issuer, clientId, redirect);
    const consent = await page.goto(first.url);
    assert.equal(consent.status(), 200);
    assert.equal(await page.locator('input[name=ticket]').count(), 1, 'the consent form');
    assert.match(await page.textContent('body'), /Chromium agent/);
    const headers = consent.headers();
    assert.equal(headers['x-frame-options'], 'DENY');
    assert.match(headers['content-security-policy'], /frame-ancestors 'none'/);
    const csrf = (await context.cookies(shim)).find((c) => c.name === 'dcr-csrf');
    assert.ok(csrf, 'CSRF cookie stored');
    assert.equal(csrf.httpOnly, true); assert.equal(csrf.sameSite, 'Lax'); assert.equal(csrf.path, '/');

    // 2. Approve: to the IdP on another site, and back through the shim's callback.
    await Promise.all([page.waitForURL((u) => u.href.startsWith(idp)), page.click('button[name=decision][value=approve]')]);
    const txn = (await context.cookies(shim)).find((c) => c.name.startsWith('dcr-txn-'));
    assert.ok(txn, 'the transaction cookie is set before leaving for the IdP');
    assert.equal(txn.sameSite, 'Lax'); assert.equal(txn.httpOnly, true);
    await finishAtIdp(page, { idp, delivered: () => delivered, log });
    const back = new URL(delivered);
    assert.equal(back.searchParams.get('state'), first.state);
    assert.equal(back.searchParams.get('iss'), issuer);
    assert.ok(back.searchParams.get('code'), `a code, not ${back.search}`);
    const cookies = await context.cookies(shim);
    const approval = cookies.find((c) => c.name.startsWith('dcr-approvals-'));
    assert.ok(approval, `approval cookie kept: ${cookies.map((c) => c.name)}`);
    assert.equal(approval.httpOnly, true); assert.equal(approval.sameSite, 'Lax'); assert.equal(approval.path, '/');
    assert.ok(approval.expires > Date.now() / 1000 + 29 * 86400, 'remembered for 30 days');
    assert.ok(!cookies.some((c) => c.name.startsWith('dcr-txn-')), 'the transaction cookie is gone after the callback');
    const t = await fetch(`${issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: back.searchParams.get('code'), redirect_uri: redirect, code_verifier: first.verifier, client_id: clientId }) });
    const tokens = await t.json();
    assert.equal(t.status, 200, JSON.stringify(tokens)); assert.ok(tokens.refresh_token, 'refresh token');

    // 3. The next login in this browser skips the consent page.
    delivered = null;
    const second = authorizeUrl(issuer, clientId, redirect);
    const shimPages = [];
    page.on('response', (r) => { if (r.url().startsWith(`${issuer}/authorize`)) shimPages.push(r.status()); });
    await page.goto(second.url).catch(() => {});
    if (!delivered) await finishAtIdp(page, { idp, delivered: () => delivered, log });
    assert.ok(shimPages.length > 0 && !shimPages.includes(200), `consent page shown again: ${shimPages}`);
    assert.equal(new URL(delivered).searchParams.get('state'), second.state);

    // 4. Inside a frame, the consent page does not render.
    const other = await register(issuer, redirect, 'Framed agent');
    const framed = authorizeUrl(issuer, other, redirect);
    await page.setContent(`<iframe id="f" src="${framed.url.replace(/&/g, '&amp;')}" width="600" height="400"></iframe>`);
    await page.waitForTimeout(1000);
    const frame = page.frames().find((f) => f.parentFrame());
    assert.ok(frame, 'the frame exists');
    const inside = await frame.content().catch(() => '');
    assert.ok(!inside.includes('name="ticket"'), `the consent form rendered inside a frame: ${frame.url()}`);
    return `IdP pages on first login, consent remembered, frame shows ${frame.url().slice(0, 40)}`;
  } finally {
    await browser.close();
    for (const close of closers) await close();
  }
}
