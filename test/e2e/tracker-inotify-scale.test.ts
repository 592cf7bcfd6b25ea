/**
 * The 'inotify' tracker on a 20,000-file tree through a real server and agent: an unchanged tree
 * and a 100-file change sync in a fraction of a full walk's time (the consistency check is the
 * full walk), reading nothing and only the changed files. Prints the figures; with restic
 * installed, also restic's time for the unchanged tree (the target: at most 10% of it).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { diffSnapshots, scratch, snapshotTree } from './cli-harness.js';
import { TestAgent, TestServer } from './server-harness.js';

const FILES = Number(process.env.HOLDFAST_SCALE_FILES ?? 20_000);

interface SyncResult {
  point: string;
  tracker: string;
  readBytes: number;
  durationMs: number;
  warnings: string[];
}

describe('inotify tracker: a 20,000-file tree', { timeout: 900_000 }, () => {
  const tmp = scratch('holdfast-inotify-scale-');
  const src = join(tmp.dir, 'src');
  let server: TestServer;
  let agent: TestAgent;
  const figures: string[] = [];

  const timed = async (args: string[]): Promise<SyncResult & { wallMs: number }> => {
    const t0 = performance.now();
    const r = await server.json<SyncResult>(args);
    return { ...r, wallMs: Math.round(performance.now() - t0) };
  };
  const note = (what: string, r: SyncResult & { wallMs: number }): void => {
    figures.push(`${what}: tracker ${r.tracker}, job ${r.durationMs} ms (CLI round trip ${r.wallMs} ms), read ${r.readBytes} bytes`);
  };
  const change100 = (round: number): number => {
    let bytes = 0;
    for (let i = 0; i < 100; i++) {
      const data = randomBytes(4096);
      writeFileSync(join(src, `d${(i * 7) % 200}`, `f${(i * 37 + round) % 100}`), data);
      bytes += data.length;
    }
    return bytes;
  };

  before(async () => {
    for (let d = 0; d < 200; d++) {
      mkdirSync(join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < FILES / 200; f++) writeFileSync(join(src, `d${d}`, `f${f}`), randomBytes(512 + ((d * 131 + f * 17) % 3584)));
    }
    server = await TestServer.start(join(tmp.dir, 'server'));
    agent = await TestAgent.start(server, 'host', join(tmp.dir, 'agent'));
    await server.cliOk(['group', 'create', 'manual', '--sync-every', 'off']);
    await server.cliOk(['source', 'add', '--group', 'manual', '--agent', 'host', '--kind', 'dir', 'tree', src]);
  });

  after(async () => {
    console.log(figures.join('\n'));
    await agent?.kill();
    await server?.kill();
    tmp.cleanup();
  });

  it('syncs the unchanged tree and a 100-file change in a fraction of a full walk', async () => {
    note('first sync (everything new)', await timed(['sync', 'tree', '--wait']));
    const full = await timed(['sync', 'tree', '--wait', '--consistency-check']);
    note('unchanged, full walk (consistency check)', full);
    assert.equal(full.tracker, 'full');
    const quick = await timed(['sync', 'tree', '--wait']);
    note('unchanged, journal', quick);
    assert.equal(quick.tracker, 'inotify');
    assert.equal(quick.readBytes, 0);
    assert.ok(quick.durationMs * 2 < full.durationMs, `journal ${quick.durationMs} ms vs full walk ${full.durationMs} ms`);

    const changed = change100(1);
    const hundred = await timed(['sync', 'tree', '--wait']);
    note('100 files changed, journal', hundred);
    assert.equal(hundred.tracker, 'inotify');
    assert.ok(hundred.readBytes <= changed, `read ${hundred.readBytes} of ${changed} changed bytes`);
    change100(2);
    note('100 files changed, full walk (consistency check)', await timed(['sync', 'tree', '--wait', '--consistency-check']));

  });

  it('restic, for comparison (skipped without restic)', async (t) => {
    if (spawnSync('restic', ['version']).status !== 0) return t.skip('restic is not installed');
    const repo = join(tmp.dir, 'restic');
    const env = { ...process.env, RESTIC_PASSWORD: 'x', RESTIC_REPOSITORY: repo };
    const run = (args: string[]): number => {
      const t0 = performance.now();
      const r = spawnSync('restic', args, { env, stdio: 'ignore' });
      assert.equal(r.status, 0, `restic ${args.join(' ')}`);
      return Math.round(performance.now() - t0);
    };
    run(['init']);
    figures.push(`restic first backup: ${run(['backup', '-q', src])} ms`);
    figures.push(`restic unchanged: ${run(['backup', '-q', src])} ms`);
    change100(3);
    figures.push(`restic 100 files changed: ${run(['backup', '-q', src])} ms`);
    await Promise.resolve();
  });

  it('the last point restores bit-exact', async () => {
    const last = await timed(['sync', 'tree', '--wait']);
    const to = join(tmp.dir, 'restore-last');
    await server.json(['restore', '--source', 'tree', '--point', last.point, '--to', to]);
    assert.deepEqual(diffSnapshots(snapshotTree(src), snapshotTree(to)), []);
  });
});
