/**
 * The qcow2 tracker on real QEMU: an image written with qemu-io between syncs (offline), and the
 * same image served by qemu-storage-daemon and written through its NBD export while the agent
 * rotates bitmaps and fleeces it over QMP (live). The test keeps a model of the guest disk, so it
 * knows the bytes every recovery point must restore; each sync must read exactly the granules the
 * writes dirtied. Kills with SIGKILL at random moments must lose no change. Rounds: 6, or
 * HOLDFAST_SOAK_ROUNDS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, unlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { holdfast, holdfastJson, scratch, sh } from './cli-harness.js';
import { prng, randInt, startHoldfast } from './tree-fixtures.js';
import { DiskModel, MiB, StorageDaemon, dirtyBytes, offlineTarget, qemuIoWrite, randomWrites, requireTools, type Write } from './qemu-fixtures.js';
import { QmpClient } from '../../src/agent/trackers/qmp-client.js';

const SIZE = 64 * MiB;
const ROUNDS = Number(process.env.HOLDFAST_SOAK_ROUNDS ?? 6);

interface BackupJson {
  point: string;
  readBytes: number;
  newBytes: number;
  storedNewBytes: number;
  tracker: string;
  warnings: string[];
}

interface PointJson {
  id: string;
  time: string;
}

/** Shared by both modes: a pool, an image, a model, and the digest each point must restore. */
function harness(name: string): {
  dir: string;
  pool: string;
  image: string;
  model: DiskModel;
  expected: Map<string, string>;
  rng: () => number;
  seed: number;
  backup(extra: string[]): Promise<BackupJson>;
  restoreDigest(point: string): Promise<string>;
  verifyAll(): Promise<void>;
  cleanup(): void;
} {
  const s = scratch(`holdfast-${name}-`);
  const pool = join(s.dir, 'pool');
  const image = join(s.dir, 'disk.qcow2');
  const seed = Number(process.env.HOLDFAST_SEED ?? Date.now() % 1_000_000);
  /** points whose restore was compared already */
  const restored = new Set<string>();
  const h = {
    dir: s.dir,
    pool,
    image,
    model: new DiskModel(SIZE),
    expected: new Map<string, string>(),
    rng: prng(seed),
    seed,
    backup: (extra: string[]) => holdfastJson<BackupJson>(['backup', '--pool', pool, '--source', 'vm', '--kind', 'image', ...extra, image]),
    restoreDigest: async (point: string) => {
      const to = join(s.dir, `restore-${point}`);
      const r = await holdfast(['restore', '--pool', pool, '--source', 'vm', '--point', point, '--to', to]);
      assert.equal(r.code, 0, r.stderr);
      const d = createHash('sha256').update(readFileSync(to)).digest('hex');
      rmSync(to, { force: true });
      if (d === h.expected.get(point)) restored.add(point);
      return d;
    },
    /** Restores the points not yet checked (those of killed runs, mostly). */
    verifyAll: async () => {
      const points = await holdfastJson<PointJson[]>(['points', '--pool', pool, '--source', 'vm']);
      for (const p of points) {
        const want = h.expected.get(p.id);
        assert.ok(want, `point ${p.id} was not expected (seed ${seed})`);
        if (!restored.has(p.id)) assert.equal(await h.restoreDigest(p.id), want, `point ${p.id} does not restore the disk of its sync (seed ${seed})`);
      }
      assert.equal(restored.size, points.length);
    },
    cleanup: () => s.cleanup(),
  };
  return h;
}

function bitmapsOf(image: string): Array<{ name: string; flags: string[] }> {
  const info = JSON.parse(sh('qemu-img', ['info', '-U', '--output=json', image])) as { 'format-specific': { data: { bitmaps?: Array<{ name: string; flags: string[] }> } } };
  return info['format-specific'].data.bitmaps ?? [];
}

