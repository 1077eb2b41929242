// Side-by-side benchmark (targets in docs/benchmarks.md): a complete login and wrk throughput
// through dcr-shim, through FastMCP's OIDCProxy, and directly at the same oidc-provider, in one run. Started by
// run.sh (which installs what this needs); see the comment there for the options.
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  discoverAuthorizationServerMetadata, registerClient, startAuthorization, exchangeAuthorization, refreshAuthorization,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { Browser } from './browser.mjs';

const HERE = import.meta.dirname;
const ROOT = path.resolve(HERE, '../..');
const TMP = process.env.BENCH_TMP || fs.mkdtempSync(path.join(os.tmpdir(), 'dcr-shim-compare-'));
const SHIM_BIN = process.env.DCR_SHIM_BIN || path.join(ROOT, 'target/release/dcr-shim');
const HELLO_BIN = process.env.HELLO_BIN || path.join(ROOT, 'target/release/examples/hello');
const PYTHON = path.join(HERE, '.venv/bin/python');
// A PostgreSQL server (a user that may create databases): adds dcr-shim on PostgreSQL as a
// fourth target. run.sh starts a throwaway one when this is not set.
const PG = process.env.DCR_SHIM_TEST_POSTGRES;

// ---------- options ----------
const argv = process.argv.slice(2);
const SMOKE = argv.includes('--smoke');
const opt = (name, full, smoke) => {
  const i = argv.indexOf(`--${name}`);
  if (i >= 0) return Number(argv[i + 1]);
  return SMOKE ? smoke : full;
};
const LOGINS = opt('logins', 200, 3);
const WARMUP_LOGINS = opt('warmup', 10, 1); // per target
const FAMILIES = opt('families', 128, 64);
const DURATION = opt('duration', 10, 1);
const WRK_WARMUP = opt('wrk-warmup', 2, 0);
// Logins "at a distance": the IdP answers each request IDP_LATENCY ms late (browser and server
// calls alike), and a replica on PostgreSQL reaches the database through a relay that holds
// every packet DB_LATENCY ms each way. Loopback hides the round trips that a deployment pays.
const DISTANCE_LOGINS = opt('distance-logins', 100, 3);
const IDP_LATENCY = opt('idp-latency', 10, 10);
const DB_LATENCY = opt('db-latency', 1, 1);
const CONNECTIONS = opt('connections', 64, 64);
const THREADS = opt('threads', 2, 2);
// Far above what wrk can reach, so the shim's per-address registration limit never answers 429.
const REGISTRATIONS_PER_MINUTE = 1_000_000_000;
const ACCESS_TOKEN_TTL = 3600;
const API = 'api://mcp-files';
const UPSTREAM_SCOPE = `openid offline_access ${API}/files.read`;

// ---------- processes ----------
const children = [];
function start(name, cmd, args, opts = {}) {
  const log = path.join(TMP, `${name}.log`);
  const fd = fs.openSync(log, 'w');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], ...opts });
  fs.closeSync(fd);
  fs.appendFileSync(path.join(TMP, 'pids'), `${child.pid}\n`);
  const proc = { name, child, pid: child.pid, log, exited: null };
  child.on('exit', (code, sig) => { proc.exited = { code, sig }; });
  children.push(proc);
  return proc;
}
// SIGTERM, up to 5 s to exit (uvicorn shuts down gracefully), then SIGKILL.
async function stopAll() {
  const alive = children.filter((p) => !p.exited);
  for (const p of alive) p.child.kill('SIGTERM');
  const deadline = Date.now() + 5000;
  while (alive.some((p) => !p.exited) && Date.now() < deadline) await sleep(50);
  for (const p of alive) if (!p.exited) p.child.kill('SIGKILL');
}
process.on('exit', () => { for (const p of children) if (!p.exited) p.child.kill('SIGKILL'); });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => stopAll().then(() => process.exit(130)));

// A TCP relay to host:port that holds every chunk `ms` milliseconds in each direction, in order
// (timers of one duration fire in the order they were set): a database farther away than
// loopback.
async function delayingRelay(listenPort, host, port, ms) {
  const server = net.createServer((near) => {
    const far = net.connect(port, host);
    for (const [from, to] of [[near, far], [far, near]]) {
      from.setNoDelay(true);
      from.on('data', (chunk) => setTimeout(() => { if (!to.destroyed) to.write(chunk); }, ms));
      from.on('end', () => setTimeout(() => to.end(), ms));
      from.on('error', () => to.destroy());
      from.on('close', () => setTimeout(() => to.destroy(), ms));
    }
  });
  await new Promise((r) => server.listen(listenPort, '127.0.0.1', r));
  server.unref(); // never what keeps the bench running
  return { server, port: server.address().port };
}

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}
async function waitFor(proc, url, okStatus = 200, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exited) throw new Error(`${proc.name} exited at start-up ${JSON.stringify(proc.exited)}: ${tail(proc.log)}`);
    try { if ((await fetch(url)).status === okStatus) return; } catch {}
    if (Date.now() > deadline) throw new Error(`${proc.name} not ready at ${url} in ${timeoutMs} ms: ${tail(proc.log)}`);
    await sleep(100);
  }
}
const tail = (file) => fs.readFileSync(file, 'utf8').slice(-2000);

// CPU time of one process (all its threads) from /proc/<pid>/stat: utime + stime, in ms.
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim());
function cpuMs(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}
// wrk leaves the requests in flight when its time is up, and a slow server goes on working
// through them (and a proxy through its upstream calls): wait until every watched process has
// used less than 5% of a core over 500 ms, so the next run starts on an idle machine.
async function quiesce(procs, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const a = cpuSnapshot(procs);
    await sleep(500);
    const busy = Object.entries(cpuDelta(a, cpuSnapshot(procs))).filter(([, ms]) => ms > 25);
    if (!busy.length) return;
    if (Date.now() > deadline) throw new Error(`still busy after ${timeoutMs} ms: ${busy.map(([k]) => k).join(', ')}`);
  }
}
const cpuSnapshot = (procs) => Object.fromEntries(procs.map((p) => [p.name, cpuMs(p.pid)]));
const cpuDelta = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, b[k] - a[k]]));

