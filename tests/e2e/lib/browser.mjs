// A scripted browser: fetch with redirect:'manual', a cookie jar (per host, like a browser:
// ports share cookies), following 30x and submitting the known HTML forms:
//  - the shim's consent form (hidden "ticket", buttons name="decision" approve|deny)
//  - oidc-provider devInteractions login (login/password) and consent forms.

const decode = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  return m ? decode(m[1] ?? m[2] ?? m[3]) : undefined;
};

export function parseForms(html) {
  const forms = [];
  for (const fm of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const open = `<form${fm[1]}>`;
    const inputs = [...fm[2].matchAll(/<input\b[^>]*>/gi)].map((m) => ({ name: attr(m[0], 'name'), value: attr(m[0], 'value') ?? '', type: (attr(m[0], 'type') || 'text').toLowerCase() }));
    const buttons = [...fm[2].matchAll(/<button\b[^>]*>/gi)].map((m) => ({ name: attr(m[0], 'name'), value: attr(m[0], 'value') ?? '' }));
    forms.push({ action: attr(open, 'action') ?? '', method: (attr(open, 'method') || 'get').toLowerCase(), inputs, buttons });
  }
  return forms;
}

export class Browser {
  constructor({ login = 'alice', log = () => {}, followBackLink = false } = {}) {
    this.jar = new Map(); // host -> Map(name|path -> {name,value,path})
    this.login = login;
    this.log = log;
    this.visits = [];
    // A person who reads the shim's "an administrator must approve this application" page and
    // clicks its "Return to the application" link (which carries error=access_denied).
    this.followBackLink = followBackLink;
    this.held = [];
  }

  _store(url, setCookies) {
    const host = url.hostname;
    if (!this.jar.has(host)) this.jar.set(host, new Map());
    const jar = this.jar.get(host);
    for (const sc of setCookies) {
      const [nv, ...attrs] = sc.split(';').map((s) => s.trim());
      const eq = nv.indexOf('=');
      const name = nv.slice(0, eq); const value = nv.slice(eq + 1);
      let path = '/'; let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.toLowerCase();
        if (key === 'path') path = v || '/';
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) < Date.now()) expired = true;
      }
      const id = `${name}|${path}`;
      if (expired) jar.delete(id); else jar.set(id, { name, value, path });
    }
  }

  cookieHeader(url) {
    const jar = this.jar.get(url.hostname);
    if (!jar) return undefined;
    const list = [...jar.values()].filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/')
      .sort((a, b) => b.path.length - a.path.length);
    return list.length ? list.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }

  async request(url, { method = 'GET', form } = {}) {
    url = new URL(url);
    const headers = { accept: 'text/html,application/json' };
    const cookie = this.cookieHeader(url);
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) { body = new URLSearchParams(form).toString(); headers['content-type'] = 'application/x-www-form-urlencoded'; }
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    this._store(url, res.headers.getSetCookie());
    this.visits.push(`${method} ${url.origin}${url.pathname} -> ${res.status}`);
    this.log(`browser: ${method} ${url.href.slice(0, 160)} -> ${res.status}`);
    return res;
  }

  emptyPageCounts() { return { shimConsent: 0, idpLogin: 0, idpConsent: 0 }; }

  /** Fills in a form it knows (counting it in this.pages); false for an unknown form. */
  fillForm(fields, form, consent) {
    if ('ticket' in fields && form.buttons.some((b) => b.name === 'decision')) {
      fields.decision = consent; this.pages.shimConsent++;
    } else if (fields.prompt === 'login' || 'login' in fields) {
      fields.login = this.login; fields.password = 'any'; this.pages.idpLogin++;
    } else if (fields.prompt === 'consent') {
      this.pages.idpConsent++;
    } else {
      return false;
    }
    return true;
  }

  /**
   * Start at `url`, go until a redirect to `stopAt` (a URL prefix). Returns the final URL.
   * consent: 'approve' | 'deny' for the shim's consent page.
   * Throws with the page text if it gets stuck (an error page).
   */
  async navigate(url, { stopAt, consent = 'approve', maxSteps = 25 } = {}) {
    let next = { url: new URL(url), method: 'GET' };
    this.pages = this.emptyPageCounts();
    for (let i = 0; i < maxSteps; i++) {
      if (next.url.href.startsWith(stopAt)) return next.url;
      const res = await this.request(next.url, next);
      if (res.status >= 300 && res.status < 400) {
        const loc = new URL(res.headers.get('location'), next.url);
        await res.arrayBuffer();
        next = { url: loc, method: 'GET' };
        continue;
      }
      const text = await res.text();
      const back = this.followBackLink && res.status === 403
        && text.match(/<a href="([^"]+)">Return to the application<\/a>/);
      if (back) {
        this.held.push(text);
        next = { url: new URL(decode(back[1]), next.url), method: 'GET' };
        continue;
      }
      const forms = parseForms(text);
      const form = forms.find((f) => f.method === 'post');
      if (res.status !== 200 || !form) {
        const err = new Error(`browser stuck at ${next.url.href} (HTTP ${res.status}): ${text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 600)}`);
        err.status = res.status; err.page = text; err.url = next.url.href;
        throw err;
      }
      const fields = {};
      for (const inp of form.inputs) if (inp.name) fields[inp.name] = inp.value;
      if (!this.fillForm(fields, form, consent)) {
        throw new Error(`browser: unknown form at ${next.url.href}: ${JSON.stringify(form)}`);
      }
      next = { url: new URL(form.action, next.url), method: 'POST', form: fields };
    }
    throw new Error(`browser: too many steps; visits: ${this.visits.slice(-25).join(' | ')}`);
  }
}
