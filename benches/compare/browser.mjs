// The e2e suite's scripted browser (tests/e2e/lib/browser.mjs: cookie jar, manual redirects,
// the shim's consent form, oidc-provider's login and consent forms) taught one more form:
// FastMCP's OAuth-proxy consent page, which posts to itself (action="") with hidden txn_id
// and csrf_token and buttons name="action" value="approve"|"deny".
import { Browser as E2eBrowser } from '../../tests/e2e/lib/browser.mjs';

const isFastmcpConsent = (fields, form) => 'txn_id' in fields && 'csrf_token' in fields && form.buttons.some((b) => b.name === 'action');

export class Browser extends E2eBrowser {
  emptyPageCounts() { return { ...super.emptyPageCounts(), fastmcpConsent: 0 }; }

  fillForm(fields, form, consent) {
    if (isFastmcpConsent(fields, form)) {
      fields.action = consent; this.pages.fastmcpConsent++;
      return true;
    }
    return super.fillForm(fields, form, consent);
  }
}