// ---------- one login with the MCP SDK's client helpers and the scripted browser ----------
async function login(target, redirect, fixedClient) {
  const times = {};
  const timed = async (step, fn) => {
    const t = performance.now();
    const out = await fn();
    times[step] = performance.now() - t;
    return out;
  };
  const t0 = performance.now();
  const metadata = await timed('metadata', () => discoverAuthorizationServerMetadata(target.issuer));
  if (!metadata) throw new Error(`${target.name}: no authorization server metadata at ${target.issuer}`);
  // Two replicas: registration and code exchange on the other one (`target.other`), the
  // browser's steps and the refresh on the issuer's, so that every step finds what another
  // replica wrote.
  const onOther = (key) => (target.other ? { ...metadata, [key]: metadata[key].replace(new URL(target.issuer).origin, target.other) } : metadata);
  let client = fixedClient || target.staticClient;
  if (!client) {
    client = await timed('register', () => registerClient(target.issuer, { metadata: onOther('registration_endpoint'), clientMetadata: clientMetadata(redirect) }));
  }
  const browser = new Browser({ login: 'alice' });
  const state = randomBytes(16).toString('base64url');
  const { code, codeVerifier } = await timed('authorize', async () => {
    const { authorizationUrl, codeVerifier } = await startAuthorization(target.issuer, {
      metadata, clientInformation: client, redirectUrl: redirect, scope: target.scope, state, resource: target.resource,
    });
    const back = (await browser.navigate(authorizationUrl, { stopAt: redirect })).searchParams;
    if (back.get('state') !== state || !back.get('code')) throw new Error(`${target.name}: callback ${JSON.stringify(Object.fromEntries(back))}`);
    return { code: back.get('code'), codeVerifier };
  });
  const common = { metadata, clientInformation: client, resource: target.resource };
  const tokens = await timed('token', () => exchangeAuthorization(target.issuer, { ...common, metadata: onOther('token_endpoint'), authorizationCode: code, codeVerifier, redirectUri: redirect }));
  if (!tokens.refresh_token) throw new Error(`${target.name}: no refresh token in ${JSON.stringify(Object.keys(tokens))}`);
  const refreshed = await timed('refresh', () => refreshAuthorization(target.issuer, { ...common, refreshToken: tokens.refresh_token }));
  times.login = performance.now() - t0;
  return { times, client, refreshToken: refreshed.refresh_token, pages: browser.pages };
}

// Logins for each target, taking turns of ten so that none gets a warmer IdP (V8's JIT, caches)
// or a quieter machine than another; the CPU time of `servers` is read around each turn and
// added up per target (a turn rather than one login, so that tick rounding stays small).
async function measureLogins(targets, n, warmup, servers, redirect) {
  for (let i = 0; i < warmup; i++) for (const t of targets) await login(t, redirect);
  const acc = Object.fromEntries(targets.map((t) => [t.key, { steps: {}, cpu: {}, wallMs: 0, pages: null }]));
  const TURN = 10;
  for (let done = 0; done < n; done += TURN) {
    for (const t of targets) {
      const a = acc[t.key];
      const before = cpuSnapshot(servers);
      for (let i = done; i < Math.min(done + TURN, n); i++) {
        const r = await login(t, redirect);
        for (const [k, v] of Object.entries(r.times)) (a.steps[k] ||= []).push(v);
        a.wallMs += r.times.login;
        a.pages = r.pages;
      }
      for (const [k, ms] of Object.entries(cpuDelta(before, cpuSnapshot(servers)))) a.cpu[k] = (a.cpu[k] || 0) + ms;
    }
  }
  const logins = {};
  for (const t of targets) {
    const a = acc[t.key];
    logins[t.key] = {
      n, wall_ms: a.wallMs, pages_per_login: a.pages,
      steps: Object.fromEntries(Object.entries(a.steps).map(([k, v]) => [k, { p50: pct(v, 0.5), p95: pct(v, 0.95), samples: v }])),
      cpu_ms_per_login: Object.fromEntries(Object.entries(a.cpu).map(([k, v]) => [k, v / n])),
    };
    console.error(`logins ${t.name}: ${n} in ${(a.wallMs / 1000).toFixed(1)} s; p50 ms: ${Object.entries(logins[t.key].steps).map(([k, v]) => `${k} ${f2(v.p50)}`).join(', ')}`);
  }
  return logins;
}
const clientMetadata = (redirect) => ({
  client_name: 'bench agent', redirect_uris: [redirect], grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'], token_endpoint_auth_method: 'none',
});

// ---------- wrk ----------
function wrk(url, script, args = [], duration = DURATION, { connections = CONNECTIONS, threads = THREADS } = {}) {
  // --timeout 30s: wrk leaves slower responses out of its latency figures (counting them as
  // timeouts), and a single-process server behind 64 connections can take seconds per request.
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', [`-t${threads}`, `-c${connections}`, `-d${duration}s`, '--timeout', '30s', '-s', script, url, '--', ...args.map(String)],
      { cwd: path.join(HERE, 'wrk') });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const killer = setTimeout(() => child.kill('SIGKILL'), (duration + 60) * 1000);
    child.on('close', (status) => {
      clearTimeout(killer);
      const line = stdout.split('\n').find((l) => l.startsWith('JSON '));
      if (status !== 0 || !line) reject(new Error(`wrk ${url} failed (${status}): ${stdout}${stderr}`));
      else resolve(JSON.parse(line.slice(5)));
    });
  });
}

// Two wrk runs at once, one per replica, each with half the connections and one thread; their
// counts add up, and their p50 and p99 are the worse of the two.
async function wrkPair(urls, script, argsEach, duration) {
  const half = { connections: CONNECTIONS / 2, threads: 1 };
  const [a, b] = await Promise.all(urls.map((u, i) => wrk(u, script, argsEach[i], duration, half)));
  const sum = (k) => a[k] + b[k];
  const counters = Object.fromEntries([...new Set([...Object.keys(a.counters), ...Object.keys(b.counters)])]
    .map((k) => [k, (a.counters[k] || 0) + (b.counters[k] || 0)]));
  const errors = Object.fromEntries(Object.keys(a.errors).map((k) => [k, a.errors[k] + b.errors[k]]));
  return {
    ...a, requests: sum('requests'), counters, errors,
    duration_us: Math.max(a.duration_us, b.duration_us), p50_us: Math.max(a.p50_us, b.p50_us), p99_us: Math.max(a.p99_us, b.p99_us),
  };
}

