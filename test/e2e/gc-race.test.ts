/**
 * The gc race of PSA-2025-00019-1, at pool level and at high rate: Pool instances on one
 * directory (as separate processes would: their own catalog connections, index views and pack
 * writers) run two backup loops, a log loop, a slow backup loop, a prune loop (which mostly
 * deletes the very point a running backup reuses as its parent) and a gc loop at once, until each
 * has done its share of hundreds of iterations. The backups do what the agent does to the pool:
 * unchanged files reuse the parent's chunk lists without asking, changed files ask want() and put
 * what is lacking, and file contents are drawn from a few variants so backups keep reusing chunks
 * that pruning just made garbage.
 *
 * - The log loop commits log records (pool.commitLog) of a database-like source whose records
 *   reuse those same chunks; each of its recovery points opens a generation, and pruning the
 *   points prunes the records no kept point needs (pool/log-chain.ts).
 * - The slow loop waits longer than gc's clock margin between storing new chunks and committing:
 *   only its lease keeps gc off them.
 * - Another instance restores random committed points while all this runs, through the restore
 *   of `holdfast restore` (localRestore), and reads random log records back.
 * - Right after each commit, every chunk of the new point or record must be in a view at the
 *   current epoch (nothing it needs is condemned): a later restore could miss a loss, because a
 *   later backup of the same variant stores the lost chunk again and chunks are found by digest.
 *
 * Afterwards a fresh pool passes verify --full, every remaining point restores with the bytes and
 * metadata it was backed up with, and every remaining log record reads back bit-exact (and none
 * that a kept point needs is gone). Commits refused with RETRY are the commit check working; the
 * loop sends again. HOLDFAST_GC_SOAK_MS runs it at least that long and HOLDFAST_GC_SOAK_BACKUPS
 * to at least that many backups (npm run soak:gc); HOLDFAST_GC_SEED replays the same choices (not
 * the same interleaving).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { scratch, snapshotTree, type NodeSnapshot } from './cli-harness.js';
import { prng, randInt } from './tree-fixtures.js';
import { Pool } from '../../src/pool/pool.js';
import { CodecPool } from '../../src/workers/codec-pool.js';
import { ManifestWriter, readManifest } from '../../src/core/manifest-io.js';
import { hasContent, type ChunkRef, type Entry, type FileEntry } from '../../src/core/manifest.js';
import { encodeChunk } from '../../src/core/codec.js';
import { digestOf } from '../../src/core/digest.js';
import { decodeIndex } from '../../src/pool/index-file.js';
import { isHoldfastError } from '../../src/core/errors.js';
import { runGc } from '../../src/pool/gc.js';
import { deletePoint, prunePoints } from '../../src/pool/point-admin.js';
import { verifyPool } from '../../src/pool/verify.js';
import { pointDigests } from '../../src/pool/point-digests.js';
import { localRestore } from '../../src/cli/local-engine.js';
import type { PointRow } from '../../src/pool/catalog.js';

/**
 * The race runs until every loop has done at least this much (a slow machine takes longer, it
 * does not do less), and HOLDFAST_GC_SOAK_MS has passed.
 */
const FLOOR = {
  backups: Number(process.env.HOLDFAST_GC_SOAK_BACKUPS ?? 200),
  gcs: 50,
  prunes: 50,
  logs: 100,
  logsPruned: 20,
  slowBackups: 3,
  restores: 20,
};
const SOAK_MS = Number(process.env.HOLDFAST_GC_SOAK_MS ?? 0);
/** A machine this slow fails the test rather than let it run forever. */
const GIVE_UP_MS = SOAK_MS + 300_000;
const FILES = 8;
const VARIANTS = 4;
const CHUNK = 32 * 1024;
/** gc leaves packs younger than 2 s alone (its clock margin): the slow loop waits longer. */
const SLOW_COMMIT_MS = [2_300, 3_000] as const;
const ROOT: Entry = { type: 'dir', path: '.', mode: 0o750, uid: 0, gid: 0, mtimeNs: '1600000000123456789' };

