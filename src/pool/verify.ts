/**
 * Verify: proves that every recovery point can be restored. The quick pass checks that indexes
 * are whole, every pack they name exists and is long enough, and every chunk every manifest
 * needs is indexed. `full` also reads every pack and re-hashes every chunk (with `olderThanMs`,
 * only packs not re-hashed within that span). Damage is mapped back to the recovery points and
 * files that need it.
 *
 * Unless `record` is false, the run is recorded in the catalog in one transaction: each point's
 * result and time, each re-hashed pack's time, and each damaged chunk location is condemned
 * (reason 'damaged'). A condemned location leaves every index view, so the next sync of a source
 * that still has the data is told the pool lacks the chunk and sends it again (the heal), and the
 * damaged points are not used as a sync's parent (catalog.latestPoint), so their files are read
 * again. Old points then restore through the healed copy; the next verify marks them sound.
 */
import { open } from 'node:fs/promises';
import { readManifest } from '../core/manifest-io.js';
import { hasContent } from '../core/manifest.js';
import { errnoCode, isHoldfastError } from '../core/errors.js';
import type { DecodeItem } from '../workers/codec-pool.js';
import { parseTail, parseTrailer, TAIL_BYTES } from './pack-format.js';
import type { ChunkLocation } from './chunk-index.js';
import type { Pool } from './pool.js';
import { loadPackTable } from './gc-packs.js';
import { logsOfPoint } from './log-chain.js';
import type { LogRow } from './catalog.js';

export interface DamagedChunk {
  digest: string;
  pack: string;
  reason: string;
}

export interface DamagedPoint {
  point: string;
  source: string;
  time: string;
  reason?: string;
  files: string[];
  /** damaged log records a restore of the point needs (a PostgreSQL express full: start to stop segment) */
  logs?: string[];
}

export interface VerifyReport {
  ok: boolean;
  full: boolean;
  /** packs not re-hashed because they were within `olderThanMs` (they got the quick check) */
  recentPacks: number;
  /** damaged chunk locations taken out of service, so that the next syncs send them again */
  condemned: number;
  points: number;
  chunks: number;
  packs: number;
  bytesRead: number;
  problems: string[];
  damagedChunks: DamagedChunk[];
  damagedPoints: DamagedPoint[];
  /** log records checked, and those with a damaged or missing chunk (their chain has a hole) */
  logs?: number;
  damagedLogs?: Array<{ source: string; name: string; seq: number; reason: string }>;
}