// ---------- helpers for the report ----------
const pct = (xs, q) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.round((s.length - 1) * q)];
};
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–');
const sh = (cmd, args, opts) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  return `${r.stdout || ''}${r.stderr || ''}`.trim();
};

async function main() {
  const started = Date.now();
  const loadBefore = os.loadavg();
  for (const [what, file] of [['dcr-shim', SHIM_BIN], ['python venv', PYTHON]]) {
    if (!fs.existsSync(file)) throw new Error(`${what} not found at ${file}`);
  }
  const haveHello = fs.existsSync(HELLO_BIN);

  // ---------- ports, URLs, secrets ----------
  const [idpPort, shimPort, fastmcpPort, helloPort, callbackPort, resourcePort, shimPgPort, shimPg2Port, shimFarPort, relayPort] = await Promise.all(Array.from({ length: 10 }, freePort));
  const SHIM_PG = `http://127.0.0.1:${shimPgPort}`;
  // The second replica on the same database: same tenant, secret and public URL (the issuer).
  const SHIM_PG2 = `http://127.0.0.1:${shimPg2Port}`;
  // A third replica on the same database, for the logins at a distance only: through the relay.
  const SHIM_FAR = `http://127.0.0.1:${shimFarPort}`;
  const IDP = `http://127.0.0.1:${idpPort}`;
  const SHIM = `http://127.0.0.1:${shimPort}`;
  const FASTMCP = `http://127.0.0.1:${fastmcpPort}`;
  const HELLO = `http://127.0.0.1:${helloPort}`;
  // Nothing listens on these: the browser stops at the redirect, as an MCP client's would.
  const REDIRECT = `http://127.0.0.1:${callbackPort}/callback`;
  const RESOURCE = `http://127.0.0.1:${resourcePort}/mcp`;
  const secret = (name) => {
    const file = path.join(TMP, `${name}.secret`);
    fs.writeFileSync(file, `${name}-${randomBytes(24).toString('hex')}`, { mode: 0o600 });
    return { file, value: fs.readFileSync(file, 'utf8') };
  };
  const shimSecret = secret('shim-app');
  const fastmcpSecret = secret('fastmcp-app');
  const directSecret = secret('direct-app');
  const app = { grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] };

  // ---------- the upstream IdP ----------
  const node = process.execPath;
  const idp = start('oidc-provider', node, [path.join(HERE, 'idp-server.mjs'), JSON.stringify({
    port: idpPort, accessTokenTTL: ACCESS_TOKEN_TTL,
    clients: [
      { client_id: 'shim-app', client_secret: shimSecret.value, token_endpoint_auth_method: 'client_secret_basic', redirect_uris: [`${SHIM}/bench/callback`, `${SHIM}/minted/callback`, `${SHIM_PG}/bench/callback`, `${SHIM_FAR}/bench/callback`], ...app },
      { client_id: 'fastmcp-app', client_secret: fastmcpSecret.value, token_endpoint_auth_method: 'client_secret_basic', redirect_uris: [`${FASTMCP}/auth/callback`], ...app },
      // A client registered at the IdP by hand, with a loopback redirect. It has a secret because
      // the e2e IdP, like Entra's confidential apps, accepts no public clients (no auth method "none").
      { client_id: 'direct-app', client_secret: directSecret.value, token_endpoint_auth_method: 'client_secret_basic', redirect_uris: [REDIRECT], ...app },
    ],
  })]);
  await waitFor(idp, `${IDP}/.well-known/openid-configuration`);

  // ---------- dcr-shim ----------
  const tenants = path.join(TMP, 'tenants');
  fs.mkdirSync(tenants);
  fs.writeFileSync(path.join(tenants, 'bench.toml'), `display_name = "Bench"
[upstream]
kind = "oidc"
issuer = "${IDP}"
[[apps]]
name = "agents"
client_id = "shim-app"
credential = { kind = "client_secret", secret_file = "${shimSecret.file}", method = "basic" }
[[resources]]
uri = "${RESOURCE}"
name = "Bench files"
default = true
upstream_resource = "${API}"
scopes = [{ name = "files.read", upstream = "${API}/files.read", description = "Read your files" }]
[registration]
registrations_per_minute = ${REGISTRATIONS_PER_MINUTE}
`);
  // The same tenant with minted access tokens (docs/tokens.md), served by the same process.
  fs.writeFileSync(path.join(tenants, 'minted.toml'), fs.readFileSync(path.join(tenants, 'bench.toml'), 'utf8')
    .replace('display_name = "Bench"', 'display_name = "Bench, minted tokens"')
    .replace('default = true\n', 'default = true\ntoken = "minted"\n'));
  const shimData = path.join(TMP, 'shim-data');
  fs.mkdirSync(shimData);
  const shim = start('dcr-shim', SHIM_BIN, ['serve', '--listen', `127.0.0.1:${shimPort}`, '--public-url', SHIM, '--data-dir', shimData,
    '--tenants', tenants, '--workers', '2', '--login-starts-per-minute', '1000000'], { env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' } });
  await waitFor(shim, `${SHIM}/readyz`);

  // ---------- dcr-shim on PostgreSQL ----------
  let shimPg = null;
  let shimPg2 = null;
  let shimFar = null;
  let relay = null;
  if (PG) {
    const db = `bench_${process.pid}_${Date.now()}`;
    const created = spawnSync('psql', [PG, '-q', '-c', `CREATE DATABASE ${db}`], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`cannot create the benchmark database: ${created.stderr}`);
    const url = new URL(PG); url.pathname = `/${db}`;
    const serverSecret = path.join(TMP, 'pg-server-secret');
    fs.writeFileSync(serverSecret, randomBytes(32).toString('hex'), { mode: 0o600 });
    const replica = (name, port, publicUrl = SHIM_PG, storeUrl = url) => {
      const data = path.join(TMP, `${name}-data`);
      fs.mkdirSync(data);
      return start(name, SHIM_BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--public-url', publicUrl, '--data-dir', data,
        '--tenants', tenants, '--workers', '2', '--login-starts-per-minute', '1000000', '--store', storeUrl.toString(), '--secret-file', serverSecret],
      { env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' } });
    };
    shimPg = replica('dcr-shim-pg', shimPgPort);
    await waitFor(shimPg, `${SHIM_PG}/readyz`);
    shimPg2 = replica('dcr-shim-pg2', shimPg2Port);
    await waitFor(shimPg2, `${SHIM_PG2}/readyz`);
    relay = await delayingRelay(relayPort, url.hostname, Number(url.port || 5432), DB_LATENCY);
    const farUrl = new URL(url);
    farUrl.hostname = '127.0.0.1'; farUrl.port = String(relay.port); farUrl.searchParams.delete('host');
    shimFar = replica('dcr-shim-pg-far', shimFarPort, SHIM_FAR, farUrl);
    await waitFor(shimFar, `${SHIM_FAR}/readyz`);
  }

  // ---------- FastMCP ----------
  const fastmcpHome = path.join(TMP, 'fastmcp-home');
  const fastmcp = start('fastmcp', PYTHON, [path.join(HERE, 'fastmcp_proxy.py'), String(fastmcpPort), IDP, 'fastmcp-app', fastmcpSecret.file, API], {
    env: {
      ...process.env, FASTMCP_HOME: fastmcpHome, FASTMCP_CHECK_FOR_UPDATES: 'off', FASTMCP_SHOW_SERVER_BANNER: 'false',
      FASTMCP_ENABLE_RICH_LOGGING: 'false', FASTMCP_LOG_LEVEL: 'INFO',
    },
  });
  await waitFor(fastmcp, `${FASTMCP}/.well-known/oauth-authorization-server`);

  // ---------- hello (the ceiling: actix with nothing behind it) ----------
  let hello = null;
  if (haveHello) {
    hello = start('hello', HELLO_BIN, ['--listen', `127.0.0.1:${helloPort}`, '--workers', '2']);
    await waitFor(hello, `${HELLO}/`);
  }
  const servers = [shim, fastmcp, idp, ...(shimPg ? [shimPg, shimPg2] : [])];
  console.error(`started: oidc-provider ${IDP}, dcr-shim ${SHIM}, FastMCP ${FASTMCP}${hello ? `, hello ${HELLO}` : ' (hello binary not built: skipped)'}; logs in ${TMP}`);

  // ---------- logins ----------
  const targets = [
    { key: 'shim', name: 'dcr-shim', issuer: `${SHIM}/bench`, scope: 'files.read offline_access', resource: RESOURCE },
    { key: 'shim_minted', name: 'dcr-shim, minted tokens', issuer: `${SHIM}/minted`, scope: 'files.read offline_access', resource: RESOURCE },
    { key: 'fastmcp', name: 'FastMCP', issuer: FASTMCP, scope: UPSTREAM_SCOPE, resource: `${FASTMCP}/mcp` },
    { key: 'direct', name: 'direct', issuer: IDP, scope: UPSTREAM_SCOPE, resource: API, staticClient: { client_id: 'direct-app', client_secret: directSecret.value, token_endpoint_auth_method: 'client_secret_basic' } },
    ...(shimPg ? [
      { key: 'shim_pg', name: 'dcr-shim on PostgreSQL', issuer: `${SHIM_PG}/bench`, scope: 'files.read offline_access', resource: RESOURCE },
      { key: 'shim_pg2', name: 'dcr-shim on PostgreSQL, two replicas', issuer: `${SHIM_PG}/bench`, other: SHIM_PG2, scope: 'files.read offline_access', resource: RESOURCE },
    ] : []),
  ];
  const logins = await measureLogins(targets, LOGINS, WARMUP_LOGINS, servers, REDIRECT);

  // ---------- logins at a distance ----------
  // The same logins with the IdP and the database farther away than loopback: dcr-shim on sled,
  // a replica on PostgreSQL through the relay, and directly. No CPU figures: waiting dominates.
  let distance = null;
  if (shimFar && DISTANCE_LOGINS > 0) {
    const setIdpLatency = async (ms) => {
      const r = await fetch(`${IDP}/_bench/latency?ms=${ms}`, { method: 'POST' });
      if (!r.ok) throw new Error(`the IdP did not take its latency: HTTP ${r.status}`);
    };
    const far = [
      targets.find((t) => t.key === 'shim'),
      targets.find((t) => t.key === 'direct'),
      { key: 'shim_pg_far', name: 'dcr-shim on PostgreSQL (relayed)', issuer: `${SHIM_FAR}/bench`, scope: 'files.read offline_access', resource: RESOURCE },
    ];
    await setIdpLatency(IDP_LATENCY);
    try {
      distance = { idp_latency_ms: IDP_LATENCY, db_latency_ms: DB_LATENCY, logins: await measureLogins(far, DISTANCE_LOGINS, 2, [], REDIRECT) };
    } finally {
      await setIdpLatency(0);
    }
  }

  // ---------- refresh-token pools for wrk: one client per server, many families ----------
  const makePool = async (t, n, file) => {
    const first = await login(t, REDIRECT);
    const tokens = [first.refreshToken];
    for (let i = 1; i < n; i++) tokens.push((await login(t, REDIRECT, first.client)).refreshToken);
    fs.writeFileSync(file, `${tokens.join('\n')}\n`);
    return { file, clientId: first.client.client_id, families: n };
  };
  const pools = {};
  for (const t of targets.filter((t) => t.key !== 'direct' && t.key !== 'shim_pg2')) {
    pools[t.key] = {
      warmup: WRK_WARMUP > 0 ? await makePool(t, CONNECTIONS, path.join(TMP, `${t.key}-warmup.tokens`)) : null,
      run: await makePool(t, FAMILIES, path.join(TMP, `${t.key}.tokens`)),
    };
  }
  // Two replicas: half the families for each replica's wrk.
  const twoReplicas = targets.find((t) => t.key === 'shim_pg2');
  if (twoReplicas) {
    pools.shim_pg2 = [];
    for (const side of ['a', 'b']) {
      pools.shim_pg2.push({
        warmup: WRK_WARMUP > 0 ? await makePool(twoReplicas, CONNECTIONS / 2, path.join(TMP, `shim_pg2-${side}-warmup.tokens`)) : null,
        run: await makePool(twoReplicas, FAMILIES / 2, path.join(TMP, `shim_pg2-${side}.tokens`)),
      });
    }
  }
  console.error('refresh-token pools ready');

  // ---------- throughput ----------
  const runs = [
    { target: 'dcr-shim', endpoint: 'metadata', url: `${SHIM}/.well-known/oauth-authorization-server/bench`, script: 'get.lua' },
    { target: 'FastMCP', endpoint: 'metadata', url: `${FASTMCP}/.well-known/oauth-authorization-server`, script: 'get.lua' },
    ...(hello ? [{ target: 'hello', endpoint: 'GET /', url: `${HELLO}/`, script: 'get.lua' }] : []),
    { target: 'dcr-shim', endpoint: 'registration', url: `${SHIM}/bench/register`, script: 'register.lua', args: [REDIRECT], counter: 'created' },
    { target: 'FastMCP', endpoint: 'registration', url: `${FASTMCP}/register`, script: 'register.lua', args: [REDIRECT], counter: 'created' },
    { target: 'dcr-shim', endpoint: 'refresh', url: `${SHIM}/bench/token`, script: 'refresh.lua', pool: pools.shim, counter: 'ok' },
    { target: 'dcr-shim minted', endpoint: 'refresh', url: `${SHIM}/minted/token`, script: 'refresh.lua', pool: pools.shim_minted, counter: 'ok' },
    { target: 'FastMCP', endpoint: 'refresh', url: `${FASTMCP}/token`, script: 'refresh.lua', pool: pools.fastmcp, counter: 'ok' },
    ...(shimPg ? [
      { target: 'dcr-shim-pg', endpoint: 'registration', url: `${SHIM_PG}/bench/register`, script: 'register.lua', args: [REDIRECT], counter: 'created' },
      { target: 'dcr-shim-pg', endpoint: 'refresh', url: `${SHIM_PG}/bench/token`, script: 'refresh.lua', pool: pools.shim_pg, counter: 'ok' },
      { target: 'dcr-shim-pg ×2', endpoint: 'registration', urls: [`${SHIM_PG}/bench/register`, `${SHIM_PG2}/bench/register`], script: 'register.lua', args: [REDIRECT], counter: 'created' },
      { target: 'dcr-shim-pg ×2', endpoint: 'refresh', urls: [`${SHIM_PG}/bench/token`, `${SHIM_PG2}/bench/token`], script: 'refresh.lua', pools: pools.shim_pg2, counter: 'ok' },
    ] : []),
  ];
  const poolArgs = (p, threads = THREADS) => [p.file, p.clientId, threads];
  const throughput = [];
  const watched = [...servers, ...(hello ? [hello] : [])];
  // One wrk run, or a pair (one per replica) for a run with `urls`.
  const load = (r, phase, duration) => (r.urls
    ? wrkPair(r.urls, r.script, r.urls.map((_, i) => (r.pools ? poolArgs(r.pools[i][phase], 1) : r.args)), duration)
    : wrk(r.url, r.script, r.pool ? poolArgs(r.pool[phase]) : r.args, duration));
  for (const r of runs) {
    await quiesce(watched);
    if (WRK_WARMUP > 0) {
      await load(r, 'warmup', WRK_WARMUP);
      await quiesce(watched);
    }
    const before = cpuSnapshot(watched);
    const w = await load(r, 'run', DURATION);
    const cpu = cpuDelta(before, cpuSnapshot(watched));
    const seconds = w.duration_us / 1e6;
    const counted = r.counter ? w.counters[r.counter] : w.requests - w.errors.status;
    const row = {
      target: r.target, endpoint: r.endpoint, url: r.url || r.urls.join(' + '), seconds, requests: w.requests, counted, per_second: counted / seconds,
      p50_ms: w.requests ? w.p50_us / 1000 : NaN, p99_ms: w.requests ? w.p99_us / 1000 : NaN,
      not_counted: w.requests - counted, socket_errors: w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout,
      starved: w.counters.starved ?? 0,
      cpu_percent_of_core: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, (100 * v) / (seconds * 1000)])),
      wrk: w,
    };
    throughput.push(row);
    console.error(`wrk ${r.target} ${r.endpoint}: ${int(row.per_second)}/s, p50 ${f2(row.p50_ms)} ms, p99 ${f2(row.p99_ms)} ms, not counted ${row.not_counted}`);
  }

  await quiesce(watched);

  // FastMCP's registrations are files (one per client) in its default store; count them.
  const clientDirs = fs.readdirSync(path.join(fastmcpHome, 'oauth-proxy'), { recursive: true, withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name.startsWith('S_mcp_oauth_proxy_clients'));
  const fastmcpClientFiles = clientDirs.reduce((n, d) => n + fs.readdirSync(path.join(d.parentPath, d.name)).length, 0);

  const serverErrors = {
    fastmcp: grepCount(fastmcp.log, /ERROR|Traceback/), shim: grepCount(shim.log, / ERROR /),
    ...(shimPg ? { shim_pg: [shimPg, shimPg2, shimFar].reduce((n, p) => n + grepCount(p.log, / ERROR /), 0) } : {}),
  };
  await stopAll();
  relay?.server.close();

  // ---------- versions, machine ----------
  const pkg = (name) => JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version;
  const gitDirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'Cargo.toml', 'Cargo.lock']) !== '';
  const env = {
    date: new Date().toISOString(),
    dcr_shim: `${sh(SHIM_BIN, ['--version'])} (git ${sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])}${gitDirty ? ', with uncommitted changes in src/ or Cargo.*' : ''})`,
    fastmcp: sh(PYTHON, ['-c', 'import importlib.metadata as m; print(m.version("fastmcp"), "/ mcp", m.version("mcp"), "/ uvicorn", m.version("uvicorn"))']),
    python: sh(PYTHON, ['-c', 'import platform; print(platform.python_version())']),
    oidc_provider: pkg('oidc-provider'),
    mcp_sdk: pkg('@modelcontextprotocol/sdk'),
    node: process.version,
    wrk: sh('wrk', ['-v']).split('\n')[0].replace(/ Copyright.*/, ''),
    nproc: os.availableParallelism(),
    cpu: (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1],
    kernel: os.release(),
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    tmp_fs: sh('findmnt', ['-n', '-o', 'FSTYPE', '--target', TMP]),
    // Anything else running on the machine competes for the same cores.
    loadavg_1m_before: loadBefore[0],
    loadavg_1m_after: os.loadavg()[0],
  };

  const config = {
    logins: LOGINS, warmup_logins: WARMUP_LOGINS, families: FAMILIES, wrk_duration_s: DURATION, wrk_warmup_s: WRK_WARMUP,
    connections: CONNECTIONS, threads: THREADS, registrations_per_minute: REGISTRATIONS_PER_MINUTE, upstream_access_token_ttl_s: ACCESS_TOKEN_TTL,
    smoke: SMOKE,
  };
  const results = {
    env, config, logins, distance, throughput, fastmcp_client_files: fastmcpClientFiles, server_log_errors: serverErrors,
    hello: haveHello, wall_s: (Date.now() - started) / 1000,
  };
  results.targets = checkTargets(results);
  fs.writeFileSync(path.join(HERE, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  const md = markdown(results);
  fs.writeFileSync(path.join(HERE, 'results.md'), md);
  console.log(md);
}

const grepCount = (file, re) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => re.test(l)).length;

