/**
 * The console and the portal in a real browser (Debian's Chromium, headless) against a real
 * server and agent: an administrator signs in, sees the dashboard (a source's status, RPO and
 * last good point), starts a sync and watches its progress, browses a recovery point, restores
 * several items to another place and changed files to their original location, downloads what
 * is chosen, sees a failed job's alert on the dashboard and the jobs page, creates and edits a
 * group, adds a btrfs source on the agent and browses its point, edits a source, and reads the
 * storage charts; an end user finds a file and restores a previous version beside the original.
 * Nothing is loaded from another origin. Screenshots: test-artifacts/web/.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch, sh } from './cli-harness.js';
import { writeRandomFile } from './tree-fixtures.js';
import { LoopBtrfs } from './btrfs-fixtures.js';
import { TestAgent, TestServer, type JobJson } from './server-harness.js';
import { CHROMIUM, openBrowser, type Browser } from './web-browser.js';

interface SourceJson {
  name: string;
  group: string;
  agent: string;
  kind: string;
  path: string;
  options: Record<string, unknown>;
}

describe('web console and portal in Chromium', { timeout: 420_000, skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)` }, () => {
  const tmp = scratch('holdfast-web-');
  const data = join(tmp.dir, 'data');
  const btrfs = new LoopBtrfs(tmp.dir);
  let volume = '';
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
    writeFileSync(join(data, 'etc/other.conf'), 'other = 1\n');
    writeRandomFile(join(data, 'big.bin'), 24 * 1024 * 1024);
    btrfs.setup(256);
    volume = btrfs.subvolume('vol');
    mkdirSync(join(volume, 'notes'));
    writeFileSync(join(volume, 'notes/monday.txt'), 'on a btrfs subvolume\n');
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
    btrfs.teardown();
    tmp.cleanup();
  });

  const signIn = async (name: string): Promise<void> => {
    const page = browser.page;
    await page.goto(server.url);
    await page.fill('input[name=name]', name);
    await page.fill('input[name=password]', PW);
    await page.click('button[type=submit]');
  };

  /** The newest point of a source, opened in the restore wizard. */
  const openNewestPoint = async (source: string): Promise<void> => {
    const page = browser.page;
    await page.goto(`${server.url}/#/sources/${source}`);
    await page.click('#points button[data-point] >> nth=0'); // newest first
    await page.waitForSelector('#browse tbody tr');
  };

  /** Ticks an entry in the wizard, going down from the point's root to its directory. */
  const choose = async (path: string): Promise<void> => {
    const page = browser.page;
    await page.click('.crumbs a >> nth=0');
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) await page.click(`#browse tr[data-path="${parts.slice(0, i).join('/')}"] a.dir`);
    await page.check(`#browse tr[data-path="${path}"] input[type=checkbox]`);
  };

  it('an administrator signs in, sees the dashboard (status, RPO, last good point), starts a sync and watches its progress', async () => {
    const page = browser.page;
    await signIn('boss');
    await page.waitForSelector('tr[data-source=files]');
    assert.match(await page.textContent('#card-agents') ?? '', /1 of 1 agents online/);
    assert.match(await page.textContent('#card-rpo') ?? '', /1 of 1 sources meet their RPO/);
    const row = 'tr[data-source=files]';
    assert.equal(await page.textContent(`${row} td.status`), 'ok');
    assert.equal(await page.textContent(`${row} td.rpo`), '✔ met');
    assert.match(await page.textContent(`${row} td.last-point`) ?? '', /^\d+ (s|min) ago$/);
    const [source] = await server.json<Array<{ latestPoint: { time: string } }>>(['source', 'list']);
    assert.equal(await page.getAttribute(`${row} td.last-point`, 'data-time'), source?.latestPoint.time);
    assert.match(await page.getAttribute(`${row} td.last-point`, 'title') ?? '', /\d\d:\d\d:\d\d/, 'its time in full on hover');
    await browser.shot('1-dashboard');
    await page.click(`${row} button`);
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
  });

  it('an administrator restores several items to another place in one job; into a non-empty place it fails without overwriting', async () => {
    const page = browser.page;
    await openNewestPoint('files');
    await browser.shot('4-source');
    await choose('etc/app.conf');
    await choose('home/alice/report.docx');
    assert.match(await page.textContent('.restore-options') ?? '', /Chosen: etc\/app.conf, home\/alice\/report.docx/);
    await page.check('input[name=where][value=other]');
    const to = join(tmp.dir, 'restored-here');
    await page.fill('input[name=restore-target]', to);
    await browser.shot('5-restore-wizard');
    await page.click('#restore-button');
    await page.waitForSelector('#restore-jobs tr[data-state=succeeded]', { timeout: 60_000 });
    await browser.shot('6-restored');
    assert.equal(await page.locator('#restore-jobs tr').count(), 1, 'one job for both');
    assert.deepEqual(readdirSync(to).sort(), ['app.conf', 'report.docx']);
    assert.equal(readFileSync(join(to, 'app.conf'), 'utf8'), 'setting = 1\n');
    assert.equal(readFileSync(join(to, 'report.docx'), 'utf8'), 'second draft, much better');
    // Again, into what is now not empty, without "into a non-empty directory": refused whole.
    writeFileSync(join(to, 'app.conf'), 'edited in the copy\n');
    await page.click('#restore-button');
    await page.waitForSelector('#restore-jobs tr[data-state=failed]', { timeout: 60_000 });
    assert.match(await page.textContent('#restore-jobs tr[data-state=failed]') ?? '', /is not empty/);
    assert.equal(readFileSync(join(to, 'app.conf'), 'utf8'), 'edited in the copy\n');
  });

  it("the dashboard shows the failed restore's active alert; the jobs page shows the sync and the alert", async () => {
    const page = browser.page;
    await page.click('a[href="#/dashboard"]');
    await page.waitForSelector('#active-alerts li[data-kind=job-failed]');
    assert.match(await page.textContent('#card-alerts') ?? '', /[1-9]\d* active alerts/);
    assert.match(await page.getAttribute('#card-alerts', 'class') ?? '', /\bwarn\b/);
    assert.match(await page.textContent('#active-alerts li[data-kind=job-failed]') ?? '', /critical.*restore of source 'files' failed: .*is not empty/);
    await browser.shot('7-dashboard-alert');
    const jobs = await server.json<Array<JobJson & { params: Record<string, unknown> }>>(['jobs', '--source', 'files']);
    const sync = jobs.find((j) => j.type === 'sync' && j.origin === 'manual' && j.state === 'succeeded' && j.result?.point);
    assert.ok(sync, JSON.stringify(jobs));
    await page.click('a[href="#/jobs"]');
    const row = `#jobs tr[data-job="${sync.id}"]`;
    await page.waitForSelector(row);
    const text = await page.textContent(row) ?? '';
    assert.match(text, /sync/);
    assert.match(text, /succeeded/);
    assert.ok(text.includes(`point ${String(sync.result?.point)}`), text);
    assert.match(await page.textContent('#jobs') ?? '', /failed/);
    assert.match(await page.textContent('#alerts tr[data-kind=job-failed]') ?? '', /critical.*files.*active/);
    await browser.shot('8-jobs');
  });

  it('an administrator downloads the chosen items as one tar, and puts changed files back in their original location', async () => {
    const page = browser.page;
    writeFileSync(join(data, 'etc/app.conf'), 'setting = 2, changed after the sync\n');
    unlinkSync(join(data, 'etc/other.conf'));
    writeFileSync(join(data, 'etc/new.conf'), 'made after the sync\n');
    writeFileSync(join(data, 'home/alice/report.docx'), 'scribbled over');
    await openNewestPoint('files');
    for (const p of ['etc/app.conf', 'etc/other.conf', 'home/alice/report.docx']) await choose(p);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-chosen')]);
    assert.match(download.suggestedFilename(), /^files-[0-9a-f]+\.tar$/);
    const tar = join(tmp.dir, 'chosen.tar');
    await download.saveAs(tar);
    assert.deepEqual(sh('tar', ['-tf', tar]).trim().split('\n'), ['app.conf', 'other.conf', 'report.docx']);
    assert.ok(await page.isChecked('input[name=where][value=original]'), 'original location is the default');
    await page.click('#restore-button');
    // one job per parent directory: etc (two items) and home/alice
    await page.waitForFunction(() => document.querySelectorAll('#restore-jobs tr[data-state=succeeded]').length === 2, undefined, { timeout: 60_000 });
    await browser.shot('9-restored-original');
    assert.equal(await page.locator('#restore-jobs tr').count(), 2);
    assert.equal(readFileSync(join(data, 'etc/app.conf'), 'utf8'), 'setting = 1\n');
    assert.equal(readFileSync(join(data, 'etc/other.conf'), 'utf8'), 'other = 1\n');
    assert.equal(readFileSync(join(data, 'etc/new.conf'), 'utf8'), 'made after the sync\n', 'what the point does not hold stays');
    assert.equal(readFileSync(join(data, 'home/alice/report.docx'), 'utf8'), 'second draft, much better');
  });

  it('an administrator creates and edits a group, adds a btrfs source on the agent and browses its point, and edits a source', async () => {
    const page = browser.page;
    await page.click('a[href="#/groups"]');
    await page.fill('#new-group input[name=group-name]', 'weekly');
    await page.fill('#new-group input[name=sync-every]', '1d');
    await page.fill('#new-group input[name=retain]', '30d');
    await page.click('#new-group button[type=submit]');
    await page.click('#groups tr[data-group=weekly] button');
    await page.fill('#edit-weekly input[name=retain]', '60d');
    await page.fill('#edit-weekly input[name=points]', '20:00');
    await page.click('#edit-weekly button[type=submit]');
    await page.waitForSelector('#groups tr[data-group=weekly]:has-text("60d")'); // once reloaded
    assert.match(await page.textContent('#groups tr[data-group=weekly]') ?? '', /1d20:0060d/);
    const groups = await server.json<Array<{ name: string; syncEveryMs: number | null; retainMs: number; points: string[] }>>(['group', 'list']);
    assert.deepEqual(groups.find((g) => g.name === 'weekly'), { ...groups.find((g) => g.name === 'weekly'), syncEveryMs: 86_400_000, retainMs: 60 * 86_400_000, points: ['20:00'] });

    const kinds = await page.locator('#new-source select[name=kind] option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    assert.deepEqual(kinds, ['dir', 'image', 'btrfs', 'postgres', 'sqlite']);
    await page.fill('#new-source input[name=source-name]', 'vol');
    await page.selectOption('#new-source select[name=group]', 'weekly');
    await page.selectOption('#new-source select[name=agent]', 'host-a');
    await page.selectOption('#new-source select[name=kind]', 'btrfs');
    await page.fill('#new-source input[name=path]', volume);
    await browser.shot('10-add-source');
    await page.click('#new-source button[type=submit]');
    await page.waitForSelector('#source-list tr[data-source=vol]');
    const added = (await server.json<SourceJson[]>(['source', 'list'])).find((s) => s.name === 'vol');
    assert.deepEqual([added?.group, added?.agent, added?.kind, added?.path], ['weekly', 'host-a', 'btrfs', volume]);

    // The group syncs daily, so the scheduler syncs the new source at once; its point is a tree.
    await page.goto(`${server.url}/#/sources/vol`);
    await page.waitForSelector('#points button[data-point]', { timeout: 60_000 });
    await page.click('#points button[data-point]');
    await page.click('#browse a.dir:text("notes")');
    await page.waitForSelector('#browse tr[data-path="notes/monday.txt"]');
    assert.equal(await page.isEnabled('input[name=where][value=original]'), true);
    await browser.shot('11-btrfs-point');

    await page.click('a[href="#/groups"]');
    await page.click('#source-list tr[data-source=vol] button');
    await page.selectOption('#edit-source-vol select[name=group]', 'daily');
    await page.selectOption('#edit-source-vol select[name=tracker]', 'full');
    await page.fill('#edit-source-vol input[name=snapshot-dir]', join(btrfs.mount, 'snaps'));
    await browser.shot('12-edit-source');
    await page.click('#edit-source-vol button[type=submit]');
    // Once the list has reloaded: until then the row shows the old group.
    await page.waitForFunction(() => document.querySelector('#source-list tr[data-source=vol]')?.textContent?.startsWith('voldaily') === true, undefined, { timeout: 15_000 }).catch(() => undefined);
    assert.match(await page.textContent('#source-list tr[data-source=vol]') ?? '', /^voldailyhost-abtrfs/);
    const edited = (await server.json<SourceJson[]>(['source', 'list'])).find((s) => s.name === 'vol');
    assert.deepEqual([edited?.group, edited?.kind, edited?.path, edited?.options.tracker, edited?.options.snapshotDir], ['daily', 'btrfs', volume, 'full', join(btrfs.mount, 'snaps')]);
  });

  it('the storage page charts the pool over time and each protection group', async () => {
    const page = browser.page;
    await page.click('a[href="#/storage"]');
    await page.waitForSelector('#chart-pool svg polyline');
    assert.match(await page.textContent('#stored-bytes') ?? '', /\d (B|KiB|MiB|GiB)$/);
    // per group over time: a line and a legend each; per group now: two bars each
    const legend = await page.textContent('#chart-groups-time svg') ?? '';
    for (const g of ['daily', 'weekly']) assert.ok(legend.includes(`■ ${g}`), legend);
    assert.equal(await page.locator('#chart-groups-time svg polyline').count(), 2);
    const bars = await page.textContent('#chart-groups svg') ?? '';
    assert.match(bars, /daily \(2 src, \d+ pts\)/);
    assert.match(bars, /weekly \(0 src, 0 pts\)/);
    assert.equal(await page.locator('#chart-groups svg rect').count(), 4);
    await browser.shot('3-storage');
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
    await browser.shot('13-portal-search');
    await page.click('#hits tr[data-path$="report.docx"] a');
    await page.waitForSelector('#versions tr[data-point]');
    assert.equal(await page.locator('#versions tr[data-point]').count(), 2);
    await browser.shot('14-portal-versions');
    await page.click('#versions tr[data-point] >> nth=1 >> button.restore'); // the older version (newest first)
    await page.waitForSelector('.restore-state.succeeded', { timeout: 60_000 });
    await browser.shot('15-portal-restored');
    const names = readdirSync(join(data, 'home/alice')).sort();
    assert.equal(names.length, 2);
    const restored = names.find((n) => n.startsWith('report (restored '));
    assert.ok(restored, names.join(', '));
    assert.equal(readFileSync(join(data, 'home/alice', restored), 'utf8'), 'first draft');
    assert.equal(readFileSync(join(data, 'home/alice/report.docx'), 'utf8'), 'second draft, much better');
  });

  it('loaded nothing from another origin', () => {
    const elsewhere = browser.requests.filter((u) => !u.startsWith(`${server.url}/`) && !u.startsWith('data:') && !u.startsWith('blob:'));
    assert.deepEqual(elsewhere, []);
    assert.ok(browser.requests.length > 20, `${browser.requests.length} requests seen`);
  });
});