describe('qcow2 tracker, offline image (a qemu-storage-daemon per sync)', () => {
  const h = harness('qcow2-offline');
  const target = offlineTarget(h.image);
  const write = async (ws: Write[]): Promise<void> => {
    await qemuIoWrite(h.dir, target, ws);
    h.model.apply(ws);
  };
  /** writes since the last sync that committed tracker state */
  let pending: Write[] = [];
  /** the fastest sync of the rounds: kills are spread over that much time */
  let syncMs = 60_000;

  before(async () => {
    requireTools('qemu-img', 'qemu-io', 'qemu-storage-daemon');
    sh('qemu-img', ['create', '-q', '-f', 'qcow2', h.image, String(SIZE)]);
    assert.equal((await holdfast(['pool', 'init', h.pool])).code, 0);
  });
  after(() => h.cleanup());

  test('the first sync reads the allocated data once; the point restores the guest disk bit-exact', async (t) => {
    const ws = randomWrites(h.rng, SIZE, 40);
    await write(ws);
    const raw = join(h.dir, 'disk.raw');
    sh('qemu-img', ['convert', '-O', 'raw', h.image, raw]);
    assert.ok(readFileSync(raw).equals(h.model.bytes), 'the model of the disk disagrees with qemu-img convert');
    rmSync(raw);
    const r = await h.backup([]);
    h.expected.set(r.point, h.model.digest());
    assert.equal(r.tracker, 'full');
    assert.ok(r.readBytes <= dirtyBytes(ws, SIZE) + 4 * MiB, `first sync read ${r.readBytes} bytes of a sparsely written disk`);
    assert.equal(await h.restoreDigest(r.point), h.model.digest());
    t.diagnostic(`seed ${h.seed}; first sync: read ${r.readBytes}, new ${r.newBytes}`);
    assert.deepEqual(bitmapsOf(h.image).map((b) => b.name), ['holdfast.vm.1']);
  });

  test(`${ROUNDS} random change rounds: each sync reads exactly the dirty granules and restores bit-exact`, async (t) => {
    for (let round = 0; round < ROUNDS; round++) {
      const ws = randomWrites(h.rng, SIZE, randInt(h.rng, 1, 60));
      await write(ws);
      const started = Date.now();
      const r = await h.backup([]);
      syncMs = Math.min(syncMs, Date.now() - started);
      h.expected.set(r.point, h.model.digest());
      const changed = ws.reduce((n, w) => n + w.length, 0);
      t.diagnostic(`round ${round}: ${ws.length} writes, ${changed} bytes written, ${dirtyBytes(ws, SIZE)} dirty; readBytes ${r.readBytes}, newBytes ${r.newBytes}, stored ${r.storedNewBytes}`);
      assert.equal(r.tracker, 'qcow2-bitmap', r.warnings.join('; '));
      assert.equal(r.readBytes, dirtyBytes(ws, SIZE), `round ${round} (seed ${h.seed}) read other than the dirty granules`);
      // Changed bytes plus the manifest (~32 bytes of JSON per 16 KiB slot, mostly deduplicated).
      assert.ok(r.newBytes <= r.readBytes + 600 * 1024, `round ${round}: ${r.newBytes} new bytes for ${r.readBytes} read`);
      assert.equal(await h.restoreDigest(r.point), h.model.digest(), `round ${round} (seed ${h.seed})`);
    }
    const nothing = await h.backup([]);
    h.expected.set(nothing.point, h.model.digest());
    assert.equal(nothing.readBytes, 0, 'a sync with nothing written read data');
  });

  test('syncs killed with SIGKILL at random moments lose no write', async (t) => {
    pending = [];
    /** what each killed run said, for a failure below to explain itself */
    const said: string[] = [];
    for (let i = 0; i < 6; i++) {
      const ws = randomWrites(h.rng, SIZE, randInt(h.rng, 1, 20));
      await write(ws);
      pending.push(...ws);
      const digest = h.model.digest();
      const run = startHoldfast(['backup', '--pool', h.pool, '--source', 'vm', '--kind', 'image', '--json', h.image]);
      const delay = randInt(h.rng, 50, Math.round(syncMs * 1.1));
      const timer = setTimeout(() => run.child.kill('SIGKILL'), delay);
      const res = await run.done;
      clearTimeout(timer);
      // A run killed after its catalog row still made a point: it holds the disk of its start.
      const points = await holdfastJson<PointJson[]>(['points', '--pool', h.pool, '--source', 'vm']);
      for (const p of points) if (!h.expected.has(p.id)) h.expected.set(p.id, digest);
      const how = res.signal ?? `exit ${res.code}`;
      t.diagnostic(`kill ${i} after ${delay} ms: ${how}`);
      said.push(`run ${i} (${how} after ${delay} ms)${res.stderr.trim() ? `: ${res.stderr.trim().slice(-400)}` : ''}`);
    }
    const ws = randomWrites(h.rng, SIZE, 10);
    await write(ws);
    pending.push(...ws);
    // What the image and the machine held before the last sync, for a failure to explain itself
    // (CI once saw bitmaps left in use here; the cause is not known yet).
    const daemons = spawnSync('pgrep', ['-af', 'qemu-storage-daemon'], { encoding: 'utf8' }).stdout.trim();
    const state = `before the last sync: bitmaps ${JSON.stringify(bitmapsOf(h.image))}; daemons running: ${daemons || 'none'}; the killed runs: ${said.join(' | ')}`;
    const r = await h.backup([]);
    h.expected.set(r.point, h.model.digest());
    t.diagnostic(`after the kills: tracker ${r.tracker}, readBytes ${r.readBytes} (writes since the last tracked sync dirty ${dirtyBytes(pending, SIZE)})`);
    if (r.tracker === 'qcow2-bitmap') assert.ok(r.readBytes <= dirtyBytes(pending, SIZE));
    else {
      // Only a run killed between its commit and saving its tracker state may cost a full read:
      // the daemon of a killed sync gets SIGTERM (pdeathsig) and stores the bitmaps as it quits.
      assert.match(r.warnings.join('\n'), /reading everything/);
      assert.doesNotMatch(r.warnings.join('\n'), /not saved cleanly/, `${r.warnings.join('; ')}; ${state}`);
    }
    assert.equal(await h.restoreDigest(r.point), h.model.digest(), `seed ${h.seed}`);
    const names = bitmapsOf(h.image).map((b) => b.name);
    assert.equal(names.length, 1, `bitmaps left: ${names.join(', ')}`);
  });

  test('lost tracker state: the next sync reads everything, says so, and tracking resumes', async () => {
    unlinkSync(join(h.pool, 'agent-state', 'vm.qcow2-bitmap.json'));
    const ws = randomWrites(h.rng, SIZE, 5);
    await write(ws);
    const r = await h.backup([]);
    h.expected.set(r.point, h.model.digest());
    assert.equal(r.tracker, 'full');
    assert.match(r.warnings.join('\n'), /no change tracking state leads to recovery point/);
    const ws2 = randomWrites(h.rng, SIZE, 5);
    await write(ws2);
    const r2 = await h.backup([]);
    h.expected.set(r2.point, h.model.digest());
    assert.equal(r2.tracker, 'qcow2-bitmap');
    assert.equal(r2.readBytes, dirtyBytes(ws2, SIZE));
  });

  test('every recovery point restores the disk of its sync', async () => {
    await h.verifyAll();
  });

  test('an image a running QEMU holds is refused with an error naming it; nothing is written', async () => {
    const before = await holdfastJson<PointJson[]>(['points', '--pool', h.pool, '--source', 'vm']);
    const bitmaps = bitmapsOf(h.image).map((b) => b.name);
    const vm = new StorageDaemon(h.image, h.dir);
    await vm.start();
    try {
      const r = await holdfast(['backup', '--pool', h.pool, '--source', 'vm', '--kind', 'image', '--json', h.image]);
      assert.notEqual(r.code, 0);
      assert.ok(r.stderr.includes(h.image) && /in use/.test(r.stderr), r.stderr);
    } finally {
      await vm.stop();
    }
    assert.equal((await holdfastJson<PointJson[]>(['points', '--pool', h.pool, '--source', 'vm'])).length, before.length);
    assert.deepEqual(bitmapsOf(h.image).map((b) => b.name), bitmaps);
  });
});

