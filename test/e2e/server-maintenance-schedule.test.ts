/**
 * Scheduled maintenance with a real server and agent process: the server's own gc schedule
 * frees what a deleted recovery point left behind, and its verify schedule re-hashes the pool,
 * records the result with every point (shown by `points --server`) and raises the damage alert
 * for a flipped byte without anyone asking.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, closeSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { diffSnapshots, scratch, snapshotTree } from './cli-harness.js';
import { writeRandomFile } from './tree-fixtures.js';
import { TestAgent, TestServer, until } from './server-harness.js';

const KiB = 1024;

interface PointJson {
  id: string;
  verified: { time: string; full: boolean; ok: boolean; detail: string } | null;
}
interface TaskJson {
  id: string;
  type: 'gc' | 'verify';
  origin: string;
  state: string;
  started: string;
  result: Record<string, unknown> | null;
}
interface StatusJson {
  running: TaskJson | null;
  recent: TaskJson[];
  schedule: Record<string, { everyMs: number | null; last: string | null; next: string | null }>;
}

function packFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.pack')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

describe('scheduled gc and verify on the server', { timeout: 300_000 }, () => {
  const tmp = scratch('holdfast-msched-');
  let server: TestServer;
  let agent: TestAgent;
  const dir = (n: string): string => join(tmp.dir, n);
  const status = async (): Promise<StatusJson> => {
    const admin = server.admin();
    try {
      return await admin.json<StatusJson>('GET', '/api/v1/maintenance');
    } finally {
      await admin.close();
    }
  };
  /** the first scheduled task of this type that finished after `since` */
  const scheduled = (type: 'gc' | 'verify', since: string, what: string, also: (t: TaskJson) => boolean = () => true): Promise<TaskJson> =>
    until(what, async () => (await status()).recent.find((t) => t.type === type && t.origin === 'schedule' && t.started > since && t.state !== 'running' && also(t)), 60_000, 500);

  before(async () => {
    server = await TestServer.start(dir('server'), ['--prune-every', 'off', '--gc-every', '3s', '--verify-every', '4s']);
    agent = await TestAgent.start(server, 'm1', dir('agent'));
  });

  after(async () => {
    await agent?.kill();
    await server?.kill();
    tmp.cleanup();
  });

  it('frees a deleted point’s chunks on the gc schedule and records scheduled verify results per point', async () => {
    const src = dir('src');
    mkdirSync(src);
    writeRandomFile(join(src, 'stable.bin'), 256 * KiB);
    writeRandomFile(join(src, 'changing.bin'), 512 * KiB);
    await server.cliOk(['group', 'create', 'g', '--sync-every', 'off']);
    await server.cliOk(['source', 'add', '--group', 'g', '--agent', 'm1', 'docs', src]);
    const first = (await server.json<{ point: string }>(['sync', 'docs', '--wait'])).point;
    writeRandomFile(join(src, 'changing.bin'), 512 * KiB);
    const tree = snapshotTree(src, { skipRootMeta: true });
    const second = (await server.json<{ point: string }>(['sync', 'docs', '--wait'])).point;
    const deleting = new Date().toISOString();
    await server.cliOk(['points', 'delete', '--source', 'docs', first]);
    const deletedAt = new Date().toISOString();

    const s = await status();
    assert.equal(s.schedule.gc?.everyMs, 3000);
    assert.equal(s.schedule.verify?.everyMs, 4000);

    // gc leaves packs younger than its clock margin (2 s) to a later run, and the syncs just wrote
    // them: wait for a scheduled gc that found none too young.
    const gc = await scheduled('gc', deletedAt, 'a scheduled gc that found no pack too young', (t) => t.result?.youngPacks === 0);
    assert.equal(gc.state, 'succeeded', JSON.stringify(gc));
    // A scheduled gc that started while the delete was returning may have freed the chunks
    // already: count every run that started after the delete was asked for (one that started
    // before it marked the point and freed none of its chunks).
    const runs = (await status()).recent.filter((t) => t.type === 'gc' && t.origin === 'schedule' && t.started > deleting && t.state === 'succeeded');
    const freed = runs.reduce((n, t) => n + ((t.result?.bytesFreed as number | undefined) ?? 0), 0);
    assert.ok(freed >= 512 * KiB, `the scheduled gcs freed too little: ${JSON.stringify(runs.map((t) => t.result))}`);

    const verify = await scheduled('verify', deletedAt, 'a scheduled verify');
    assert.equal(verify.state, 'succeeded', JSON.stringify(verify));
    assert.equal(verify.result?.ok, true, JSON.stringify(verify.result));
    const pts = await server.json<PointJson[]>(['points', '--source', 'docs']);
    assert.deepEqual(pts.map((p) => p.id), [second]);
    assert.equal(pts[0]?.verified?.ok, true, JSON.stringify(pts[0]));
    assert.ok((pts[0]?.verified?.time ?? '') >= deletedAt, 'the verification is older than the schedule run');

    // The remaining point still restores bit-exact after the scheduled gc.
    const to = dir('restored');
    await server.json(['restore', '--source', 'docs', '--point', second, '--to', to]);
    assert.deepEqual(diffSnapshots(tree, snapshotTree(to, { skipRootMeta: true })), []);
  });

  it('finds a flipped byte on its own schedule: the point is marked damaged and an alert is raised', async () => {
    const pts = await server.json<PointJson[]>(['points', '--source', 'docs']);
    const point = pts[0]?.id as string;
    for (const pack of packFiles(join(server.dir, 'pool', 'packs'))) {
      chmodSync(pack, 0o644);
      const fd = openSync(pack, 'r+');
      const at = Math.floor(statSync(pack).size / 2);
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, at);
      b[0] = (b[0] as number) ^ 0xff;
      writeSync(fd, b, 0, 1, at);
      closeSync(fd);
    }
    const flippedAt = new Date().toISOString();
    // A scheduled verify skips packs it hashed within its interval (4 s here), so the first one after
    // the flip may not look at the pack: wait for one that left no pack out.
    const verify = await scheduled('verify', flippedAt, 'a scheduled verify after the damage that re-hashed every pack', (t) => t.result?.recentPacks === 0);
    assert.equal(verify.result?.ok, false, JSON.stringify(verify.result));
    const after = await server.json<PointJson[]>(['points', '--source', 'docs']);
    assert.equal(after.find((p) => p.id === point)?.verified?.ok, false, JSON.stringify(after));
    const alerts = await server.json<Array<{ kind: string; state: string; message: string }>>(['alerts']);
    const alert = alerts.find((a) => a.kind === 'verify-damage' && a.state === 'active');
    assert.ok(alert, `no verify-damage alert: ${JSON.stringify(alerts)}`);
    assert.match(alert.message, new RegExp(point));
  });
});
