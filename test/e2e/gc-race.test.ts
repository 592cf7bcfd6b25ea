/**
 * The gc race of PSA-2025-00019-1, at pool level and at high rate: Pool instances on one
 * directory (as four processes would: separate catalog connections, index views and pack
 * writers) run two backup loops, a prune loop (which mostly deletes the very point a running
 * backup reuses as its parent) and a gc loop at once, for hundreds of iterations. The backups do
 * what the agent does to the pool: unchanged files reuse the parent's chunk lists without asking,
 * changed files ask want() and put what is lacking, and file contents are drawn from a few
 * variants so backups keep reusing chunks that pruning just made garbage.
 *
 * A fifth instance reads random committed points back while all this runs; afterwards a fresh
 * pool passes verify --full, and every remaining point reads back bit-exact.
 * Commits refused with RETRY are the commit check working; the loop backs up again.
 * HOLDFAST_GC_SOAK_MS and HOLDFAST_GC_SOAK_BACKUPS run it longer (npm run soak:gc);
 * HOLDFAST_GC_SEED replays the same choices (not the same interleaving).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { scratch } from './cli-harness.js';
import { prng, randInt } from './tree-fixtures.js';
import { Pool } from '../../src/pool/pool.js';
import { CodecPool } from '../../src/workers/codec-pool.js';
import { ManifestWriter, readManifest } from '../../src/core/manifest-io.js';
import { hasContent, type ChunkRef, type Entry, type FileEntry } from '../../src/core/manifest.js';
import { encodeChunk } from '../../src/core/codec.js';
import { digestOf } from '../../src/core/digest.js';
import { isHoldfastError } from '../../src/core/errors.js';
import { runGc } from '../../src/pool/gc.js';
import { deletePoint, prunePoints } from '../../src/pool/point-admin.js';
import { verifyPool } from '../../src/pool/verify.js';
import type { PointRow } from '../../src/pool/catalog.js';

/** Stop after this many backups, or at the time limit (a loaded machine gets fewer). */
const TARGET_BACKUPS = Number(process.env.HOLDFAST_GC_SOAK_BACKUPS ?? 300);
const RUN_MS = Number(process.env.HOLDFAST_GC_SOAK_MS ?? 45_000);
const FILES = 8;
const VARIANTS = 4;
const CHUNK = 32 * 1024;