function checkTargets({ logins, distance, throughput }) {
  const tp = (target, endpoint) => throughput.find((r) => r.target === target && r.endpoint === endpoint)?.per_second;
  const shimCpu = logins.shim.cpu_ms_per_login['dcr-shim'];
  const rows = [
    ['shim CPU per login ≤ 0.5× the upstream\'s CPU for that login', shimCpu / logins.shim.cpu_ms_per_login['oidc-provider'], 0.5, 'le'],
    ['shim CPU per login ≤ 1/50 of FastMCP\'s', shimCpu / logins.fastmcp.cpu_ms_per_login.fastmcp, 1 / 50, 'le'],
    ['shim complete login p50 ≤ 1.3× direct', logins.shim.steps.login.p50 / logins.direct.steps.login.p50, 1.3, 'le'],
    ['shim registrations/s ≥ 20× FastMCP', tp('dcr-shim', 'registration') / tp('FastMCP', 'registration'), 20, 'ge'],
    ['shim metadata/s ≥ 10× FastMCP', tp('dcr-shim', 'metadata') / tp('FastMCP', 'metadata'), 10, 'ge'],
    ['shim metadata/s ≥ 0.5× hello', tp('dcr-shim', 'metadata') / tp('hello', 'GET /'), 0.5, 'ge'],
    ...(logins.shim_pg ? [
      ['shim on PostgreSQL: complete login p50 ≤ 1.5× direct', logins.shim_pg.steps.login.p50 / logins.direct.steps.login.p50, 1.5, 'le'],
      ['shim on PostgreSQL: registrations/s ≥ 10× FastMCP', tp('dcr-shim-pg', 'registration') / tp('FastMCP', 'registration'), 10, 'ge'],
      ['shim on PostgreSQL, two replicas: complete login p50 ≤ 1.5× direct', logins.shim_pg2.steps.login.p50 / logins.direct.steps.login.p50, 1.5, 'le'],
      ['shim on PostgreSQL, two replicas: registrations/s ≥ 10× FastMCP', tp('dcr-shim-pg ×2', 'registration') / tp('FastMCP', 'registration'), 10, 'ge'],
    ] : []),
    ...(distance ? [
      [`at a distance (IdP +${distance.idp_latency_ms} ms, database +${distance.db_latency_ms} ms each way): shim on PostgreSQL, complete login p50 ≤ 1.5× direct`,
        distance.logins.shim_pg_far.steps.login.p50 / distance.logins.direct.steps.login.p50, 1.5, 'le'],
      [`at a distance: shim on sled, complete login p50 ≤ 1.3× direct`, distance.logins.shim.steps.login.p50 / distance.logins.direct.steps.login.p50, 1.3, 'le'],
    ] : []),
  ];
  return rows.map(([what, value, bound, op]) => ({
    what, value, bound, met: Number.isFinite(value) ? (op === 'le' ? value <= bound : value >= bound) : null,
  }));
}

