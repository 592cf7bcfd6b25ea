/**
 * The console and the portal in a real browser (Debian's Chromium, headless) against a real
 * server and agent: an administrator signs in, sees the dashboard, starts a sync and watches its
 * progress, browses a recovery point and restores a file to another place; an end user finds a
 * file and restores a previous version beside the original. Screenshots: test-artifacts/web/.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch } from './cli-harness.js';
import { writeRandomFile } from './tree-fixtures.js';
import { TestAgent, TestServer } from './server-harness.js';
import { CHROMIUM, openBrowser, type Browser } from './web-browser.js';

describe('web console and portal in Chromium', { timeout: 420_000, skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)` }, () => {
  const tmp = scratch('holdfast-web-');
  const data = join(tmp.dir, 'data');
  let server: TestServer;
  let agent: TestAgent;
  let browser: Browser;
  const PW = 'a long enough password';

  before(async () => {
    mkdirSync(join(data, 'home/alice'), { recursive: true });
    chownSync(join(data, 'home/alice'), 1000, 1000);
    chmodSync(join(data, 'home/alice'), 0o700);
    writeFileSync(join(data, 'home/alice/report.docx'), 'first draft');
    chownSync(join(data, 'home/alice/report.docx'), 1000, 1000);
    mkdirSync(join(data, 'etc'));
    writeFileSync(join(data, 'etc/app.conf'), 'setting = 1\n');
    writeRandomFile(join(data, 'big.bin'), 24 * 1024 * 1024);
    server = await TestServer.start(join(tmp.dir, 'server'));
    agent = await TestAgent.start(server, 'host-a', join(tmp.dir, 'agent'));
    // Throttled, so the sync started from the browser runs long enough to watch.
    await server.cliOk(['group', 'create', 'daily', '--sync-every', 'off', '--throttle', '4MiB/s']);
    await server.cliOk(['source', 'add', '--group', 'daily', '--agent', 'host-a', '--kind', 'dir', 'files', data]);
    await server.cliOk(['sync', 'files', '--wait']);
    writeFileSync(join(data, 'home/alice/report.docx'), 'second draft, much better');
    writeRandomFile(join(data, 'big.bin'), 24 * 1024 * 1024);
    writeFileSync(join(tmp.dir, 'pw'), PW);
    await server.cliOk(['user', 'add', '--role', 'admin', 'boss', '--password-file', join(tmp.dir, 'pw')]);
    await server.cliOk(['user', 'add', 'alice', '--uid', '1000', '--groups', '1000', '--password-file', join(tmp.dir, 'pw')]);
    browser = await openBrowser();
  });

  after(async () => {
    await browser?.close();
    await agent?.kill();
    await server?.kill();
    tmp.cleanup();
  });

  const signIn = async (name: string): Promise<void> => {
    const page = browser.page;
    await page.goto(server.url);
    await page.fill('input[name=name]', name);
    await page.fill('input[name=password]', PW);
    await page.click('button[type=submit]');
  };

  it('an administrator signs in, sees the dashboard, starts a sync and watches its progress', async () => {
    const page = browser.page;
    await signIn('boss');
    await page.waitForSelector('tr[data-source=files]');
    assert.match(await page.textContent('#card-agents') ?? '', /1 of 1 agents online/);
    await browser.shot('1-dashboard');
    await page.click('tr[data-source=files] button');
    await page.waitForSelector('#running-jobs .progress');
    const seen = new Set<string>();
    // The progress text changes as the sync reads and sends.
    for (let i = 0; i < 40 && !(await page.isVisible('#no-jobs')); i++) {
      const t = await page.textContent('#running-jobs').catch(() => null);
      if (t) seen.add(t);
      if (seen.size === 2) await browser.shot('2-sync-progress');
      await page.waitForTimeout(500);
    }
    await page.waitForSelector('#no-jobs', { timeout: 120_000 });
    assert.ok(seen.size >= 2, `progress moved: ${[...seen].join(' | ')}`);
    await page.click('a[href="#/storage"]');
    await page.waitForSelector('#chart-pool svg');
    await browser.shot('3-storage');
  });

  it('an administrator browses a recovery point and restores a file to another place', async () => {
    const page = browser.page;
    await page.goto(`${server.url}/#/sources/files`);
    await page.waitForSelector('#points button[data-point]');
    await browser.shot('4-source');
    await page.click('#points button[data-point]'); // the newest point
    await page.click('#browse a.dir:text("etc")');
    await page.waitForSelector('#browse tr[data-path="etc/app.conf"]');
    await page.check('#browse tr[data-path="etc/app.conf"] input[type=checkbox]');
    await page.check('input[name=where] >> nth=1');
    const to = join(tmp.dir, 'restored-here');
    await page.fill('input[name=restore-target]', to);
    await browser.shot('5-restore-wizard');
    await page.click('#restore-button');
    await page.waitForSelector('#restore-jobs tr[data-state=succeeded]', { timeout: 60_000 });
    await browser.shot('6-restored');
    assert.equal(readFileSync(join(to, 'app.conf'), 'utf8'), 'setting = 1\n');
    await page.click('text=Sign out');
    await page.waitForSelector('input[name=name]');
  });

  it('an end user finds a file and restores a previous version beside the original', async () => {
    const page = browser.page;
    await signIn('alice');
    await page.fill('input[name=q]', 'report');
    await page.click('form.search button');
    await page.waitForSelector('#hits tr[data-path$="report.docx"]');
    assert.equal(await page.isVisible('text=big.bin'), false);
    await browser.shot('7-portal-search');
    await page.click('#hits tr[data-path$="report.docx"] a');
    await page.waitForSelector('#versions tr[data-point]');
    assert.equal(await page.locator('#versions tr[data-point]').count(), 2);
    await browser.shot('8-portal-versions');
    await page.click('#versions tr[data-point] >> nth=1 >> button.restore'); // the older version (newest first)
    await page.waitForSelector('.restore-state.succeeded', { timeout: 60_000 });
    await browser.shot('9-portal-restored');
    const names = readdirSync(join(data, 'home/alice')).sort();
    assert.equal(names.length, 2);
    const restored = names.find((n) => n.startsWith('report (restored '));
    assert.ok(restored, names.join(', '));
    assert.equal(readFileSync(join(data, 'home/alice', restored), 'utf8'), 'first draft');
    assert.equal(readFileSync(join(data, 'home/alice/report.docx'), 'utf8'), 'second draft, much better');
  });
});