describe('qcow2 tracker, running QEMU (qemu-storage-daemon, QMP, image fleecing)', () => {
  const h = harness('qcow2-live');
  const vm = new StorageDaemon(h.image, h.dir);
  let syncMs = 60_000;
  const live = (): string[] => ['--qmp', vm.qmpSocket, '--node', vm.node, '--nbd-socket', vm.nbdSocket];
  const write = async (ws: Write[]): Promise<void> => {
    await qemuIoWrite(h.dir, vm.target, ws);
    h.model.apply(ws);
  };

  before(async () => {
    requireTools('qemu-img', 'qemu-io', 'qemu-storage-daemon');
    sh('qemu-img', ['create', '-q', '-f', 'qcow2', h.image, String(SIZE)]);
    assert.equal((await holdfast(['pool', 'init', h.pool])).code, 0);
    await vm.start();
  });
  after(async () => {
    await vm.stop();
    h.cleanup();
  });

  test(`first sync, then ${ROUNDS} rounds written through the VM: exact dirty reads, bit-exact points`, async (t) => {
    await write(randomWrites(h.rng, SIZE, 30));
    const first = await h.backup(live());
    h.expected.set(first.point, h.model.digest());
    assert.equal(first.tracker, 'full');
    for (let round = 0; round < ROUNDS; round++) {
      const ws = randomWrites(h.rng, SIZE, randInt(h.rng, 1, 60));
      await write(ws);
      const started = Date.now();
      const r = await h.backup(live());
      syncMs = Math.min(syncMs, Date.now() - started);
      h.expected.set(r.point, h.model.digest());
      t.diagnostic(`round ${round}: ${ws.length} writes, ${dirtyBytes(ws, SIZE)} dirty; readBytes ${r.readBytes}, newBytes ${r.newBytes}`);
      assert.equal(r.tracker, 'qcow2-bitmap', r.warnings.join('; '));
      assert.equal(r.readBytes, dirtyBytes(ws, SIZE), `round ${round} (seed ${h.seed})`);
      assert.equal(await h.restoreDigest(r.point), h.model.digest(), `round ${round} (seed ${h.seed})`);
    }
  });

  test('writes that land during a sync: the point is one moment of the disk, and the next point has them all', async (t) => {
    // Writes in a known order; the point must hold exactly a prefix of them (point in time). One
    // qemu-io run issues a batch's writes one after another, so the point may fall inside a batch.
    const models: string[] = [h.model.digest()];
    const run = startHoldfast(['backup', '--pool', h.pool, '--source', 'vm', '--kind', 'image', '--json', ...live(), h.image]);
    let finished = false;
    void run.done.then(() => (finished = true));
    let batches = 0;
    while (!finished || batches < 3) {
      const ws = randomWrites(h.rng, SIZE, 4);
      await qemuIoWrite(h.dir, vm.target, ws);
      for (const w of ws) {
        h.model.apply([w]);
        models.push(h.model.digest());
      }
      batches++;
    }
    const res = await run.done;
    assert.equal(res.code, 0, res.stderr);
    const during = JSON.parse(res.stdout) as BackupJson;
    const got = await h.restoreDigest(during.point);
    const k = models.indexOf(got);
    assert.ok(k >= 0, `the point taken during ${batches} write batches is no moment of the disk (seed ${h.seed})`);
    h.expected.set(during.point, got);
    t.diagnostic(`point during writes holds ${k} of ${models.length - 1} writes (${batches} batches)`);
    const next = await h.backup(live());
    h.expected.set(next.point, h.model.digest());
    assert.equal(next.tracker, 'qcow2-bitmap');
    assert.equal(await h.restoreDigest(next.point), h.model.digest(), 'a write made during a sync is missing from the next point');
  });

  test('syncs killed with SIGKILL mid-way: fleecing is cleaned up and no write is lost', async (t) => {
    for (let i = 0; i < 4; i++) {
      await write(randomWrites(h.rng, SIZE, randInt(h.rng, 1, 20)));
      const digest = h.model.digest();
      const run = startHoldfast(['backup', '--pool', h.pool, '--source', 'vm', '--kind', 'image', '--json', ...live(), h.image]);
      const delay = randInt(h.rng, 50, Math.round(syncMs * 1.1));
      const timer = setTimeout(() => run.child.kill('SIGKILL'), delay);
      const res = await run.done;
      clearTimeout(timer);
      const points = await holdfastJson<PointJson[]>(['points', '--pool', h.pool, '--source', 'vm']);
      for (const p of points) if (!h.expected.has(p.id)) h.expected.set(p.id, digest);
      t.diagnostic(`kill ${i} after ${delay} ms: ${res.signal ?? `exit ${res.code}`}`);
      // The VM keeps running and taking writes whatever the agent left behind.
      await write(randomWrites(h.rng, SIZE, 3));
    }
    const r = await h.backup(live());
    h.expected.set(r.point, h.model.digest());
    assert.equal(await h.restoreDigest(r.point), h.model.digest(), `seed ${h.seed}`);
    const q = await QmpClient.connect(vm.qmpSocket);
    try {
      const nodes = await q.execute<Array<{ 'node-name': string; 'dirty-bitmaps'?: Array<{ name: string }> }>>('query-named-block-nodes', { flat: true });
      assert.deepEqual(nodes.map((n) => n['node-name']).sort(), ['disk0', 'file0'], 'fleecing nodes left behind');
      const disk = nodes.find((n) => n['node-name'] === 'disk0');
      assert.equal(disk?.['dirty-bitmaps']?.length, 1, `bitmaps: ${JSON.stringify(disk?.['dirty-bitmaps'])}`);
      assert.deepEqual(await q.execute('query-block-jobs'), []);
    } finally {
      q.close();
    }
  });

  test('every recovery point restores the disk of its sync; the bitmap survives QEMU quitting', async () => {
    await h.verifyAll();
    await vm.stop();
    const bitmaps = bitmapsOf(h.image);
    assert.equal(bitmaps.length, 1);
    assert.ok(!bitmaps[0]?.flags.includes('in-use'), 'the bitmap was not stored cleanly');
    // Offline now: the next sync continues from the bitmap QEMU stored.
    const ws = randomWrites(h.rng, SIZE, 5);
    await qemuIoWrite(h.dir, offlineTarget(h.image), ws);
    h.model.apply(ws);
    const r = await h.backup([]);
    assert.equal(r.tracker, 'qcow2-bitmap', r.warnings.join('; '));
    assert.equal(r.readBytes, dirtyBytes(ws, SIZE));
    assert.equal(await h.restoreDigest(r.point), h.model.digest());
    await sleep(0);
  });
});