function markdown(r) {
  const { env, config: c, logins: L } = r;
  const out = [];
  const p = (s = '') => out.push(s);
  p('## Side by side: dcr-shim, FastMCP\'s OIDCProxy and oidc-provider directly (`bash benches/compare/run.sh`)');
  p();
  p(`${env.date.slice(0, 10)}${c.smoke ? ' (**smoke run**: too few samples to mean anything)' : ''}. Machine: ${env.nproc} cores (${env.cpu}), ` +
    `${env.memory_gib} GiB, Linux ${env.kernel}; temp dirs on ${env.tmp_fs}; 1-minute load average ${f2(env.loadavg_1m_before)} before the run, ${f2(env.loadavg_1m_after)} after. Versions: ${env.dcr_shim}; FastMCP ${env.fastmcp} on Python ${env.python}; ` +
    `oidc-provider ${env.oidc_provider} on Node ${env.node}; MCP TypeScript SDK ${env.mcp_sdk} (the client); ${env.wrk}.`);
  p();
  p('Everything on 127.0.0.1, each server its own process, load generator on the same cores: the upstream is ' +
    'oidc-provider set up like the e2e suite\'s (`tests/e2e/lib/idp.mjs`: PKCE, JWT access tokens for `api://mcp-files`, refresh tokens for `offline_access` without `prompt=consent` as Entra does, ' +
    `devInteractions login and consent forms; access tokens live ${c.upstream_access_token_ttl_s} s here), one Node process; ` +
    'dcr-shim `serve --workers 2` (release build, `RUST_LOG=info` to a file, sled store in a temp dir; ' +
    (L.shim_pg ? 'dcr-shim-pg the same binary and tenant with `--store postgres://` on a local PostgreSQL 15 with its defaults (`fsync` and `synchronous_commit` on; the CPU columns do not count PostgreSQL\'s own processes), and dcr-shim-pg2 a second replica on the same database, tenant and server secret, under the same public URL; ' : '') +
    `\`registrations_per_minute = ${c.registrations_per_minute.toLocaleString('en-US')}\` so its rate limit stays out of the way); ` +
    'FastMCP `OIDCProxy` with `transport="http"`, one uvicorn process, its default store (an encrypted file tree, every write ' +
    'fsynced), consent page on (its default); `hello` is an actix server built like dcr-shim whose one route answers "hello" ' +
    `(the ceiling of this machine for an HTTP GET)${r.hello ? '' : ' — **not run: the binary was not built**'}.`);
  p();
  p(`### A complete login, ${c.logins} per target (after ${c.warmup_logins} not counted), ms p50 / p95`);
  p();
  p('The targets take turns, ten logins each, so that none gets a warmer IdP or a quieter machine than another.');
  p();
  p('Each login is what an MCP client does with the SDK\'s helpers (`discoverAuthorizationServerMetadata`, `registerClient`, ' +
    '`startAuthorization`, `exchangeAuthorization`, `refreshAuthorization`) and a fresh scripted browser: the proxy\'s consent ' +
    'page, the IdP\'s login and consent forms, the callback, the redirect to the client\'s loopback URI. Directly: the same ' +
    'against oidc-provider with a client registered there by hand (client_secret_basic: the e2e IdP, like Entra, takes ' +
    'no public clients), no registration, no proxy consent page. The shim and FastMCP reach the IdP with their own ' +
    'client_secret_basic apps.');
  p();
  const pages = (t) => Object.entries(L[t].pages_per_login).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(', ');
  p(`Pages per login (checked on the last one): dcr-shim: ${pages('shim')}; FastMCP: ${pages('fastmcp')}; direct: ${pages('direct')}.`);
  p();
  const pg = !!L.shim_pg;
  if (pg) {
    p('Two replicas: the client registers and redeems its code at the second replica, and its browser and refresh go to the first, ' +
      'so that each step reads what the other replica wrote (no session affinity).');
    p();
  }
  p(`| step | through dcr-shim | through FastMCP | directly at oidc-provider | shim / direct (p50) | shim / FastMCP (p50) |${pg ? ' dcr-shim on PostgreSQL | on PostgreSQL / direct (p50) | two replicas on PostgreSQL | two replicas / direct (p50) |' : ''}`);
  p(`|---|---|---|---|---|---|${pg ? '---|---|---|---|' : ''}`);
  const stepNames = [['metadata', 'metadata'], ['register', 'registration'], ['authorize', 'authorize → consent → IdP login → IdP consent → callback'],
    ['token', 'code exchange'], ['refresh', 'one refresh'], ['login', '**complete login**']];
  for (const [k, label] of stepNames) {
    const cell = (t) => (L[t].steps[k] ? `${f2(L[t].steps[k].p50)} / ${f2(L[t].steps[k].p95)}` : '–');
    const p50 = (t) => L[t].steps[k]?.p50;
    p(`| ${label} | ${cell('shim')} | ${cell('fastmcp')} | ${cell('direct')} | ${ratio(p50('shim'), p50('direct'))} | ${ratio(p50('shim'), p50('fastmcp'))} |${pg ? ` ${cell('shim_pg')} | ${ratio(p50('shim_pg'), p50('direct'))} | ${cell('shim_pg2')} | ${ratio(p50('shim_pg2'), p50('direct'))} |` : ''}`);
  }
  p();
  p(`### CPU per login (ms of each process's own CPU time during the ${c.logins} logins of a column ÷ ${c.logins})`);
  p();
  p(`From \`/proc/<pid>/stat\` (utime + stime, all threads), read before and after each turn of ten logins and added up per column ` +
    `(${CLK_TCK} ticks/s: each turn's figure is rounded to ${1000 / CLK_TCK} ms, about ±${f2(1000 / CLK_TCK / c.logins * Math.sqrt(c.logins / 10))} ms per login in all). ` +
    'A process outside the login\'s path shows what it did meanwhile: idle work, or work left over from its own turn ' +
    '(FastMCP\'s turn comes just before the direct one).');
  p();
  p('| process | through dcr-shim | through FastMCP | directly at oidc-provider |');
  p('|---|---|---|---|');
  for (const proc of ['dcr-shim', 'fastmcp', 'oidc-provider']) {
    p(`| ${proc === 'fastmcp' ? 'FastMCP' : proc} | ${['shim', 'fastmcp', 'direct'].map((t) => f2(L[t].cpu_ms_per_login[proc])).join(' | ')} |`);
  }
  p();
  p(`### Throughput (wrk, ${c.threads} threads, ${c.connections} connections, ${c.wrk_duration_s} s per run${c.wrk_warmup_s ? ` after a ${c.wrk_warmup_s} s warm-up` : ''})`);
  p();
  p('Registration: the same JSON body each time (public client, one loopback redirect URI); only 201s count. Refresh: ' +
    `${c.families} token families per server (one client, ${c.families} logins), each family's current token used by one request at a time, ` +
    'the rotated token put back from the response; only 200s count. Metadata and hello: responses other than 2xx/3xx are not counted. ' +
    'CPU: the process\'s CPU time during the run ÷ the run\'s duration. ' +
    '`dcr-shim-pg ×2`: two wrk runs at once, one per replica, each with half the connections and one thread (and half the families); ' +
    'their requests add up, p50 and p99 are the worse of the two, CPU is both replicas\' together.');
  p();
  p('| server | endpoint | requests/s | p50 ms | p99 ms | not counted | socket errors | server CPU (% of a core) | upstream CPU (% of a core) |');
  p('|---|---|---|---|---|---|---|---|---|');
  for (const t of r.throughput) {
    const own = { 'dcr-shim': ['dcr-shim'], 'dcr-shim minted': ['dcr-shim'], 'dcr-shim-pg': ['dcr-shim-pg'], 'dcr-shim-pg ×2': ['dcr-shim-pg', 'dcr-shim-pg2'], FastMCP: ['fastmcp'], hello: ['hello'] }[t.target];
    const up = t.endpoint === 'refresh' ? f1(t.cpu_percent_of_core['oidc-provider']) : '–';
    const cpu = own.reduce((n, k) => n + t.cpu_percent_of_core[k], 0);
    p(`| ${t.target} | ${t.endpoint} | ${int(t.per_second)} | ${f2(t.p50_ms)} | ${f2(t.p99_ms)} | ${t.not_counted}${t.starved ? ` (${t.starved} starved)` : ''} | ${t.socket_errors} | ${f1(cpu)} | ${up} |`);
  }
  p();
  p(`FastMCP client records on disk after the run: ${r.fastmcp_client_files.toLocaleString('en-US')} ` +
    `(one file per registration, fsynced before the 201). Error lines in the logs: FastMCP ${r.server_log_errors.fastmcp}, dcr-shim ${r.server_log_errors.shim}` +
    `${r.server_log_errors.shim_pg === undefined ? '' : `, dcr-shim on PostgreSQL ${r.server_log_errors.shim_pg}`}.`);
  p();
  p('### Minted tokens next to passthrough (dcr-shim on sled, same process, same IdP)');
  p();
  p('Tenant `minted` is tenant `bench` with `token = "minted"`: the client receives an ES256 JWT the shim signs (RFC 9068) instead of the IdP\'s ' +
    'access token, at the code exchange and at each refresh (which still refreshes at the IdP). Its logins take turns with the others above; ' +
    'its refresh run is a wrk run of its own, like the passthrough one.');
  p();
  const tpRow = (target) => r.throughput.find((t) => t.target === target && t.endpoint === 'refresh');
  const [pt, mt] = [tpRow('dcr-shim'), tpRow('dcr-shim minted')];
  const stepCell = (t, k) => (L[t].steps[k] ? `${f2(L[t].steps[k].p50)} / ${f2(L[t].steps[k].p95)}` : '–');
  p('| | passthrough | minted | minted / passthrough |');
  p('|---|---|---|---|');
  const cpuP = L.shim.cpu_ms_per_login['dcr-shim'];
  const cpuM = L.shim_minted.cpu_ms_per_login['dcr-shim'];
  p(`| dcr-shim CPU per login, ms (a login includes one refresh) | ${f2(cpuP)} | ${f2(cpuM)} | ${ratio(cpuM, cpuP)} |`);
  for (const [k, label] of [['token', 'code exchange, ms p50 / p95'], ['refresh', 'one refresh, ms p50 / p95'], ['login', 'complete login, ms p50 / p95']]) {
    p(`| ${label} | ${stepCell('shim', k)} | ${stepCell('shim_minted', k)} | ${ratio(L.shim_minted.steps[k]?.p50, L.shim.steps[k]?.p50)} |`);
  }
  if (pt && mt) {
    p(`| refreshes/s under wrk | ${int(pt.per_second)} | ${int(mt.per_second)} | ${ratio(mt.per_second, pt.per_second)} |`);
    p(`| refresh under wrk, ms p50 / p99 | ${f2(pt.p50_ms)} / ${f2(pt.p99_ms)} | ${f2(mt.p50_ms)} / ${f2(mt.p99_ms)} | ${ratio(mt.p50_ms, pt.p50_ms)} (p50) |`);
    p(`| dcr-shim CPU during the refresh run, % of a core | ${f1(pt.cpu_percent_of_core['dcr-shim'])} | ${f1(mt.cpu_percent_of_core['dcr-shim'])} | – |`);
  }
  if (r.distance) {
    const D = r.distance.logins;
    const cell = (t, k) => (D[t].steps[k] ? `${f2(D[t].steps[k].p50)} / ${f2(D[t].steps[k].p95)}` : '–');
    p();
    p(`### A complete login at a distance, ${D.direct.n} per target, ms p50 / p95`);
    p();
    p(`The same logins, taking turns the same way, with the IdP answering every request ${r.distance.idp_latency_ms} ms late ` +
      '(the browser\'s requests and the shim\'s own calls alike: a cloud IdP is farther than that from most browsers) and with ' +
      `a third replica on the same PostgreSQL database reaching it through a relay that holds every packet ${r.distance.db_latency_ms} ms ` +
      'each way (a database in another zone of the region, or farther). dcr-shim on sled and the direct login are the processes above.');
    p();
    p('| step | through dcr-shim (sled) | dcr-shim on PostgreSQL, relayed | directly at oidc-provider | sled / direct (p50) | PostgreSQL / direct (p50) |');
    p('|---|---|---|---|---|---|');
    for (const [k, label] of [['metadata', 'metadata'], ['register', 'registration'], ['authorize', 'authorize → consent → IdP login → IdP consent → callback'], ['token', 'code exchange'], ['refresh', 'one refresh'], ['login', '**complete login**']]) {
      p(`| ${label} | ${cell('shim', k)} | ${cell('shim_pg_far', k)} | ${cell('direct', k)} | ${ratio(D.shim.steps[k]?.p50, D.direct.steps[k]?.p50)} | ${ratio(D.shim_pg_far.steps[k]?.p50, D.direct.steps[k]?.p50)} |`);
    }
  }
  p();
  p('### Against the targets');
  p();
  p('| target | measured | met |');
  p('|---|---|---|');
  for (const t of r.targets) {
    const shown = t.bound < 0.1 ? `1/${f1(1 / t.value)}` : `${f2(t.value)}×`;
    p(`| ${t.what} | ${Number.isFinite(t.value) ? shown : '–'} | ${t.met === null ? 'not measured' : t.met ? 'yes' : '**no**'} |`);
  }
  p();
  p(`Whole run: ${Math.round(r.wall_s)} s.`);
  p();
  return out.join('\n');
}

main().catch(async (e) => {
  console.error(`bench failed: ${e.stack || e}`);
  console.error(`logs in ${TMP}`);
  await stopAll();
  process.exitCode = 1;
});