function content(seed: number, i: number, v: number): Buffer {
  const rng = prng(seed * 1000 + i * 100_000 + v);
  const size = 10_000 + Math.floor(rng() * 150_000);
  const buf = Buffer.alloc(size);
  for (let o = 0; o + 4 <= size; o += 4) buf.writeUInt32LE(Math.floor(rng() * 2 ** 32), o);
  return buf;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const split = (data: Buffer): Buffer[] => {
  const pieces: Buffer[] = [];
  for (let o = 0; o < data.length; o += CHUNK) pieces.push(data.subarray(o, o + CHUNK));
  return pieces;
};

/** File i in variant v: its metadata (all of it restored and compared) follows the variant. */
function fileMeta(i: number, v: number): Pick<FileEntry, 'mode' | 'uid' | 'gid' | 'mtimeNs' | 'xattrs'> {
  return {
    mode: [0o644, 0o600, 0o640, 0o755][(i + v) % 4] as number,
    uid: 1000 + i,
    gid: 2000 + (v % 7),
    mtimeNs: `${1_700_000_000 + i * 1000 + v}${String(i * 7919 + v).padStart(9, '0')}`,
    xattrs: { 'user.holdfast.variant': Buffer.from(`${i}:${v}`).toString('base64') },
  };
}

test('backup, log, prune, gc and restore loops on seven pool instances, hundreds of iterations: every remaining point restores and every log record reads back bit-exact', { timeout: GIVE_UP_MS + 120_000 }, async (t) => {
  const seed = Number(process.env.HOLDFAST_GC_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rng = prng(seed);
  const s = scratch('holdfast-gcrace-');
  const dir = join(s.dir, 'pool');
  const codec = new CodecPool();
  const pools: Pool[] = [];
  const files = new Map<string, { sha256: string; size: number }>(); // `${i}/${v}` -> content digest
  const fileOf = (i: number, v: number): { sha256: string; size: number } => {
    let f = files.get(`${i}/${v}`);
    if (!f) {
      const data = content(seed, i, v);
      files.set(`${i}/${v}`, (f = { sha256: sha(data), size: data.length }));
    }
    return f;
  };
  const expected = new Map<string, number[]>(); // point id -> the variant of each file
  const expectedLogs = new Map<string, { sha256: string; generation: number }>(); // record name -> bytes
  const stats = {
    backups: 0, slowBackups: 0, fulls: 0, retries: 0, reusedFromParent: 0, prunes: 0, deletes: 0, gcs: 0, gcRetries: 0, gcMs: 0, condemned: 0, packsDeleted: 0, repacked: 0, bytesFreed: 0,
    logs: 0, logRetries: 0, logsPruned: 0, restores: 0, logReads: 0,
  };
  const failures: string[] = [];
  const started = Date.now();
  const floorsMet = (): boolean => stats.backups >= FLOOR.backups && stats.gcs >= FLOOR.gcs && stats.prunes + stats.deletes >= FLOOR.prunes && stats.logs >= FLOOR.logs
    && stats.logsPruned >= FLOOR.logsPruned && stats.slowBackups >= FLOOR.slowBackups && stats.restores >= FLOOR.restores;
  const running = (): boolean => failures.length === 0 && Date.now() - started < GIVE_UP_MS && !(floorsMet() && Date.now() - started >= SOAK_MS);
  const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

  /**
   * The invariant itself, checked as soon as a point or record is committed: none of its chunks
   * is condemned, so a view at the current epoch has every one of them, unless it was deleted
   * meanwhile.
   */
  const assertWhole = async (pool: Pool, digests: () => Promise<Iterable<string>>, stillThere: () => boolean, what: string): Promise<void> => {
    let lost: string[];
    try {
      const all = await digests(); // a point's manifest is read first: it may be lost too
      await pool.freshView();
      lost = [...all].filter((d) => !pool.index.has(d));
    } catch (err) {
      if (stillThere()) throw err;
      return;
    }
    if (lost.length > 0 && stillThere()) assert.fail(`${what}: ${lost.length} of its chunks condemned or gone right after its commit (first ${lost[0]})`);
  };

  /** One backup as the agent does it; returns the point id, or the refusal on RETRY. */
  const backup = async (pool: Pool, source: string, versions: number[], o: { commitDelayMs: number; meta?: Record<string, unknown> }): Promise<{ id: string } | { refused: string }> => {
    const parent = pool.catalog.latestPoint(source);
    const prev = new Map<string, FileEntry>();
    try {
      if (parent) for await (const e of readManifest(pool.reader, parent.manifest)) if (hasContent(e)) prev.set(e.path, e);
    } catch (err) {
      // Pruned and collected while it was read: the sync fails, and runs again.
      if (parent && !pool.catalog.pointExists(parent.id)) return { refused: `parent ${parent.id} is gone: ${(err as Error).message}` };
      throw err;
    }
    const session = pool.startSession(0);
    let row: PointRow;
    try {
      const writer = new ManifestWriter(session, 'dir');
      await writer.add(ROOT);
      for (const [i, v] of versions.entries()) {
        const path = `f${i}`;
        const meta = fileMeta(i, v);
        const old = prev.get(path);
        let chunks: ChunkRef[];
        let size: number;
        if (old && old.mtimeNs === meta.mtimeNs) {
          chunks = old.chunks; // unchanged: the parent's list, not asked for
          size = old.size;
          stats.reusedFromParent++;
        } else {
          const data = content(seed, i, v);
          const pieces = split(data);
          chunks = pieces.map((p) => [digestOf(p), p.length]);
          const want = await session.want(chunks.map(([d]) => d));
          await session.put(pieces.filter((_, k) => want[k]).map((p) => ({ digest: digestOf(p), length: p.length, encoded: encodeChunk(p, 0) })));
          size = data.length;
        }
        await writer.add({ type: 'file', path, ...meta, size, chunks } satisfies Entry);
      }
      const manifest = await writer.finish();
      await session.finish();
      // A slow agent: the time between storing chunks and committing is where gc strikes.
      await sleep(o.commitDelayMs);
      row = {
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
        ...(o.meta ? { meta: o.meta } : {}),
      };
      await pool.commitPoint(row, `/src/${source}`, session);
    } catch (err) {
      session.abort();
      if (isHoldfastError(err) && err.code === 'RETRY') return { refused: err.message };
      throw err;
    }
    const { id, manifest } = row;
    expected.set(id, [...versions]);
    await assertWhole(pool, () => pointDigests(pool.reader, manifest), () => pool.catalog.pointExists(id), `point ${id} of ${source}`);
    return { id };
  };

  /** Backs up until a commit is accepted (RETRY is the commit check refusing a condemned chunk). */
  const backupUntilCommitted = async (pool: Pool, source: string, versions: number[], o: { commitDelayMs: () => number; meta?: Record<string, unknown> }): Promise<string> => {
    for (let attempt = 0; ; attempt++) {
      const r = await backup(pool, source, versions, { commitDelayMs: o.commitDelayMs(), meta: o.meta });
      if ('id' in r) return r.id;
      stats.retries++;
      if (attempt >= 10) throw new Error(`backup of ${source} refused 10 times in a row, last: ${r.refused}`);
    }
  };

  const change = (versions: number[], next: (v: number) => number): void => {
    for (let k = randInt(rng, 1, 3); k > 0; k--) {
      const i = randInt(rng, 0, FILES - 1);
      versions[i] = next(versions[i] as number);
    }
  };
  const otherVariant = (v: number): number => (v + randInt(rng, 1, VARIANTS - 1)) % VARIANTS;

  const backupLoop = async (pool: Pool, source: string): Promise<void> => {
    const versions = Array.from({ length: FILES }, () => randInt(rng, 0, VARIANTS - 1));
    while (running()) {
      change(versions, otherVariant);
      await backupUntilCommitted(pool, source, versions, { commitDelayMs: () => randInt(rng, 0, 200) });
      stats.backups++;
    }
  };

  /**
   * Backups whose changed files have contents no other source has, committed after gc's clock
   * margin: gc may condemn chunks of packs that old, and only the session's lease stops it.
   */
  const slowLoop = async (pool: Pool): Promise<void> => {
    let fresh = 1000;
    const versions = Array.from({ length: FILES }, () => fresh++);
    while (running()) {
      change(versions, () => fresh++);
      // Only the first attempt is slow: a retry that waited as long would reuse by asking the chunks
      // its refused attempt left, which a gc running meanwhile condemns again (refused in turn,
      // as long as gc runs back to back; a scheduled gc does not).
      let attempt = 0;
      await backupUntilCommitted(pool, 'slow', versions, { commitDelayMs: () => (attempt++ === 0 ? randInt(rng, ...SLOW_COMMIT_MS) : randInt(rng, 0, 200)) });
      stats.slowBackups++;
      await sleep(randInt(rng, 500, 2000)); // room for gc to condemn without this lease in the way
    }
  };

  /**
   * A file variant no committed point has: garbage that gc may not have condemned yet (then the
   * pool still offers it, and the record reuses it by asking, as a sync would).
   */
  const garbageFile = (pool: Pool): [number, number] => {
    const i = randInt(rng, 0, FILES - 1);
    const live = new Set(pool.catalog.points().map((p) => expected.get(p.id)?.[i]));
    const dead = Array.from({ length: VARIANTS }, (_, v) => v).filter((v) => !live.has(v));
    return [i, dead[randInt(rng, 0, dead.length - 1)] ?? randInt(rng, 0, VARIANTS - 1)];
  };

  /**
   * A database source: each recovery point opens a generation, and log records of that generation
   * follow it. A record's chunks are those of a file variant that no point has (garbage, often not
   * condemned yet) and one of its own. A refused record is sent again under the same name, as an
   * agent does.
   */
  const logLoop = async (pool: Pool): Promise<void> => {
    const versions = Array.from({ length: FILES }, () => randInt(rng, 0, VARIANTS - 1));
    for (let generation = 0; running(); generation++) {
      change(versions, otherVariant);
      await backupUntilCommitted(pool, 'db', versions, { commitDelayMs: () => randInt(rng, 0, 100), meta: { generation } });
      stats.fulls++;
      for (let k = randInt(rng, 2, 6); k > 0 && running(); k--) {
        const name = `${String(generation).padStart(6, '0')}-${k}`;
        const [i, v] = garbageFile(pool);
        const pieces = [...split(content(seed, i, v)), randomBytes(randInt(rng, 1, 8192))];
        const manifest: ChunkRef[] = pieces.map((p) => [digestOf(p), p.length]);
        for (let attempt = 0; ; attempt++) {
          const session = pool.startSession(0);
          try {
            const want = await session.want(manifest.map(([d]) => d));
            await session.put(pieces.filter((_, j) => want[j]).map((p) => ({ digest: digestOf(p), length: p.length, encoded: encodeChunk(p, 0) })));
            await session.finish();
            await sleep(randInt(rng, 0, 250));
            const r = await pool.commitLog({ source: 'db', name, kind: 'sqlite-wal', meta: { generation }, manifest }, session);
            assert.equal(r.duplicate, false, `log ${name} committed twice`);
            break;
          } catch (err) {
            session.abort();
            if (!isHoldfastError(err) || err.code !== 'RETRY' || attempt >= 10) throw err;
            stats.logRetries++;
          }
        }
        expectedLogs.set(name, { sha256: sha(Buffer.concat(pieces)), generation });
        await assertWhole(pool, () => Promise.resolve(manifest.map(([d]) => d)), () => pool.catalog.log('db', name) !== undefined, `log ${name}`);
        stats.logs++;
      }
    }
  };

  const pruneLoop = async (pool: Pool): Promise<void> => {
    const sources = ['alpha', 'beta', 'db', 'slow'];
    while (running()) {
      await sleep(randInt(rng, 0, 30));
      const source = sources[randInt(rng, 0, sources.length - 1)] as string;
      if (!pool.catalog.source(source)) continue;
      const points = pool.catalog.points(source);
      if (points.length < 2) continue;
      if (rng() < 0.4) {
        const r = await prunePoints(pool, { last: randInt(rng, 1, 2) }, { source });
        stats.prunes++;
        stats.logsPruned += r.logsRemoved ?? 0;
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
      let r;
      try {
        r = await runGc(pool, { repackBelow: rng() < 0.5 ? 0.5 : 0.95 });
      } catch (err) {
        // Points or records kept being committed while it marked: it condemned nothing.
        if (!isHoldfastError(err) || err.code !== 'RETRY') throw err;
        stats.gcRetries++;
        continue;
      }
      stats.gcs++;
      stats.gcMs += r.durationMs;
      stats.condemned += r.condemnedChunks;
      stats.packsDeleted += r.packsDeleted;
      stats.repacked += r.packsRepacked;
      stats.bytesFreed += r.bytesFreed;
    }
  };

  /** Restores `point` as `holdfast restore` does and compares bytes and metadata with what was backed up. */
  const restoreAndCompare = async (pool: Pool, p: PointRow, label: string): Promise<void> => {
    const versions = expected.get(p.id);
    assert.ok(versions, `point ${p.id} was not made by this test`);
    const to = join(s.dir, `restore-${p.id}-${randomBytes(3).toString('hex')}`);
    try {
      await localRestore(pool, { source: p.source, point: p.id, to, overwrite: false });
      const want = new Map<string, NodeSnapshot>([['.', { type: 'dir', mode: ROOT.mode, uid: ROOT.uid, gid: ROOT.gid, xattrs: {}, mtimeNs: ROOT.mtimeNs }]]);
      for (const [i, v] of versions.entries()) {
        const { xattrs, ...m } = fileMeta(i, v);
        want.set(`f${i}`, { type: 'file', ...m, xattrs: xattrs ?? {}, ...fileOf(i, v) });
      }
      assert.deepEqual(snapshotTree(to), want, `point ${p.id} of ${p.source} does not restore as backed up (${label})`);
    } finally {
      rmSync(to, { recursive: true, force: true });
    }
  };

  const readLog = async (pool: Pool, source: string, name: string): Promise<void> => {
    const row = pool.catalog.log(source, name);
    assert.ok(row, `log ${name} is gone`);
    const want = expectedLogs.get(name);
    assert.ok(want, `log ${name} was not made by this test`);
    assert.equal(sha(Buffer.concat(await pool.reader.read(row.manifest))), want.sha256, `log ${name} does not read back as committed`);
  };

  /** Restores random committed points and reads random log records while everything runs: a lost chunk shows up here. */
  const readLoop = async (pool: Pool): Promise<void> => {
    while (running()) {
      await sleep(randInt(rng, 50, 250));
      const all = pool.catalog.points();
      const p = all[randInt(rng, 0, Math.max(0, all.length - 1))];
      if (p && expected.has(p.id)) {
        try {
          await restoreAndCompare(pool, p, 'while running');
          stats.restores++;
        } catch (err) {
          // Deleted meanwhile (prune) and then collected: not a loss.
          if (pool.catalog.pointExists(p.id)) throw explain(pool, err);
        }
      }
      // The newest record (the likeliest to have been committed against a condemned chunk) and another.
      const logs = pool.catalog.logs('db');
      for (const l of new Set([logs.at(-1), logs[randInt(rng, 0, Math.max(0, logs.length - 1))]])) {
        if (!l) continue;
        try {
          await readLog(pool, 'db', l.name);
          stats.logReads++;
        } catch (err) {
          if (pool.catalog.log('db', l.name)) throw explain(pool, err);
        }
      }
    }
  };

  /**
   * Where a chunk a read could not find is on disk, for the failure message: a view that missed a
   * live copy (a reader's race) and a chunk really gone (a loss) need different fixes.
   */
  const whereIs = (pool: Pool, err: unknown): string => {
    const digest = isHoldfastError(err) ? (err.details as { digest?: string } | undefined)?.digest : undefined;
    if (!digest) return '';
    const copies: string[] = [];
    for (const f of readdirSync(pool.paths.index).filter((n) => n.endsWith('.idx'))) {
      let entries;
      try {
        entries = decodeIndex(readFileSync(join(pool.paths.index, f)));
      } catch {
        continue; // deleted meanwhile
      }
      if (typeof entries === 'string') continue;
      const id = f.slice(0, -'.idx'.length);
      if (entries.some((e) => e.digest === digest)) copies.push(`${id}${existsSync(pool.paths.pack(id)) ? '' : ' (pack file missing)'}`);
    }
    const condemned = pool.catalog.condemned().filter((c) => c.digest === digest).map((c) => `${c.pack} ${c.reason}${c.deletedAt ? ' deleted' : ''}`);
    return `\nchunk ${digest}: index files now naming it [${copies.join(', ')}], condemned [${condemned.join(', ')}], reader view epoch ${pool.viewEpoch}, catalog epoch ${pool.catalog.epoch()}`;
  };
  const explain = (pool: Pool, err: unknown): Error => Object.assign(new Error(`${(err as Error).stack ?? String(err)}${whereIs(pool, err)}`), { cause: err });

  const guard = (p: Promise<void>): Promise<void> => p.catch((err: unknown) => void failures.push((err as Error).stack ?? String(err)));
  try {
    await Pool.init(dir, { packSize: 256 * 1024 });
    for (let i = 0; i < 7; i++) pools.push(await Pool.open(dir, { codec }));
    const [a, b, lg, sl, pr, gc, rd] = pools as [Pool, Pool, Pool, Pool, Pool, Pool, Pool];
    await Promise.all([guard(backupLoop(a, 'alpha')), guard(backupLoop(b, 'beta')), guard(logLoop(lg)), guard(slowLoop(sl)), guard(pruneLoop(pr)), guard(gcLoop(gc)), guard(readLoop(rd))]);
    const summary = `seed ${seed}, ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(stats)}`;
    t.diagnostic(summary);
    assert.deepEqual(failures, [], summary);
    assert.ok(floorsMet(), `too little happened in ${GIVE_UP_MS / 1000} s: ${summary}`);
    for (const p of pools.splice(0)) await p.close();

    const fresh = await Pool.open(dir, { codec });
    pools.push(fresh);
    await runGc(fresh);
    const v = await verifyPool(fresh, { full: true });
    assert.ok(v.ok, `verify --full: ${JSON.stringify({ problems: v.problems, chunks: v.damagedChunks.slice(0, 3), points: v.damagedPoints.slice(0, 3), logs: v.damagedLogs?.slice(0, 3) })}\n${summary}`);
    const remaining = fresh.catalog.points();
    for (const p of remaining) await restoreAndCompare(fresh, p, summary);
    // Every record from the oldest kept point's generation on is still there, and reads back.
    const oldest = fresh.catalog.points('db')[0];
    const kept = fresh.catalog.logs('db');
    const needed = [...expectedLogs].filter(([, l]) => oldest !== undefined && l.generation >= Number(oldest.meta?.generation)).map(([name]) => name);
    const keptNames = new Set(kept.map((l) => l.name));
    assert.deepEqual(needed.filter((n) => !keptNames.has(n)), [], `log records a kept point needs were pruned\n${summary}`);
    for (const l of kept) await readLog(fresh, 'db', l.name);
    t.diagnostic(`${remaining.length} remaining points restored and ${kept.length} log records read back bit-exact`);
  } finally {
    for (const p of pools) await p.close();
    await codec.close();
    s.cleanup();
  }
});
