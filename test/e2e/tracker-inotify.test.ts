/**
 * The 'inotify' tracker through a real server and agent process on an ext4 directory: random
 * change rounds (files created, rewritten, partly written, deleted, renamed; directories created,
 * renamed, deleted; chmod, hard links, symlinks, xattrs), each synced through the journal and
 * reading about what changed, then every recovery point restores bit-exact. A write that lands
 * during a sync is in the next point; kill -9 of the agent mid-sync and a journal overflow each
 * make the next sync a consistency check (tracker 'full' and a warning), and it is correct.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { diffSnapshots, scratch, snapshotTree, type NodeSnapshot } from './cli-harness.js';
import { TestAgent, TestServer, until, type JobJson } from './server-harness.js';
import { buildTree, prng, randInt, writeRandomFile } from './tree-fixtures.js';
import { setXattr } from '../../src/native/index.js';

const ROUNDS = Number(process.env.HOLDFAST_SOAK_ROUNDS ?? 6);
const MiB = 1024 * 1024;

interface SyncResult {
  point: string;
  tracker: string;
  readBytes: number;
  sentBytes: number;
  warnings: string[];
  durationMs: number;
}

/** Every regular file under root, relative. */
function files(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const d of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...files(root, p));
    else if (d.isFile()) out.push(p);
  }
  return out;
}

function dirs(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const d of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(p, ...dirs(root, p));
  }
  return out;
}

/**
 * One round of changes: files written, partly written, deleted, renamed, chmod'ed, linked, given
 * xattrs; directories created, renamed, deleted.
 */
function mutate(root: string, rng: () => number, round: number): void {
  const all = files(root);
  const pick = (): string => all[randInt(rng, 0, all.length - 1)] as string;
  const alive = (p: string): boolean => existsSync(join(root, p)) && statSync(join(root, p)).isFile();
  for (let i = randInt(rng, 1, 6); i > 0; i--) {
    const f = pick();
    if (!alive(f)) continue;
    writeFileSync(join(root, f), randomBytes(randInt(rng, 0, 40_000)));
  }
  if (alive('big.bin')) {
    const fd = openSync(join(root, 'big.bin'), 'r+');
    writeSync(fd, randomBytes(65536), 0, 65536, randInt(rng, 0, 40) * 65536);
    closeSync(fd);
  }
  for (let i = randInt(rng, 0, 4); i > 0; i--) {
    const f = pick();
    if (alive(f)) rmSync(join(root, f));
  }
  for (let i = randInt(rng, 0, 3); i > 0; i--) {
    const f = pick();
    if (!alive(f)) continue;
    const to = `${f}.r${round}`;
    renameSync(join(root, f), join(root, to));
  }
  for (let i = randInt(rng, 0, 3); i > 0; i--) {
    const f = pick();
    if (!alive(f)) continue;
    chmodSync(join(root, f), 0o600 + randInt(rng, 0, 0o77));
  }
  // A new directory with files, made before and after its watch can exist.
  const nd = `new-${round}`;
  mkdirSync(join(root, nd, 'inner'), { recursive: true });
  for (let i = 0; i < 5; i++) {
    const p = `${nd}/${i % 2 ? 'inner/' : ''}f${i}`;
    writeFileSync(join(root, p), randomBytes(randInt(rng, 1, 9000)));
  }
  symlinkSync(`../${pick()}`, join(root, nd, 'link'));
  // Rename a directory (its files keep their inodes and times: nothing to read) and delete one.
  const ds = dirs(root).filter((d) => d !== nd && !d.startsWith(`${nd}/`));
  const d = ds[randInt(rng, 0, ds.length - 1)];
  if (d && round % 2 === 0) renameSync(join(root, d), join(root, `${d}-moved${round}`));
  const gone = dirs(root).filter((x) => x.startsWith('new-') && x !== nd && !x.includes('/'));
  if (gone[0] && round % 3 === 2) rmSync(join(root, gone[0]), { recursive: true });
  // Hard links: a new one, and a write through an existing link's other name.
  const h = pick();
  if (alive(h)) {
    linkSync(join(root, h), join(root, `hard-r${round}`));
  }
  if (alive('hard-0') && round > 0) {
    appendFileSync(join(root, 'hard-0'), randomBytes(100));
  }
  const x = pick();
  if (alive(x)) {
    setXattr(join(root, x), 'user.round', Buffer.from(String(round)));
  }
  if (existsSync(join(root, 'a'))) chmodSync(join(root, 'a'), round % 2 ? 0o750 : 0o755);
}

