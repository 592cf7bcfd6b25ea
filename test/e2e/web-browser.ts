/**
 * Debian's Chromium driven by playwright-core for the browser tests: headless, no sandbox (root),
 * nothing fetched from the network, a fresh profile directory, the server's self-signed CA
 * accepted; screenshots go to test-artifacts/web/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO } from './cli-harness.js';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(REPO, 'test-artifacts', 'web');

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** every URL the browser asked for (pages, scripts, styles, API calls, downloads) */
  requests: string[];
  shot(name: string): Promise<void>;
  close(): Promise<void>;
}

export async function openBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'holdfast-chromium-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
  context.setDefaultTimeout(30_000);
  const page = context.pages()[0] ?? (await context.newPage());
  // The app reports failed actions with alert(): show them in the test output.
  page.on('dialog', (d) => {
    console.log(`browser dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('pageerror', (err) => console.log(`browser error: ${err.message}`));
  const requests: string[] = [];
  context.on('request', (r) => requests.push(r.url()));
  return {
    context,
    page,
    requests,
    shot: async (name) => {
      await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    },
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
