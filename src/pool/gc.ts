/**
 * Garbage collection: gives back the space of chunks no recovery point needs, while syncs keep
 * running (docs/design.md, "Garbage collection and concurrent syncs").
 *
 * 1. mark: every digest of every committed point (gc-mark.ts);
 * 2. condemn, in ONE catalog transaction: check that every point committed since marking began
 *    is marked (else mark it and try again), reap dead leases, and move every unmarked chunk of a
 *    pack that became visible before the oldest live lease into the condemned set;
 * 3. sweep: delete packs left with no live chunk; copy the live chunks of packs whose live share
 *    is below `repackBelow` into new packs (durable, with their index files) and then delete the
 *    old index files and packs; record the deletions; forget deleted locations that no live
 *    session can still hold in its view;
 * 4. remove leftovers of crashed writers: temporary files, packs without an index file, point
 *    files without a catalog row, all older than the oldest live lease.
 *
 * Every step is safe to interrupt: the condemned set is durable, so the next gc finishes the
 * sweep; copies are durable before originals are deleted; index files go before their packs.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, unlink, access } from 'node:fs/promises';
import { join } from 'node:path';
import { HoldfastError, throwIfAborted } from '../core/errors.js';
import type { Pool } from './pool.js';
import { markNew, type Marks } from './gc-mark.js';
import { loadPackTable, type PackInfo } from './gc-packs.js';
import { LEASE_TTL_MS, holderGone, releasedHere } from './lease.js';
import type { LeaseRow } from './catalog.js';
import { fsyncDir } from './durable.js';
import type { IndexEntry } from './index-file.js';

/**
 * Repack a pack when less than this share of its chunk bytes is live. At 0.5 every byte copied
 * frees at least one byte (write amplification at most 1), and most garbage comes back anyway by
 * deleting whole packs, since a sync's chunks share packs and age out together.
 */
export const DEFAULT_REPACK_BELOW = 0.5;
/** Slack for file times against Date.now() (kernel timestamps are coarse). */
export const CLOCK_MARGIN_MS = 2000;

export type GcPhase = 'mark' | 'repack' | 'delete' | 'cleanup';

export interface GcOptions {
  dryRun?: boolean;
  repackBelow?: number;
  signal?: AbortSignal;
  onProgress?: (phase: GcPhase, done: number, total: number) => void;
  /** test hook: called between the steps, to kill or pause gc there */
  onStep?: (step: string) => Promise<void> | void;
}

export interface GcReport {
  dryRun: boolean;
  points: number;
  liveChunks: number;
  /** chunk locations newly condemned by this run (would be, for a dry run) */
  condemnedChunks: number;
  condemnedBytes: number;
  /** chunks (locations) whose bytes left the pool */
  chunksFreed: number;
  packsDeleted: number;
  packsRepacked: number;
  /** packs sealed while gc repacked (in a server, packs of running syncs count too: the writer is shared) */
  packsWritten: number;
  bytesRewritten: number;
  /** pack and index bytes deleted minus bytes written */
  bytesFreed: number;
  leftovers: { tempFiles: number; packs: number; pointFiles: number; bytes: number };
  /** packs too young to judge: a live sync may still need their chunks */
  youngPacks: number;
  liveLeases: number;
  durationMs: number;
}

