// Module resolution hook for the IdP process: tests/e2e/lib/idp.mjs imports 'oidc-provider',
// which Node would look up in tests/e2e/node_modules. Resolve the bare imports of
// tests/e2e/lib/* from this directory instead, so the bench needs only its own `npm ci` and
// the IdP runs the oidc-provider this package-lock pins (one copy, which the adapter patch in
// idp-server.mjs must share).
const e2eLib = new URL('../../tests/e2e/lib/', import.meta.url).href;
const here = new URL('./idp-server.mjs', import.meta.url).href;
const bare = (s) => !/^(node:|file:|data:|\.{0,2}\/)/.test(s);

export async function resolve(specifier, context, next) {
  if (context.parentURL?.startsWith(e2eLib) && bare(specifier)) {
    return next(specifier, { ...context, parentURL: here });
  }
  return next(specifier, context);
}
