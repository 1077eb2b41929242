// An Entra-like upstream IdP built on oidc-provider: static clients only, PKCE S256 required,
// resource servers api://mcp-files and api://reports issuing JWT access tokens, refresh tokens only with
// offline_access granted after prompt=consent (OpenID Connect Core §11), devInteractions (plain
// HTML login and consent forms).
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

// The API identifier the IdP knows (RFC 8707 resource, access-token audience), Entra-style.
export const API = process.env.E2E_UPSTREAM_RESOURCE || 'api://mcp-files';
export const API_SCOPES = [`${API}/files.read`, `${API}/files.write`];
// A downstream API an MCP server reaches through the shim's token exchange.
export const REPORTS_API = 'api://reports';
export const REPORTS_SCOPES = [`${REPORTS_API}/reports.read`];

/**
 * @param {object} o
 * @param {string} o.issuer  http://127.0.0.1:PORT
 * @param {Array}  o.clients oidc-provider client metadata
 * @param {number} o.accessTokenTTL seconds
 * @param {boolean} o.offlineAccessWithoutPrompt honour offline_access without prompt=consent,
 *   as Entra does (the benchmark's FastMCP needs it; the e2e suite must not have it)
 */
export function createIdp({ issuer, clients, accessTokenTTL = 6, offlineAccessWithoutPrompt = false }) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'e2e-idp-rs256', use: 'sig', alg: 'RS256' };
  const events = [];

  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [jwk] },
    cookies: { keys: ['e2e-cookie-key-0123456789abcdef'] },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access'],
    // App roles in the ID token, as Entra puts an app registration's assigned roles there: a
    // login whose name ends in -admin holds Files.Admin.
    claims: { openid: ['sub', 'roles'] },
    conformIdTokenClaims: false,
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => (sub.endsWith('-admin') ? { sub, roles: ['Files.Admin'] } : { sub }),
    }),
    features: {
      devInteractions: { enabled: true },
      registration: { enabled: false },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          const scopes = { [API]: API_SCOPES, [REPORTS_API]: REPORTS_SCOPES }[resourceIndicator];
          if (!scopes) throw new Provider.errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
          return {
            scope: scopes.join(' '),
            audience: resourceIndicator,
            accessTokenTTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    ttl: { AccessToken: accessTokenTTL, AuthorizationCode: 60, IdToken: 300, RefreshToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
    enabledJWA: { clientAuthSigningAlgValues: ['PS256', 'RS256'] },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
  });

  // oidc-provider follows OpenID Connect Core §11: offline_access is dropped unless the request
  // carries prompt=consent. The shim must add it (upstream.consent_for_refresh); nothing here
  // does it for the shim.
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/auth') {
      const q = new URLSearchParams(ctx.querystring);
      events.push({ kind: 'authorize', params: Object.fromEntries(q) });
      if (offlineAccessWithoutPrompt && (q.get('scope') || '').split(' ').includes('offline_access') && !q.get('prompt')) {
        q.set('prompt', 'consent');
        ctx.querystring = q.toString();
      }
    }
    if (ctx.method === 'POST' && ctx.path === '/token') events.push({ kind: 'token' });
    await next();
  });
  for (const e of ['grant.error', 'server_error', 'authorization.error']) {
    provider.on(e, (_ctx, err) => events.push({ kind: e, error: `${err.name}: ${err.message} ${err.error_description || ''}` }));
  }
  provider.on('grant.success', (ctx) => events.push({ kind: 'grant.success', grant_type: ctx.oidc.params.grant_type, client: ctx.oidc.client?.clientId }));
  provider.proxy = false;
  return { provider, events, callback: provider.callback() };
}