export async function runGc(pool: Pool, o: GcOptions = {}): Promise<GcReport> {
  const started = Date.now();
  const dryRun = o.dryRun === true;
  const repackBelow = o.repackBelow ?? DEFAULT_REPACK_BELOW;
  if (!(repackBelow >= 0 && repackBelow <= 1)) throw new HoldfastError('BAD_ARGUMENT', `repack threshold must be between 0 and 1, not ${repackBelow}`);
  const holder = { host: hostname(), pid: process.pid, id: randomBytes(8).toString('hex') };
  let lockLost: string | undefined;
  const step = async (name: string): Promise<void> => {
    throwIfAborted(o.signal);
    // Another gc took the lock (this one was stalled past the TTL): stop before changing more.
    if (lockLost) throw new HoldfastError('CONFLICT', `gc on storage pool ${pool.dir} lost its lock to ${lockLost}; stopped`, { pool: pool.dir });
    await o.onStep?.(name);
  };
  let lockTimer: NodeJS.Timeout | undefined;
  if (!dryRun) {
    const other = pool.catalog.immediate(() => pool.catalog.takeGcLock(holder, Date.now(), Date.now() - LEASE_TTL_MS, holderGone));
    if (other) throw new HoldfastError('CONFLICT', `another gc is running on storage pool ${pool.dir} (${other})`, { pool: pool.dir });
    lockTimer = setInterval(() => {
      try {
        lockLost ??= pool.catalog.immediate(() => pool.catalog.takeGcLock(holder, Date.now(), Date.now() - LEASE_TTL_MS, holderGone));
      } catch {
        // busy: the next renewal tries again
      }
    }, 30_000).unref();
  }
  const report: GcReport = {
    dryRun,
    points: 0,
    liveChunks: 0,
    condemnedChunks: 0,
    condemnedBytes: 0,
    chunksFreed: 0,
    packsDeleted: 0,
    packsRepacked: 0,
    packsWritten: 0,
    bytesRewritten: 0,
    bytesFreed: 0,
    leftovers: { tempFiles: 0, packs: 0, pointFiles: 0, bytes: 0 },
    youngPacks: 0,
    liveLeases: 0,
    durationMs: 0,
  };
  try {
    // The listing comes first: packs that appear later are never judged by this run.
    const table = await loadPackTable(pool.paths);
    const marks: Marks = { live: new Set(), points: new Set(), logs: new Set() };
    const total = pool.catalog.pointIds().length;
    await markNew(pool, marks, { signal: o.signal, onProgress: (d) => o.onProgress?.('mark', d, total) });
    await step('marked');

    // Condemn: one transaction, retried while points keep being committed under the mark.
    let cutoff = 0;
    for (let attempt = 0; ; attempt++) {
      await markNew(pool, marks, { signal: o.signal });
      const res = pool.catalog[dryRun ? 'snapshot' : 'immediate'](() => {
        if (pool.catalog.pointIds().some((id) => !marks.points.has(id))) return undefined;
        if (pool.catalog.logKeys().some((k) => !marks.logs?.has(k))) return undefined;
        const now = Date.now();
        if (!dryRun) pool.catalog.reapLeases(now - LEASE_TTL_MS, holderGone);
        const live = liveLeases(pool, now);
        const oldest = Math.min(now, ...live.map((l) => l.started));
        const cut = oldest - CLOCK_MARGIN_MS;
        const rows: Array<{ digest: string; pack: string; storedLength: number }> = [];
        let young = 0;
        for (const p of table.packs.values()) {
          if (p.visibleSince >= cut) {
            young++;
            continue;
          }
          for (const e of p.entries) if (!marks.live.has(e.digest)) rows.push({ digest: e.digest, pack: p.id, storedLength: e.storedLength });
        }
        let added = rows.length;
        if (!dryRun) {
          added = pool.catalog.condemn(rows, 'gc', now);
          if (added > 0) pool.catalog.bumpEpoch();
        }
        return { cut, young, leases: live.length, added, bytes: rows.reduce((n, r) => n + r.storedLength, 0) };
      });
      if (res) {
        cutoff = res.cut;
        report.youngPacks = res.young;
        report.liveLeases = res.leases;
        report.condemnedChunks = res.added;
        report.condemnedBytes = res.bytes;
        break;
      }
      if (attempt >= 20) throw new HoldfastError('RETRY', `recovery points kept being committed while gc marked storage pool ${pool.dir}; run gc again`, { pool: pool.dir });
    }
    report.points = marks.points.size;
    report.liveChunks = marks.live.size;
    await step('condemned');

    await sweep(pool, table.packs, marks, cutoff, repackBelow, dryRun, report, o, step);
    if (!dryRun) {
      await step('swept');
      await removeLeftovers(pool, table.packs, report, o);
    }
  } finally {
    if (lockTimer) clearInterval(lockTimer);
    if (!dryRun) {
      try {
        pool.catalog.immediate(() => pool.catalog.releaseGcLock(holder.id));
      } catch {
        // the lock expires on its own
      }
    }
  }
  report.durationMs = Date.now() - started;
  return report;
}

