/**
 * Storage maintenance through the protection server, with a real server and agent process:
 * scheduled prune by group rules (pinned points stay), points deleted and pinned through the
 * API, gc while a sync runs (every remaining point then restores bit-exact), verify finding a
 * flipped byte with its alert and the heal by the next sync, and storage usage per group and
 * source with quota alerts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, closeSync, copyFileSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { diffSnapshots, scratch, snapshotTree, type NodeSnapshot } from './cli-harness.js';
import { writeRandomFile } from './tree-fixtures.js';
import { TestAgent, TestServer, until, type JobJson } from './server-harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface PointJson {
  id: string;
  time: string;
}
interface AlertJson {
  key: string;
  kind: string;
  severity: string;
  object: string;
  state: string;
  message: string;
}
interface SourceUse {
  source: string;
  group: string | null;
  latestLogicalBytes: number;
  uniqueBytes: number;
  sharedBytes: number;
  storedBytes: number;
  quotaBytes: number | null;
  quotaFrom: string | null;
}
interface GroupUse {
  group: string;
  uniqueBytes: number;
  sharedBytes: number;
  storedBytes: number;
  quotaBytes: number;
}
interface UsageJson {
  pool: { capacityBytes: number; freeBytes: number; storedBytes: number; referencedBytes: number; unreferencedBytes: number };
  groups: GroupUse[];
  sources: SourceUse[];
}

/** The newest file under a directory (the pack the last sync sealed). */
function newestFile(dir: string): string {
  let best: { path: string; mtime: number } | undefined;
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (!best || st.mtimeMs > best.mtime) best = { path: p, mtime: st.mtimeMs };
    }
  };
  walk(dir);
  assert.ok(best, `no file under ${dir}`);
  return best.path;
}

