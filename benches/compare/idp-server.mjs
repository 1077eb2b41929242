// The upstream IdP in its own process (so its CPU time can be read from /proc/<pid>/stat): the
// e2e suite's oidc-provider set-up (tests/e2e/lib/idp.mjs), reused as is, on a loopback port.
// argv[2]: JSON { port, accessTokenTTL, clients }. Prints "ready <port>" when listening.
import http from 'node:http';
import { register } from 'node:module';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

register('./resolve-hooks.mjs', import.meta.url);
const { createIdp } = await import('../../tests/e2e/lib/idp.mjs');

const { port, accessTokenTTL, clients } = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
// Entra-like: offline_access honoured without prompt=consent. FastMCP does not send it, and
// oidc-provider would otherwise hand it no refresh token (dcr-shim sends it either way).
const { provider, events } = createIdp({ issuer, clients, accessTokenTTL, offlineAccessWithoutPrompt: true });
// createIdp records every authorize and token request for the e2e assertions; under wrk that
// list would only grow.
events.push = () => 0;

// oidc-provider's default in-memory adapter is an LRU of 1,000 entries: a few hundred logins
// evict the grants and refresh tokens of the families the refresh benchmark keeps using.
// Give this provider the same adapter over a store that does not evict.
const store = new LRU({ maxSize: 10_000_000 });
instance(provider).Adapter = (model) => new MemoryAdapter(model, store);

// The emulated distance of bench.mjs's logins "at a distance": every answer waits this long
// before it is worked out. POST /_bench/latency?ms=N sets it (and is answered at once); it is
// 0 for every other measurement.
let latencyMs = 0;
const handle = provider.callback();
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url.startsWith('/_bench/latency?')) {
    latencyMs = Number(new URL(req.url, issuer).searchParams.get('ms')) || 0;
    res.end();
  } else if (latencyMs > 0) {
    setTimeout(() => handle(req, res), latencyMs);
  } else {
    handle(req, res);
  }
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => console.log(`ready ${port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