/** Each file's inode with its size and times: what tells a full walk that a file changed. */
function inodes(root: string): Map<bigint, string> {
  const out = new Map<bigint, string>();
  for (const f of files(root)) {
    const st = statSync(join(root, f), { bigint: true });
    out.set(st.ino, `${st.size}:${st.mtimeNs}:${st.ctimeNs}`);
  }
  return out;
}

/** Bytes of the inodes that are new or changed since `before` (each counted once): what any tracker must read. */
function changedBytes(root: string, before: Map<bigint, string>): number {
  let n = 0;
  for (const [ino, key] of inodes(root)) if (before.get(ino) !== key) n += Number(key.split(':')[0]);
  return n;
}

describe('inotify tracker: server and agent', { timeout: 900_000 }, () => {
  const tmp = scratch('holdfast-inotify-');
  const src = join(tmp.dir, 'src');
  let server: TestServer;
  let agent: TestAgent;
  /** each committed point and the tree it must restore to */
  const expected: Array<{ point: string; tree: Map<string, NodeSnapshot> }> = [];

  const sync = async (): Promise<SyncResult> => {
    const r = await server.json<SyncResult>(['sync', 'docs', '--wait']);
    expected.push({ point: r.point, tree: snapshotTree(src) });
    return r;
  };
  const restoresTo = async (point: string, tree: Map<string, NodeSnapshot>): Promise<void> => {
    const to = join(tmp.dir, `restore-${point}`);
    await server.json(['restore', '--source', 'docs', '--point', point, '--to', to]);
    assert.deepEqual(diffSnapshots(tree, snapshotTree(to)), [], `point ${point}`);
    rmSync(to, { recursive: true, force: true });
  };
  /** Starts a slow sync (a big new file under a throttle) and waits until it is sending. */
  const slowSync = async (): Promise<string> => {
    await server.admin().json('PATCH', '/api/v1/groups/manual', { throttle: '3MiB/s' });
    writeRandomFile(join(src, 'slow.bin'), 24 * MiB + randInt(Math.random, 0, 1000));
    const job = await server.json<JobJson>(['sync', 'docs']);
    const admin = server.admin();
    await until('the sync to be sending', async () => ((await admin.json<JobJson>('GET', `/api/v1/jobs/${job.id}`)).progress?.sentBytes ?? 0) > 2 * MiB, 60_000, 100);
    await admin.close();
    return job.id;
  };
  const jobResult = async (id: string): Promise<JobJson> => {
    const admin = server.admin();
    try {
      return await until('the sync to end', async () => {
        const j = await admin.json<JobJson>('GET', `/api/v1/jobs/${id}`);
        return j.state === 'succeeded' || j.state === 'failed' ? j : undefined;
      }, 180_000, 300);
    } finally {
      await admin.close();
    }
  };

  before(async () => {
    buildTree(src, prng(77), { files: 400, bigFile: 3 * MiB });
    linkSync(join(src, 'big.bin'), join(src, 'a', 'big-link'));
    writeFileSync(join(src, 'hard-0'), 'first');
    linkSync(join(src, 'hard-0'), join(src, 'd', 'hard-0-too'));
    server = await TestServer.start(join(tmp.dir, 'server'));
    agent = await TestAgent.start(server, 'host', join(tmp.dir, 'agent'));
    await server.cliOk(['group', 'create', 'manual', '--sync-every', 'off']);
    await server.cliOk(['source', 'add', '--group', 'manual', '--agent', 'host', '--kind', 'dir', 'docs', src]);
  });

  after(async () => {
    await agent?.kill();
    await server?.kill();
    tmp.cleanup();
  });

  it('syncs random change rounds through the journal, reading about what changed', async () => {
    const first = await sync();
    assert.equal(first.tracker, 'full');
    const rng = prng(2026);
    for (let round = 0; round < ROUNDS; round++) {
      const was = inodes(src);
      mutate(src, rng, round);
      const bound = changedBytes(src, was);
      const r = await sync();
      assert.equal(r.tracker, 'inotify', `round ${round}: ${r.warnings.join('; ')}`);
      assert.ok(r.readBytes <= bound, `round ${round}: read ${r.readBytes} bytes, the changed files hold ${bound}`);
    }
    const idle = await sync();
    assert.equal(idle.tracker, 'inotify');
    assert.equal(idle.readBytes, 0, 'nothing changed: nothing read');
  });

  it('puts a write that lands during a sync into the next point', async () => {
    const id = await slowSync();
    writeFileSync(join(src, 'during.txt'), 'written while the sync ran');
    appendFileSync(join(src, 'f', readdirSync(join(src, 'f')).find((n) => n.endsWith('.dat')) as string), 'more');
    const done = await jobResult(id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.result?.tracker, 'inotify');
    await server.admin().json('PATCH', '/api/v1/groups/manual', { throttle: 'off' });
    const next = await sync();
    assert.equal(next.tracker, 'inotify');
    assert.ok(next.readBytes > 0 && next.readBytes < 100_000, `read ${next.readBytes}`);
    await restoresTo(next.point, snapshotTree(src));
  });

  it('after kill -9 of the agent mid-sync, the next sync is a consistency check and correct', async () => {
    const id = await slowSync();
    await agent.kill('SIGKILL');
    writeFileSync(join(src, 'while-down.txt'), 'the agent was not running');
    agent.restart();
    await agent.waitOnline();
    await server.admin().json('PATCH', '/api/v1/groups/manual', { throttle: 'off' });
    // The server requeues the interrupted job, or fails it if the agent stayed away past its
    // timeout and runs it again once; either way the restarted agent's first sync checks everything.
    let done = await jobResult(id);
    if (done.state === 'failed') {
      assert.match(JSON.stringify(done.error), /offline/);
      const retry = await until('the automatic retry', async () => (await server.json<JobJson[]>(['jobs', '--source', 'docs'])).find((j) => j.retryOf === id), 30_000, 300);
      done = await jobResult(retry.id);
    }
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    const r = done.result as unknown as SyncResult;
    expected.push({ point: r.point, tree: snapshotTree(src) });
    assert.equal(r.tracker, 'full');
    assert.match(r.warnings.join('\n'), /did not run continuously.*consistency check/);
    await restoresTo(r.point, snapshotTree(src));
    writeFileSync(join(src, 'after.txt'), 'tracked again');
    const next = await sync();
    assert.equal(next.tracker, 'inotify');
  });

  it('a journal overflow makes the next sync a consistency check', async () => {
    const knob = '/proc/sys/fs/inotify/max_queued_events';
    const saved = readFileSync(knob, 'utf8').trim();
    try {
      // The queue size is fixed when inotify starts: restart the agent under a tiny limit.
      writeFileSync(knob, '16');
      await agent.kill('SIGTERM');
      agent.restart();
      await agent.waitOnline();
      await sync(); // the journal of this agent run is running; the next sync can trust it
    } finally {
      writeFileSync(knob, saved);
    }
    // 600 events (create, modify, close) in a watched directory, faster than a 16-event queue drains.
    for (let i = 0; i < 200; i++) writeFileSync(join(src, 'd', `burst-${i}`), `burst ${i}`);
    const r = await sync();
    assert.equal(r.tracker, 'full');
    assert.match(r.warnings.join('\n'), /overflowed/);
    const again = await sync();
    assert.equal(again.tracker, 'inotify', again.warnings.join('; '));
  });

  it('every recovery point restores bit-exact', async () => {
    assert.ok(expected.length >= ROUNDS + 5);
    for (const { point, tree } of expected) await restoresTo(point, tree);
  });
});