function content(seed: number, i: number, v: number): Buffer {
  const rng = prng(seed * 1000 + i * VARIANTS + v);
  const size = 10_000 + Math.floor(rng() * 150_000);
  const buf = Buffer.alloc(size);
  for (let o = 0; o + 4 <= size; o += 4) buf.writeUInt32LE(Math.floor(rng() * 2 ** 32), o);
  return buf;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('in-process backup, prune, gc and read-back loops on five pool instances: every point reads back bit-exact', { timeout: RUN_MS + 180_000 }, async (t) => {
  const seed = Number(process.env.HOLDFAST_GC_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rng = prng(seed);
  const s = scratch('holdfast-gcrace-');
  const dir = join(s.dir, 'pool');
  const codec = new CodecPool();
  const pools: Pool[] = [];
  const expected = new Map<string, string[]>(); // point id -> sha256 of each file
  const stats = { readBacks: 0, backups: 0, retries: 0, reusedFromParent: 0, prunes: 0, deletes: 0, gcs: 0, condemned: 0, packsDeleted: 0, repacked: 0, bytesFreed: 0 };
  const failures: string[] = [];
  const deadline = Date.now() + RUN_MS;
  const running = (): boolean => Date.now() < deadline && stats.backups < TARGET_BACKUPS && failures.length === 0;
  const files = (v: number[]): Buffer[] => v.map((ver, i) => content(seed, i, ver));

  /** One backup as the agent does it; returns the point id, or undefined on RETRY. */
  const backup = async (pool: Pool, source: string, versions: number[]): Promise<string | undefined> => {
    const parent = pool.catalog.latestPoint(source);
    const prev = new Map<string, FileEntry>();
    if (parent) for await (const e of readManifest(pool.reader, parent.manifest)) if (hasContent(e)) prev.set(e.path, e);
    const session = pool.startSession(0);
    try {
      const writer = new ManifestWriter(session, 'dir');
      await writer.add({ type: 'dir', path: '.', mode: 0o755, uid: 0, gid: 0, mtimeNs: '0' });
      for (const [i, v] of versions.entries()) {
        const path = `f${i}`;
        const mtimeNs = String(v + 1);
        const old = prev.get(path);
        let chunks: ChunkRef[];
        let size: number;
        if (old && old.mtimeNs === mtimeNs) {
          chunks = old.chunks; // unchanged: the parent's list, not asked for
          size = old.size;
          stats.reusedFromParent++;
        } else {
          const data = content(seed, i, v);
          const pieces: Buffer[] = [];
          for (let o = 0; o < data.length; o += CHUNK) pieces.push(data.subarray(o, o + CHUNK));
          chunks = pieces.map((p) => [digestOf(p), p.length]);
          const want = await session.want(chunks.map(([d]) => d));
          await session.put(pieces.filter((_, k) => want[k]).map((p) => ({ digest: digestOf(p), length: p.length, encoded: encodeChunk(p, 0) })));
          size = data.length;
        }
        await writer.add({ type: 'file', path, mode: 0o644, uid: 0, gid: 0, mtimeNs, size, chunks } satisfies Entry);
      }
      const manifest = await writer.finish();
      await session.finish();
      // A slow agent: the time between storing chunks and committing is where gc strikes.
      await new Promise((res) => setTimeout(res, randInt(rng, 0, 250)));
      const row: PointRow = {
        id: randomBytes(6).toString('hex'),
        source,
        time: new Date().toISOString(),
        kind: 'dir',
        manifest,
        logicalBytes: 0,
        files: versions.length,
        readBytes: 0,
        newBytes: 0,
        storedNewBytes: 0,
        durationMs: 0,
        parent: parent?.id ?? null,
        torn: 0,
      };
      await pool.commitPoint(row, `/src/${source}`, session);
      return row.id;
    } catch (err) {
      session.abort();
      if (isHoldfastError(err) && err.code === 'RETRY') return undefined;
      throw err;
    }
  };

  const backupLoop = async (pool: Pool, source: string): Promise<void> => {
    const versions = Array.from({ length: FILES }, () => randInt(rng, 0, VARIANTS - 1));
    while (running()) {
      for (let k = randInt(rng, 1, 3); k > 0; k--) {
        const i = randInt(rng, 0, FILES - 1);
        versions[i] = ((versions[i] as number) + randInt(rng, 1, VARIANTS - 1)) % VARIANTS;
      }
      for (let attempt = 0; ; attempt++) {
        const id = await backup(pool, source, versions);
        if (id) {
          expected.set(id, files(versions).map(sha));
          stats.backups++;
          break;
        }
        stats.retries++;
        if (attempt >= 10) throw new Error(`backup of ${source} refused 10 times in a row`);
      }
    }
  };

  const pruneLoop = async (pool: Pool): Promise<void> => {
    while (running()) {
      await new Promise((res) => setTimeout(res, randInt(rng, 0, 30)));
      const source = rng() < 0.5 ? 'alpha' : 'beta';
      if (!pool.catalog.source(source)) continue;
      const points = pool.catalog.points(source);
      if (points.length < 2) continue;
      if (rng() < 0.4) {
        await prunePoints(pool, { last: randInt(rng, 1, 2) }, { source });
        stats.prunes++;
      } else {
        // Mostly the newest point: the parent the running backup of this source reuses.
        const victim = rng() < 0.7 ? points.at(-1) : points[randInt(rng, 0, points.length - 1)];
        if (victim) await deletePoint(pool, source, victim.id);
        stats.deletes++;
      }
    }
  };

  const gcLoop = async (pool: Pool): Promise<void> => {
    while (running()) {
      const r = await runGc(pool, { repackBelow: rng() < 0.5 ? 0.5 : 0.95 });
      stats.gcs++;
      stats.condemned += r.condemnedChunks;
      stats.packsDeleted += r.packsDeleted;
      stats.repacked += r.packsRepacked;
      stats.bytesFreed += r.bytesFreed;
    }
  };

  /** Reads a random committed point back while everything runs: a lost chunk shows up here. */
  const readLoop = async (pool: Pool): Promise<void> => {
    while (running()) {
      await new Promise((res) => setTimeout(res, randInt(rng, 0, 20)));
      const all = pool.catalog.points();
      const p = all[randInt(rng, 0, Math.max(0, all.length - 1))];
      const want = p && expected.get(p.id);
      if (!p || !want) continue;
      try {
        const got: string[] = [];
        for await (const e of readManifest(pool.reader, p.manifest)) if (hasContent(e)) got.push(sha(Buffer.concat(await pool.reader.read(e.chunks))));
        assert.deepEqual(got, want, `point ${p.id} read back wrong while running`);
        stats.readBacks++;
      } catch (err) {
        // Deleted meanwhile (prune) and then collected: not a loss.
        if (pool.catalog.pointExists(p.id)) throw err;
      }
    }
  };

  const guard = (p: Promise<void>): Promise<void> => p.catch((err: unknown) => void failures.push((err as Error).stack ?? String(err)));
  try {
    await Pool.init(dir, { packSize: 256 * 1024 });
    for (let i = 0; i < 5; i++) pools.push(await Pool.open(dir, { codec }));
    const [a, b, pr, gc, rd] = pools as [Pool, Pool, Pool, Pool, Pool];
    await Promise.all([guard(backupLoop(a, 'alpha')), guard(backupLoop(b, 'beta')), guard(pruneLoop(pr)), guard(gcLoop(gc)), guard(readLoop(rd))]);
    const summary = `seed ${seed}: ${JSON.stringify(stats)}`;
    t.diagnostic(summary);
    assert.deepEqual(failures, [], summary);
    for (const p of pools.splice(0)) await p.close();

    const fresh = await Pool.open(dir, { codec });
    pools.push(fresh);
    await runGc(fresh);
    const v = await verifyPool(fresh, { full: true });
    assert.ok(v.ok, `verify --full: ${JSON.stringify({ problems: v.problems, chunks: v.damagedChunks.slice(0, 3), points: v.damagedPoints.slice(0, 3) })}\n${summary}`);
    const remaining = fresh.catalog.points();
    for (const p of remaining) {
      const want = expected.get(p.id);
      assert.ok(want, `point ${p.id} was not made by this test`);
      const got: string[] = [];
      for await (const e of readManifest(fresh.reader, p.manifest)) {
        if (!hasContent(e)) continue;
        const parts = await fresh.reader.read(e.chunks);
        got.push(sha(Buffer.concat(parts)));
      }
      assert.deepEqual(got, want, `point ${p.id} of ${p.source} does not read back as backed up\n${summary}`);
    }
    t.diagnostic(`${remaining.length} remaining points read back bit-exact`);
    assert.ok(stats.backups >= 20 && stats.gcs >= 5 && stats.bytesFreed > 0, `too little happened: ${summary}`);
  } finally {
    for (const p of pools) await p.close();
    await codec.close();
    s.cleanup();
  }
});