export interface VerifyOptions {
  full: boolean;
  /** with full: re-hash only packs not re-hashed within this many milliseconds */
  olderThanMs?: number;
  /** record results and condemn damaged locations in the catalog (default true) */
  record?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export async function verifyPool(pool: Pool, o: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const lastHashed = o.full && o.olderThanMs !== undefined ? pool.catalog.packsVerified() : new Map<string, number>();
  const hashed: string[] = [];
  let recentPacks = 0;
  const problems: string[] = pool.damagedIndexes.map((d) => `index ${d}`);
  const damaged = new Map<string, DamagedChunk>();
  const byPack = new Map<string, Array<[string, ChunkLocation]>>();
  const add = (digest: string, loc: ChunkLocation): void => {
    let list = byPack.get(loc.pack);
    if (!list) byPack.set(loc.pack, (list = []));
    list.push([digest, loc]);
  };
  for (const [digest, loc] of pool.index.entries()) add(digest, loc);
  // Locations an earlier run found damaged and no sync has healed yet are checked (and reported)
  // again; one that is sound now (its pack was repaired) returns to service.
  const recheck = new Set<string>();
  const damagedBefore = pool.catalog.damagedLocations().filter((d) => !pool.index.has(d.digest));
  if (damagedBefore.length > 0) {
    const wanted = new Map(damagedBefore.map((d) => [d.digest + d.pack, d]));
    const table = await loadPackTable(pool.paths);
    for (const d of damagedBefore) if (!table.packs.has(d.pack)) add(d.digest, { pack: d.pack, offset: 0, storedLength: 0, length: 0, flags: 0 });
    for (const p of table.packs.values()) {
      for (const e of p.entries) {
        if (!wanted.has(e.digest + p.id)) continue;
        add(e.digest, { pack: p.id, offset: e.offset, storedLength: e.storedLength, length: e.length, flags: e.flags });
        recheck.add(e.digest + p.id);
      }
    }
  }
  let bytesRead = 0;
  let packsDone = 0;
  for (const [pack, list] of byPack) {
    const recent = o.olderThanMs !== undefined && (lastHashed.get(pack) ?? 0) >= started - o.olderThanMs;
    if (o.full && recent) recentPacks++;
    if (o.full && !recent) {
      bytesRead += await checkPackFull(pool, pack, list, damaged, problems);
      hashed.push(pack);
    } else await checkPackQuick(pool, pack, list, damaged, problems);
    o.onProgress?.(++packsDone, byPack.size);
  }
  const repaired = [...recheck].filter((k) => !damaged.has(k.slice(0, 64)));
  // A pack that vanished may have been repacked by a gc running meanwhile: look again.
  const missing = [...damaged.values()].filter((c) => c.reason === 'pack file missing');
  if (missing.length > 0) {
    await pool.refreshIndex();
    const known = new Set(damagedBefore.map((d) => d.digest + d.pack));
    for (const c of missing) if (!known.has(c.digest + c.pack) && pool.index.get(c.digest)?.pack !== c.pack) damaged.delete(c.digest);
  }
  // Still damaged from before and not healed (a quick pass cannot see a flipped byte): say so.
  for (const d of damagedBefore) {
    if (damaged.has(d.digest) || pool.index.has(d.digest) || (o.full && repaired.includes(d.digest + d.pack))) continue;
    damaged.set(d.digest, { digest: d.digest, pack: d.pack, reason: 'found damaged by an earlier verify; not healed yet' });
  }

  const damagedPoints: DamagedPoint[] = [];
  const points = pool.catalog.points();
  for (const p of points) {
    const files = new Set<string>();
    let reason: string | undefined;
    try {
      for await (const e of readManifest(pool.reader, p.manifest)) {
        if (!hasContent(e)) continue;
        for (const [digest] of e.chunks) {
          if (damaged.has(digest)) files.add(e.path);
          else if (!pool.index.has(digest)) {
            files.add(e.path);
            damaged.set(digest, { digest, pack: '-', reason: 'not in any index' });
          }
        }
      }
    } catch (err) {
      if (!isHoldfastError(err)) throw err;
      reason = `manifest unreadable: ${err.message}`;
    }
    if (reason || files.size > 0) damagedPoints.push({ point: p.id, source: p.source, time: p.time, reason, files: [...files].sort() });
  }
  // Log records: raw chunk lists, no manifest; a damaged chunk breaks the chain from there on.
  const logs = pool.catalog.allLogs();
  const damagedLogs: NonNullable<VerifyReport['damagedLogs']> = [];
  for (const l of logs) {
    for (const [digest] of l.manifest) {
      let bad = damaged.get(digest);
      if (!bad && !pool.index.has(digest)) damaged.set(digest, (bad = { digest, pack: '-', reason: 'not in any index' }));
      if (bad) {
        damagedLogs.push({ source: l.source, name: l.name, seq: l.seq, reason: `chunk ${digest}: ${bad.reason}` });
        break;
      }
    }
  }
  // A point is damaged too when a record its own restore needs is (pool/log-chain.ts, logsOfPoint).
  if (damagedLogs.length > 0) {
    const badLogs = new Set(damagedLogs.map((l) => `${l.source}/${l.seq}`));
    const chains = new Map<string, LogRow[]>();
    for (const l of logs) {
      const chain = chains.get(l.source);
      if (chain) chain.push(l);
      else chains.set(l.source, [l]);
    }
    for (const p of points) {
      const needed = logsOfPoint(chains.get(p.source) ?? [], p)
        .filter((l) => badLogs.has(`${l.source}/${l.seq}`))
        .map((l) => l.name);
      if (needed.length === 0) continue;
      const d = damagedPoints.find((x) => x.point === p.id);
      if (d) d.logs = needed;
      else damagedPoints.push({ point: p.id, source: p.source, time: p.time, files: [], logs: needed });
    }
  }
  const damagedChunks = [...damaged.values()];
  let condemned = 0;
  if (o.record !== false) {
    const time = new Date(started).toISOString();
    const bad = new Map(damagedPoints.map((d) => [d.point, d]));
    const sound = new Set(hashed.filter((pk) => !damagedChunks.some((c) => c.pack === pk)));
    pool.catalog.immediate(() => {
      const located = damagedChunks.filter((c) => c.pack !== '-');
      condemned = pool.catalog.condemn(located, 'damaged', started);
      let restored = 0;
      if (o.full) for (const k of repaired) restored += pool.catalog.restoreLocation(k.slice(0, 64), k.slice(64));
      if (condemned > 0 || restored > 0) pool.catalog.bumpEpoch();
      for (const p of points) {
        if (!pool.catalog.pointExists(p.id)) continue; // deleted meanwhile
        const d = bad.get(p.id);
        pool.catalog.recordVerification({ point: p.id, time, full: o.full, ok: !d, detail: d ? damageDetail(d) : '' });
      }
      pool.catalog.setPacksVerified([...sound], started);
    });
    // This process's own view leaves the damaged locations out from now on.
    await pool.freshView();
  }
  return {
    ok: problems.length === 0 && damagedChunks.length === 0 && damagedPoints.length === 0 && damagedLogs.length === 0,
    full: o.full,
    recentPacks,
    condemned,
    points: points.length,
    chunks: pool.index.size,
    packs: byPack.size,
    bytesRead,
    problems,
    damagedChunks,
    damagedPoints,
    logs: logs.length,
    damagedLogs,
  };
}

/** What is wrong with a damaged point, in one line (its verification's detail). */
export function damageDetail(d: DamagedPoint): string {
  const parts = d.reason ? [d.reason] : [];
  if (d.files.length > 0) parts.push(`${d.files.length} damaged file(s): ${d.files.slice(0, 5).join(', ')}${d.files.length > 5 ? ', …' : ''}`);
  if (d.logs?.length) parts.push(`${d.logs.length} damaged log record(s) it needs: ${d.logs.slice(0, 3).join(', ')}${d.logs.length > 3 ? ', …' : ''}`);
  return parts.join('; ');
}

function markPack(list: Array<[string, ChunkLocation]>, pack: string, reason: string, damaged: Map<string, DamagedChunk>): void {
  for (const [digest] of list) damaged.set(digest, { digest, pack, reason });
}

/** Presence, length and tail of a pack: one small read each, no chunk data. */
async function checkPackQuick(pool: Pool, pack: string, list: Array<[string, ChunkLocation]>, damaged: Map<string, DamagedChunk>, problems: string[]): Promise<number> {
  let size: number;
  const tailBuf = Buffer.alloc(TAIL_BYTES);
  try {
    const fh = await open(pool.paths.pack(pack), 'r');
    try {
      size = (await fh.stat()).size;
      if (size >= TAIL_BYTES) await fh.read(tailBuf, 0, TAIL_BYTES, size - TAIL_BYTES);
    } finally {
      await fh.close();
    }
  } catch (err) {
    markPack(list, pack, errnoCode(err) === 'ENOENT' ? 'pack file missing' : `pack unreadable: ${(err as Error).message}`, damaged);
    return 0;
  }
  let dataEnd = size - TAIL_BYTES;
  const tail = size >= TAIL_BYTES ? parseTail(tailBuf) : 'pack too short';
  if (typeof tail === 'string') problems.push(`pack ${pack}: ${tail}`);
  else dataEnd -= tail.trailerBytes;
  for (const [digest, loc] of list) {
    if (loc.offset + loc.storedLength > dataEnd) damaged.set(digest, { digest, pack, reason: 'pack file is truncated' });
  }
  return 0;
}

async function checkPackFull(pool: Pool, pack: string, list: Array<[string, ChunkLocation]>, damaged: Map<string, DamagedChunk>, problems: string[]): Promise<number> {
  let buf: Buffer;
  try {
    const fh = await open(pool.paths.pack(pack), 'r');
    try {
      buf = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (err) {
    markPack(list, pack, errnoCode(err) === 'ENOENT' ? 'pack file missing' : `pack unreadable: ${(err as Error).message}`, damaged);
    return 0;
  }
  // The trailer is checked as well, since it is what an index rebuild would trust.
  const tail = parseTail(buf.subarray(Math.max(0, buf.length - TAIL_BYTES)));
  if (typeof tail === 'string') problems.push(`pack ${pack}: ${tail}`);
  else {
    const trailer = parseTrailer(buf.subarray(buf.length - TAIL_BYTES - tail.trailerBytes, buf.length - TAIL_BYTES), tail.hash);
    if (typeof trailer === 'string') problems.push(`pack ${pack}: ${trailer}`);
  }
  const items: DecodeItem[] = [];
  const digests: string[] = [];
  for (const [digest, loc] of list) {
    if (loc.offset + loc.storedLength > buf.length) {
      damaged.set(digest, { digest, pack, reason: 'pack file is truncated' });
      continue;
    }
    items.push({ data: buf.subarray(loc.offset, loc.offset + loc.storedLength), flags: loc.flags, length: loc.length, digest });
    digests.push(digest);
  }
  const results = await pool.codec.decode(items);
  results.forEach((r, i) => {
    if (!r.ok) {
      const digest = digests[i] as string;
      damaged.set(digest, { digest, pack, reason: r.reason });
    }
  });
  return buf.length;
}