/** Deletes dead packs, repacks sparse ones, and records it. */
async function sweep(
  pool: Pool,
  packs: Map<string, PackInfo>,
  marks: Marks,
  cutoff: number,
  repackBelow: number,
  dryRun: boolean,
  report: GcReport,
  o: GcOptions,
  step: (name: string) => Promise<void>,
): Promise<void> {
  const condemnedRows = pool.catalog.condemned().filter((c) => c.deletedAt === null);
  const condemned = new Set(condemnedRows.map((c) => c.digest + c.pack));
  // In a dry run, the chunks this run would have condemned count as condemned.
  if (dryRun) {
    for (const p of packs.values()) if (p.visibleSince < cutoff) for (const e of p.entries) if (!marks.live.has(e.digest)) condemned.add(e.digest + p.id);
  }
  // Rows of packs already gone (a gc interrupted after deleting files) are finished now.
  const gone = [...new Set(condemnedRows.map((c) => c.pack))].filter((id) => !packs.has(id));
  if (!dryRun && gone.length > 0) pool.catalog.immediate(() => pool.catalog.markPacksDeleted(gone, Date.now()));

  const isLive = (e: IndexEntry, pack: string): boolean => !condemned.has(e.digest + pack);
  const candidates = [...packs.values()].filter((p) => p.visibleSince < cutoff && p.entries.some((e) => !isLive(e, p.id)));
  const candidateIds = new Set(candidates.map((p) => p.id));
  // Live digests with a copy in a pack this run leaves alone need no copy from a candidate.
  const keptElsewhere = new Set<string>();
  for (const p of packs.values()) if (!candidateIds.has(p.id)) for (const e of p.entries) if (isLive(e, p.id)) keptElsewhere.add(e.digest);

  const dead: PackInfo[] = [];
  const repack: PackInfo[] = [];
  for (const p of candidates) {
    let needed = 0;
    for (const e of p.entries) if (isLive(e, p.id) && !keptElsewhere.has(e.digest)) needed += e.storedLength;
    if (needed === 0) dead.push(p);
    else if (needed < repackBelow * p.dataBytes) repack.push(p);
  }

  // Dead packs first: on a full pool that frees the room repacking needs.
  const countFreed = (p: PackInfo): void => {
    for (const e of p.entries) if (!isLive(e, p.id)) report.chunksFreed++;
  };
  if (dryRun) {
    for (const p of [...dead, ...repack]) {
      countFreed(p);
      report.bytesFreed += p.dataBytes;
    }
    report.packsDeleted = dead.length + repack.length;
    report.packsRepacked = repack.length;
    for (const p of repack) for (const e of p.entries) if (isLive(e, p.id) && !keptElsewhere.has(e.digest)) report.bytesRewritten += e.storedLength;
    report.bytesFreed -= report.bytesRewritten;
    return;
  }
  let done = 0;
  const totalWork = dead.length + repack.length;
  await deletePacks(pool, dead, report);
  for (const p of dead) countFreed(p);
  done += dead.length;
  o.onProgress?.('delete', done, totalWork);
  await step('deleted-dead');

  // Repack: copy the chunks still needed (verified on the way), then delete the originals.
  const copied = new Set<string>();
  let failure: Error | undefined;
  const owner = { failed: (err: Error): void => void (failure ??= err) };
  const packsBefore = pool.packs.packsWritten;
  const repacked: PackInfo[] = [];
  for (const p of repack) {
    await step('repack');
    let buf: Buffer;
    try {
      buf = await readFile(pool.paths.pack(p.id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // missing: verify reports it
      throw err;
    }
    const keep = p.entries.filter((e) => isLive(e, p.id) && !keptElsewhere.has(e.digest) && !copied.has(e.digest));
    const results = await pool.codec.decode(keep.map((e) => ({ data: buf.subarray(e.offset, e.offset + e.storedLength), flags: e.flags, length: e.length, digest: e.digest })));
    const bad = results.findIndex((r) => !r.ok);
    if (bad >= 0) continue; // a damaged live chunk: leave the pack alone for verify to report
    for (const e of keep) {
      await pool.packs.add(owner, e.digest, e.length, buf.subarray(e.offset, e.offset + e.storedLength), e.flags);
      copied.add(e.digest);
      report.bytesRewritten += e.storedLength;
    }
    repacked.push(p);
    o.onProgress?.('repack', ++done, totalWork);
  }
  await pool.packs.flush();
  if (failure) throw failure;
  report.packsWritten = pool.packs.packsWritten - packsBefore;
  await step('repacked');
  await deletePacks(pool, repacked, report);
  for (const p of repacked) countFreed(p);
  report.packsRepacked = repacked.length;
  // The pack writer is shared with the syncs running in this process (a server's): its byte
  // count includes their chunks. What gc wrote is what it copied, as the dry run counts it.
  report.bytesFreed -= report.bytesRewritten;
  pool.catalog.immediate(() => {
    const now = Date.now();
    pool.catalog.dropDeletedBefore(Math.min(now, ...liveLeases(pool, now).map((l) => l.started)) - CLOCK_MARGIN_MS);
  });
}

/** Index files first (then no new view names the packs), then the packs; then the catalog says so. */
async function deletePacks(pool: Pool, list: PackInfo[], report: GcReport): Promise<void> {
  if (list.length === 0) return;
  for (const p of list) {
    report.bytesFreed += await sizeOf(pool.paths.indexFile(p.id));
    await unlink(pool.paths.indexFile(p.id)).catch(ignoreMissing);
  }
  await fsyncDir(pool.paths.index);
  const dirs = new Set<string>();
  for (const p of list) {
    report.bytesFreed += await sizeOf(pool.paths.pack(p.id));
    await unlink(pool.paths.pack(p.id)).catch(ignoreMissing);
    dirs.add(pool.paths.packDir(p.id));
  }
  for (const d of dirs) await fsyncDir(d).catch(ignoreMissing);
  report.packsDeleted += list.length;
  const ids = list.map((p) => p.id);
  pool.catalog.immediate(() => {
    pool.catalog.markPacksDeleted(ids, Date.now());
    pool.catalog.forgetPacksVerified(ids);
  });
}

/** Files crashed writers left: all older than the oldest live lease, so no live writer owns them. */
async function removeLeftovers(pool: Pool, known: Map<string, PackInfo>, report: GcReport, o: GcOptions): Promise<void> {
  const now = Date.now();
  const cutoff = Math.min(now, ...liveLeases(pool, now).map((l) => l.started)) - CLOCK_MARGIN_MS;
  const old = async (f: string): Promise<number | undefined> => {
    try {
      const s = await stat(f);
      return s.mtimeMs < cutoff ? s.size : undefined;
    } catch {
      return undefined;
    }
  };
  const remove = async (f: string, kind: 'tempFiles' | 'packs' | 'pointFiles'): Promise<void> => {
    const size = await old(f);
    if (size === undefined) return;
    await unlink(f).catch(ignoreMissing);
    report.leftovers[kind]++;
    report.leftovers.bytes += size;
  };
  for (const f of await readdir(pool.paths.index)) if (f.includes('.tmp-')) await remove(join(pool.paths.index, f), 'tempFiles');
  const points = new Set(pool.catalog.pointIds());
  for (const f of await readdir(pool.paths.points)) {
    if (f.includes('.tmp-')) await remove(join(pool.paths.points, f), 'tempFiles');
    else if (f.endsWith('.json') && !points.has(f.slice(0, -'.json'.length))) {
      // Re-checked at the last moment: a commit writes its point file just before its row.
      if (!pool.catalog.pointExists(f.slice(0, -'.json'.length))) await remove(join(pool.paths.points, f), 'pointFiles');
    }
  }
  const subs = await readdir(pool.paths.packs);
  let done = 0;
  for (const sub of subs) {
    const dir = join(pool.paths.packs, sub);
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      if (f.includes('.tmp-')) await remove(join(dir, f), 'tempFiles');
      else if (f.endsWith('.pack')) {
        const id = f.slice(0, -'.pack'.length);
        if (known.has(id)) continue;
        // A pack is written before its index file: only one still without it after the cutoff is an orphan.
        const indexed = await access(pool.paths.indexFile(id)).then(() => true, () => false);
        if (!indexed) await remove(join(dir, f), 'packs');
      }
    }
    o.onProgress?.('cleanup', ++done, subs.length);
  }
}

/**
 * Leases of sessions that may still commit (a dry run does not reap, so it filters the same way).
 * A lease this process released is over even if its row lingers (a full pool refused the deletion:
 * waiting for it would keep gc from making room).
 */
function liveLeases(pool: Pool, now: number): LeaseRow[] {
  return pool.catalog.leases().filter((l) => l.renewed >= now - LEASE_TTL_MS && !holderGone(l.host, l.pid) && !releasedHere(l.id));
}

async function sizeOf(f: string): Promise<number> {
  return stat(f).then((s) => s.size, () => 0);
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}