describe('storage maintenance through the server', { timeout: 600_000 }, () => {
  const tmp = scratch('holdfast-maint-');
  let server: TestServer;
  let agent: TestAgent;
  const dir = (n: string): string => join(tmp.dir, n);
  /** what each point must restore to */
  const expected = new Map<string, { source: string; tree: Map<string, NodeSnapshot> }>();

  const sync = async (source: string): Promise<string> => {
    const r = await server.json<{ point: string }>(['sync', source, '--wait']);
    return r.point;
  };
  const points = async (source: string): Promise<string[]> => (await server.json<PointJson[]>(['points', '--source', source])).map((p) => p.id);
  const activeAlerts = async (): Promise<AlertJson[]> => (await server.json<AlertJson[]>(['alerts'])).filter((a) => a.state === 'active');
  const restoresExactly = async (id: string): Promise<void> => {
    const e = expected.get(id);
    assert.ok(e, `no snapshot for point ${id}`);
    const to = dir(`restore-${id}`);
    await server.json(['restore', '--source', e.source, '--point', id, '--to', to]);
    assert.deepEqual(diffSnapshots(e.tree, snapshotTree(to, { skipRootMeta: true })), [], `point ${id} of ${e.source}`);
  };

  before(async () => {
    server = await TestServer.start(dir('server'), ['--prune-every', '2s', '--gc-every', 'off', '--verify-every', 'off', '--usage-every', '2s']);
    agent = await TestAgent.start(server, 'm1', dir('agent'));
  });

  after(async () => {
    await agent?.kill();
    await server?.kill();
    tmp.cleanup();
  });

  it('prunes by the group rules on schedule; pinned points stay; points are deleted and pinned through the API', async () => {
    mkdirSync(dir('keep'));
    writeRandomFile(join(dir('keep'), 'stable.bin'), 300 * KiB);
    await server.cliOk(['group', 'create', 'g-keep', '--sync-every', 'off', '--retain', '1h']);
    await server.cliOk(['source', 'add', '--group', 'g-keep', '--agent', 'm1', 'keep', dir('keep')]);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      // new content each time: pruned points leave garbage for gc
      writeRandomFile(join(dir('keep'), 'changing.bin'), 400 * KiB);
      const tree = snapshotTree(dir('keep'), { skipRootMeta: true });
      const id = await sync('keep');
      expected.set(id, { source: 'keep', tree });
      ids.push(id);
    }
    const [p0, p1, p2, p3, p4] = ids as [string, string, string, string, string];
    assert.equal((await server.json<{ pinned: boolean }>(['points', 'pin', '--source', 'keep', p1])).pinned, true);
    assert.equal((await server.json<{ deleted: string }>(['points', 'delete', '--source', 'keep', p2])).deleted, p2);
    assert.deepEqual(await points('keep'), [p0, p1, p3, p4]);
    const refused = await server.cli(['points', 'delete', '--source', 'keep', p1]);
    assert.notEqual(refused.code, 0, 'a pinned point must not be deleted');
    assert.match(refused.stderr, /pinned/);

    // Within the 1 h retention range nothing goes.
    const dry = await server.json<{ dryRun: boolean; removed: number }>(['prune', '--group', 'g-keep', '--dry-run']);
    assert.deepEqual([dry.dryRun, dry.removed], [true, 0]);

    // Tighter rules: the scheduled prune (every 2 s) keeps the newest two and the pinned one.
    const g = await server.json<{ keep: Record<string, number>; retainMs: number }>(['group', 'edit', 'g-keep', '--retain', '1s', '--keep-last', '2']);
    assert.deepEqual([g.keep, g.retainMs], [{ last: 2 }, 1000]);
    await until('the scheduled prune', async () => (await points('keep')).length === 3, 20_000, 500);
    assert.deepEqual(await points('keep'), [p1, p3, p4]);
    const again = await server.json<{ removed: number; kept: number }>(['prune']);
    assert.deepEqual([again.removed, again.kept], [0, 3]);
  });

  it('runs gc through the server while a sync runs; every remaining point restores bit-exact', async (t) => {
    mkdirSync(dir('big'));
    writeRandomFile(join(dir('big'), 'big.bin'), 12 * MiB);
    const tree = snapshotTree(dir('big'), { skipRootMeta: true });
    await server.cliOk(['group', 'create', 'g-slow', '--sync-every', 'off', '--throttle', '2MiB/s']);
    await server.cliOk(['source', 'add', '--group', 'g-slow', '--agent', 'm1', 'big', dir('big')]);
    const job = await server.json<JobJson>(['sync', 'big']);
    const admin = server.admin();
    await until('the sync to be sending', async () => ((await admin.json<JobJson>('GET', `/api/v1/jobs/${job.id}`)).progress?.sentBytes ?? 0) > MiB, 60_000, 100);
    const gc = await server.json<{ dryRun: boolean; condemnedChunks: number; packsDeleted: number; bytesFreed: number; liveLeases: number }>(['gc']);
    const during = await admin.json<JobJson>('GET', `/api/v1/jobs/${job.id}`);
    assert.equal(gc.dryRun, false);
    assert.ok(gc.condemnedChunks > 0, `gc condemned nothing: ${JSON.stringify(gc)}`);
    assert.ok(gc.bytesFreed > 0, `gc freed nothing: ${JSON.stringify(gc)}`);
    // The sync's write session held a lease while gc condemned: gc ran beside it.
    assert.ok(gc.liveLeases >= 1, `gc saw no running sync: ${JSON.stringify(gc)}, job ${during.state}`);
    t.diagnostic(`gc beside a sync: ${JSON.stringify(gc)}`);
    const done = await until('the sync to finish', async () => {
      const j = await admin.json<JobJson>('GET', `/api/v1/jobs/${job.id}`);
      return j.state === 'succeeded' || j.state === 'failed' ? j : undefined;
    }, 120_000, 300);
    await admin.close();
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    expected.set(done.result?.point as string, { source: 'big', tree });
    const dry = await server.json<{ dryRun: boolean }>(['gc', '--dry-run']);
    assert.equal(dry.dryRun, true);
    for (const source of ['keep', 'big']) for (const id of await points(source)) await restoresExactly(id);
  });

  it('verify through the server finds a flipped byte and alerts; the next sync heals it', async () => {
    mkdirSync(dir('vsrc'));
    writeRandomFile(join(dir('vsrc'), 'data.bin'), MiB);
    const tree = snapshotTree(dir('vsrc'), { skipRootMeta: true });
    await server.cliOk(['group', 'create', 'g-verify', '--sync-every', 'off']);
    await server.cliOk(['source', 'add', '--group', 'g-verify', '--agent', 'm1', 'vsrc', dir('vsrc')]);
    const first = await sync('vsrc');
    expected.set(first, { source: 'vsrc', tree });
    const pack = newestFile(join(server.dir, 'pool', 'packs'));
    chmodSync(pack, 0o644);
    const fd = openSync(pack, 'r+');
    const size = statSync(pack).size;
    const at = Math.floor(size / 3);
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = (b[0] as number) ^ 0xff;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);

    const r = await server.cli(['verify', '--full', '--json']);
    assert.equal(r.code, 4, r.stderr);
    const report = JSON.parse(r.stdout) as { ok: boolean; damagedPoints: Array<{ point: string; files: string[] }> };
    assert.equal(report.ok, false);
    const hit = report.damagedPoints.find((p) => p.point === first);
    assert.ok(hit, `verify did not name point ${first}: ${r.stdout}`);
    assert.ok(hit.files.some((f) => f.endsWith('data.bin')), JSON.stringify(hit));
    const alert = (await activeAlerts()).find((a) => a.kind === 'verify-damage');
    assert.ok(alert, 'no verify-damage alert');
    assert.equal(alert.severity, 'critical');
    assert.match(alert.message, new RegExp(first));
    assert.match(alert.message, /data\.bin/);

    const healed = await sync('vsrc');
    expected.set(healed, { source: 'vsrc', tree });
    await until('the damage alert to resolve', async () => !(await activeAlerts()).some((a) => a.kind === 'verify-damage'), 30_000, 500);
    const full = await server.json<{ ok: boolean }>(['verify', '--full']);
    assert.equal(full.ok, true);
    await restoresExactly(first);
    await restoresExactly(healed);
  });

  it('reports usage per group and source consistently, and warns at 90% of a quota', async (t) => {
    for (const n of ['sa', 'sb', 'sc']) mkdirSync(dir(n));
    writeRandomFile(join(dir('sa'), 'common.bin'), 512 * KiB);
    copyFileSync(join(dir('sa'), 'common.bin'), join(dir('sb'), 'common.bin'));
    writeRandomFile(join(dir('sa'), 'a-only.bin'), 256 * KiB);
    writeRandomFile(join(dir('sb'), 'b-only.bin'), 384 * KiB);
    writeRandomFile(join(dir('sc'), 'c.bin'), 256 * KiB);
    await server.cliOk(['group', 'create', 'g-share', '--sync-every', 'off', '--quota', '64KiB']);
    await server.cliOk(['group', 'create', 'g-other', '--sync-every', 'off', '--quota-factor', '2']);
    await server.cliOk(['source', 'add', '--group', 'g-share', '--agent', 'm1', 'sa', dir('sa')]);
    await server.cliOk(['source', 'add', '--group', 'g-share', '--agent', 'm1', 'sb', dir('sb')]);
    await server.cliOk(['source', 'add', '--group', 'g-other', '--agent', 'm1', 'sc', dir('sc')]);
    for (const s of ['sa', 'sb', 'sc']) await sync(s);

    // The scheduled storage check (every 2 s) raises the quota warnings by itself.
    const quota = await until('quota alerts', async () => {
      const a = (await activeAlerts()).filter((x) => x.kind === 'quota');
      return a.length >= 2 ? a : undefined;
    }, 30_000, 500);
    assert.deepEqual(quota.map((a) => a.object).sort(), ['sa', 'sb']);
    assert.ok(quota.every((a) => a.severity === 'warning'));

    const u = await server.json<UsageJson>(['usage']);
    t.diagnostic(`usage: ${JSON.stringify({ pool: u.pool, groups: u.groups.filter((g) => g.group.startsWith('g-s') || g.group === 'g-other') })}`);
    const src = (n: string): SourceUse => u.sources.find((s) => s.source === n) as SourceUse;
    const grp = (n: string): GroupUse => u.groups.find((g) => g.group === n) as GroupUse;
    const [sa, sb, sc] = [src('sa'), src('sb'), src('sc')];
    for (const s of u.sources) assert.equal(s.storedBytes, s.uniqueBytes + s.sharedBytes, s.source);
    assert.ok(sa.sharedBytes >= 512 * KiB && sa.sharedBytes < 600 * KiB, `shared ${sa.sharedBytes}`);
    assert.equal(sa.sharedBytes, sb.sharedBytes);
    assert.ok(sa.uniqueBytes >= 256 * KiB && sb.uniqueBytes >= 384 * KiB);
    assert.equal(sc.sharedBytes, 0);
    // The two sharing sources are in one group: what they share is unique to the group.
    assert.deepEqual([grp('g-share').uniqueBytes, grp('g-share').sharedBytes], [sa.uniqueBytes + sb.uniqueBytes + sa.sharedBytes, 0]);
    assert.equal(grp('g-other').uniqueBytes, sc.uniqueBytes);
    // No chunk is shared across groups here, so the groups' unique bytes add up to what is referenced.
    assert.equal(u.groups.reduce((n, g) => n + g.uniqueBytes, 0), u.pool.referencedBytes);
    assert.ok(u.groups.every((g) => g.sharedBytes === 0));
    assert.ok(u.pool.storedBytes >= u.pool.referencedBytes);
    assert.ok(u.pool.capacityBytes > u.pool.freeBytes);
    // Quotas: explicit for g-share; DPM 2007's default times 2 for g-other (14 days' retention).
    assert.deepEqual([sa.quotaBytes, sa.quotaFrom], [64 * KiB, 'explicit']);
    const data = sc.latestLogicalBytes;
    assert.equal(sc.quotaBytes, Math.ceil((Math.ceil(data * 1.5) + Math.ceil(data * 14 * 0.02) + 1600 * MiB) * 2));
    assert.equal(grp('g-share').quotaBytes, 128 * KiB);

    await server.cliOk(['group', 'edit', 'g-share', '--quota', 'default']);
    await until('the quota alerts to resolve', async () => !(await activeAlerts()).some((a) => a.kind === 'quota'), 30_000, 500);
  });
});
