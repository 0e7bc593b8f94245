import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodePrincipal } from '../../shared/api/principal';
import { getServices } from '../../shared/useCases/services';
import { demoCallers, demoRecords, seedDemo } from '../../dev/local/demoData';
import { collectErrors, counts, launchBrowser, outputPath, settle } from '../support/browser';
import { startApi, type TestApi } from '../support/http';

/**
 * The explorer as it runs in Azure: App Service Authentication on (WEBSITE_AUTH_ENABLED), local
 * development mode off. The browser's session is what identifies the caller there, so the page must send
 * no principal header of its own; here the test stands in for the platform, adding the header that App
 * Service Authentication derives from the session cookie to each API request on its way to the app.
 */
let api: TestApi;
let browser: Browser | undefined;
let launchError: unknown;
let page: Page | undefined;
const sessionPrincipal = encodePrincipal({ id: demoCallers.walkthrough.id });

/** An API request as the page sent it, before the stand-in for the platform touched it. */
interface Sent {
  url: string;
  principal: string | undefined;
}

beforeAll(async () => {
  api = await startApi({ LOCAL_DEVELOPMENT_MODE: '', WEBSITE_AUTH_ENABLED: 'true' });
  await getServices().ready();
  await seedDemo(getServices());
  browser = await launchBrowser().catch((error: unknown) => {
    launchError = error;
    return undefined;
  });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await api?.close();
});
afterEach(async () => {
  await page?.close();
});

/** Opens the page; `signedIn` decides whether the stand-in for the platform vouches for the caller. */
async function open(signedIn: boolean): Promise<{ page: Page; sent: Sent[]; errors: string[] }> {
  if (!browser) throw launchError;
  const opened = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page = opened;
  const sent: Sent[] = [];
  await opened.route('**/api/**', async (route) => {
    const request = route.request();
    const path = new URL(request.url()).pathname;
    if (path.startsWith('/api/explorer')) return route.continue();
    const headers = { ...request.headers() };
    sent.push({ url: request.url(), principal: headers['x-ms-client-principal'] });
    if (signedIn) headers['x-ms-client-principal'] = sessionPrincipal;
    return route.continue({ headers });
  });
  const errors = collectErrors(opened);
  await opened.goto(`${api.baseUrl}/explorer?record=${demoRecords.contoso.id}`);
  await settle(opened);
  return { page: opened, sent, errors };
}

describe('the connection explorer behind App Service Authentication', () => {
  it('uses the browser session: no caller picker, and no principal header from the page', async () => {
    const { page: opened, sent } = await open(true);
    expect(await opened.getAttribute('html', 'data-mode')).toBe('azure');
    expect(await opened.isHidden('#local-caller')).toBe(true);
    expect(await counts(opened)).toMatchObject({ records: 6, connections: 5 });
    expect(sent.length).toBeGreaterThan(3);
    for (const request of sent) expect(request.principal, request.url).toBeUndefined();
    await opened.screenshot({ path: outputPath('explorer-azure.png'), fullPage: true });
  });

  it('offers to sign in, back to the same page, when the API answers 401', async () => {
    const { page: opened, errors } = await open(false);
    expect(await opened.isVisible('#signin')).toBe(true);
    const link = await opened.getAttribute('#signin-link', 'href');
    expect(link).toBe(
      `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(`/api/explorer?record=${demoRecords.contoso.id}`)}`,
    );
    expect(await opened.textContent('#status')).toContain('Sign in');
    expect(await counts(opened)).toMatchObject({ records: 0, connections: 0 });
    // The browser reports the 401s themselves; nothing else may go wrong.
    expect(errors.filter((error) => !error.includes('401'))).toEqual([]);
  });
});
