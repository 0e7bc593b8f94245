import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';

/**
 * A real headless Chromium for the browser tests, driven by playwright-core. Playwright's own browser
 * download cannot work here, so it uses an installed Chromium: Debian's `chromium` package (installed by
 * .ci/run), or whatever CHROMIUM_PATH names. Without one the tests fail, saying how to get one.
 */
const candidates = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
];

export function chromiumPath(fromEnv = process.env.CHROMIUM_PATH, places = candidates): string {
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROMIUM_PATH is ${fromEnv}, which does not exist.`);
    return fromEnv;
  }
  const found = places.find((path) => existsSync(path));
  if (!found) {
    throw new Error(
      'No Chromium found for the browser tests (looked for ' +
        places.join(', ') +
        "). Install Debian's: " +
        '`sudo apt-get update && sudo apt-get install -y chromium` (.ci/run does this), or set CHROMIUM_PATH to a Chromium or Chrome binary.',
    );
  }
  return found;
}

export const launchBrowser = (): Promise<Browser> =>
  chromium.launch({ executablePath: chromiumPath(), headless: true });

/** Where screenshots go on every run (git-ignored): test/output/. */
export function outputPath(file: string): string {
  const folder = join(__dirname, '..', 'output');
  mkdirSync(folder, { recursive: true });
  return join(folder, file);
}

/** Console errors and uncaught exceptions of a page; a test expects none. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

/** Waits until the explorer has finished what it was doing (it marks the body, and exposes its queue). */
export async function settle(page: Page): Promise<void> {
  await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
  await page.evaluate('window.explorer.idle()');
  await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
}

export interface Counts {
  records: number;
  connections: number;
  groups: number;
  drawnNodes: number;
  drawnEdges: number;
}

export const counts = (page: Page): Promise<Counts> => page.evaluate<Counts>('window.explorer.counts()');

/** Clicks a drawn node where it is on the screen, as a person would. */
export async function clickNode(page: Page, elementId: string): Promise<void> {
  const point = await page.evaluate<{ x: number; y: number }>(`(() => {
    const node = window.explorer.cy.getElementById(${JSON.stringify(elementId)});
    if (node.empty()) throw new Error('no node ' + ${JSON.stringify(elementId)});
    const position = node.renderedPosition();
    const box = window.explorer.cy.container().getBoundingClientRect();
    return { x: box.left + position.x, y: box.top + position.y };
  })()`);
  await page.mouse.click(point.x, point.y);
}

/** Data of a drawn element (cytoscape's `data()`), or undefined. */
export const elementData = (page: Page, elementId: string): Promise<Record<string, unknown> | undefined> =>
  page.evaluate<Record<string, unknown> | undefined>(
    `(() => { const element = window.explorer.cy.getElementById(${JSON.stringify(elementId)}); return element.empty() ? undefined : { ...element.data(), classes: element.classes() }; })()`,
  );
