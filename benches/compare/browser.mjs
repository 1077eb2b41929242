// The e2e suite's scripted browser (tests/e2e/lib/browser.mjs: cookie jar, manual redirects,
// the shim's consent form, oidc-provider's login and consent forms) taught one more form:
// FastMCP's OAuth-proxy consent page, which posts to itself (action="") with hidden txn_id
// and csrf_token and buttons name="action" value="approve"|"deny".
import { Browser as E2eBrowser, parseForms } from '../../tests/e2e/lib/browser.mjs';

const isFastmcpConsent = (fields, form) => 'txn_id' in fields && 'csrf_token' in fields && form.buttons.some((b) => b.name === 'action');

export class Browser extends E2eBrowser {
  async navigate(url, { stopAt, consent = 'approve', maxSteps = 25 } = {}) {
    // Same walk as the e2e browser; pages.fastmcpConsent counts FastMCP's page.
    let next = { url: new URL(url), method: 'GET' };
    this.pages = { shimConsent: 0, fastmcpConsent: 0, idpLogin: 0, idpConsent: 0 };
    for (let i = 0; i < maxSteps; i++) {
      if (next.url.href.startsWith(stopAt)) return next.url;
      const res = await this.request(next.url, next);
      if (res.status >= 300 && res.status < 400) {
        await res.arrayBuffer();
        next = { url: new URL(res.headers.get('location'), next.url), method: 'GET' };
        continue;
      }
      const text = await res.text();
      const form = parseForms(text).find((f) => f.method === 'post');
      if (res.status !== 200 || !form) {
        throw new Error(`browser stuck at ${next.url.href} (HTTP ${res.status}): ${text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 600)}`);
      }
      const fields = {};
      for (const inp of form.inputs) if (inp.name) fields[inp.name] = inp.value;
      if ('ticket' in fields && form.buttons.some((b) => b.name === 'decision')) {
        fields.decision = consent; this.pages.shimConsent++;
      } else if (isFastmcpConsent(fields, form)) {
        fields.action = consent; this.pages.fastmcpConsent++;
      } else if (fields.prompt === 'login' || 'login' in fields) {
        fields.login = this.login; fields.password = 'any'; this.pages.idpLogin++;
      } else if (fields.prompt === 'consent') {
        this.pages.idpConsent++;
      } else {
        throw new Error(`browser: unknown form at ${next.url.href}: ${JSON.stringify(form)}`);
      }
      next = { url: new URL(form.action, next.url), method: 'POST', form: fields };
    }
    throw new Error(`browser: too many steps; visits: ${this.visits.slice(-25).join(' | ')}`);
  }
}
