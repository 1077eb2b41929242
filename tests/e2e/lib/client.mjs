// The MCP client side: the SDK's Client + StreamableHTTPClientTransport with an in-memory
// OAuthClientProvider whose redirectToAuthorization drives the scripted browser.
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Browser } from './browser.mjs';

export class TestProvider {
  constructor({ redirectUrl, clientMetadata, clientMetadataUrl, browser, consent = 'approve', log = () => {} }) {
    this._redirectUrl = redirectUrl;
    this._clientMetadata = clientMetadata;
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
    this.browser = browser;
    this.consent = consent;
    this.log = log;
    this.store = { client: undefined, tokens: undefined, verifier: undefined, discovery: undefined };
    this.history = { authorizationUrls: [], savedTokens: [], registrations: 0, callbacks: [] };
    this.pendingCode = undefined;
    this.expectedState = undefined;
  }
  get redirectUrl() { return this._redirectUrl; }
  get clientMetadata() { return this._clientMetadata; }
  state() { this.expectedState = randomBytes(16).toString('base64url'); return this.expectedState; }
  clientInformation() { return this.store.client; }
  saveClientInformation(info) { if (!this.store.client || this.store.client.client_id !== info.client_id) this.history.registrations++; this.store.client = info; }
  tokens() { return this.store.tokens; }
  saveTokens(t) { this.store.tokens = t; this.history.savedTokens.push(t); }
  saveCodeVerifier(v) { this.store.verifier = v; }
  codeVerifier() { return this.store.verifier; }
  saveDiscoveryState(s) { this.store.discovery = s; }
  discoveryState() { return this.store.discovery; }
  invalidateCredentials(scope) {
    this.log(`provider: invalidateCredentials(${scope})`);
    if (scope === 'all' || scope === 'client') this.store.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.store.tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this.store.verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.store.discovery = undefined;
  }
  async redirectToAuthorization(url) {
    this.history.authorizationUrls.push(url.href);
    this.log(`provider: redirectToAuthorization ${url.href.slice(0, 200)}`);
    const final = await this.browser.navigate(url, { stopAt: String(this._redirectUrl), consent: this.consent });
    const p = final.searchParams;
    this.history.callbacks.push(Object.fromEntries(p));
    if (p.get('state') !== this.expectedState) throw new Error(`callback state ${p.get('state')} != ${this.expectedState}`);
    this.lastCallback = { url: final.href, params: Object.fromEntries(p) };
    if (p.get('error')) { this.pendingCode = undefined; return; }
    this.pendingCode = p.get('code');
  }
}

/**
 * Connect an SDK client to `mcpUrl`, completing the OAuth flow via the provider when needed.
 * On a step-up (403 insufficient_scope) the stored tokens are dropped first, as an application
 * would when its token is known to be too narrow (the SDK would otherwise only refresh).
 */
export async function connectClient({ mcpUrl, provider, log = () => {} }) {
  const makeTransport = () => new StreamableHTTPClientTransport(new URL(mcpUrl), {
    authProvider: provider,
    fetch: async (input, init) => {
      const res = await fetch(input, init);
      if (res.status === 403 && /insufficient_scope/.test(res.headers.get('www-authenticate') || '')) {
        log('client: 403 insufficient_scope -> dropping stored tokens for re-authorization');
        provider.invalidateCredentials('tokens');
      }
      return res;
    },
  });
  let transport = makeTransport();
  const client = new Client({ name: 'e2e-client', version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    const cb = provider.lastCallback;
    if (!provider.pendingCode) {
      const err = new Error(`authorization ended without a code: ${JSON.stringify(cb?.params)}`);
      err.callback = cb; throw err;
    }
    await transport.finishAuth(provider.pendingCode);
    provider.pendingCode = undefined;
    transport = makeTransport();
    await client.connect(transport);
  }
  return { client, transport };
}

/** Call a tool; when the call triggers a re-authorization (step-up), finish it and retry once. */
export async function callTool(client, transportRef, provider, name, args = {}) {
  try {
    return await client.callTool({ name, arguments: args });
  } catch (e) {
    if (!(e instanceof UnauthorizedError) || !provider.pendingCode) throw e;
    await client.transport.finishAuth(provider.pendingCode);
    provider.pendingCode = undefined;
    return await client.callTool({ name, arguments: args });
  }
}

export function toolJson(result) {
  if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content)}`);
  return JSON.parse(result.content[0].text);
}

export { Browser };
