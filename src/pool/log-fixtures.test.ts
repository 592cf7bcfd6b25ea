/**
 * Shared by the unit tests of log chains (log-chain.test.ts, the server's maintenance.test.ts):
 * ships a log record into a pool the way the server does (chunks first through a write session,
 * then the commit), commits a small real recovery point of a database source with the meta that
 * ties it to its chain, and damages a stored chunk in place. No tests of its own (like
 * tracker.case.test.ts, it only exports).
 */
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { encodeChunk } from '../core/codec.js';
import { digestOf } from '../core/digest.js';
import type { ChunkRef } from '../core/manifest.js';
import { ManifestWriter } from '../core/manifest-io.js';
import type { LogKind, PointRow } from './catalog.js';
import type { CommittedLog } from './log-chain.js';
import type { Pool } from './pool.js';

/** Stores `data` as raw 64 KiB chunks through a write session and commits it as a log record. */
export async function ship(
  pool: Pool,
  source: string,
  name: string,
  data: Buffer,
  meta: Record<string, unknown> = {},
  kind: LogKind = 'pg-wal',
): Promise<CommittedLog & { manifest: ChunkRef[] }> {
  const s = pool.startSession(1);
  const manifest: ChunkRef[] = [];
  for (let off = 0; off < data.length; off += 65536) {
    const piece = data.subarray(off, off + 65536);
    const digest = digestOf(piece);
    manifest.push([digest, piece.length]);
    if (s.claim(digest)) await s.put([{ digest, length: piece.length, encoded: encodeChunk(piece, 1) }]);
  }
  await s.finish();
  const r = await pool.commitLog({ source, name, kind, meta, manifest }, s);
  return { ...r, manifest };
}

/**
 * Commits a recovery point of `source` at `time` with `meta` (PostgreSQL: startWal, stopWal;
 * SQLite: generation): a root directory and one file of `data`, stored for real, so that gc,
 * verify and usage read its manifest as they read any other.
 */
export async function dbPoint(pool: Pool, source: string, time: string, meta: Record<string, unknown>, data = randomBytes(10_000)): Promise<PointRow> {
  const session = pool.startSession();
  const digest = digestOf(data);
  if (session.claim(digest)) await session.put([{ digest, length: data.length, encoded: encodeChunk(data, 1) }]);
  const writer = new ManifestWriter(session, 'dir');
  const base = { mode: 0o700, uid: 0, gid: 0, mtimeNs: '1600000000000000000' };
  await writer.add({ type: 'dir', path: '.', ...base });
  await writer.add({ type: 'file', path: 'data', ...base, size: data.length, chunks: [[digest, data.length]] });
  const manifest = await writer.finish();
  await session.finish();
  const row: PointRow = {
    id: randomBytes(6).toString('hex'), source, time, kind: 'dir', manifest, logicalBytes: data.length, files: 2,
    readBytes: 0, newBytes: 0, storedNewBytes: 0, durationMs: 0, parent: null, torn: 0, meta,
  };
  await pool.commitPoint(row, `/${source}`, session);
  return row;
}

/** Flips one byte inside a stored chunk, in its pack: a full verify finds it damaged. */
export async function damageChunk(pool: Pool, digest: string): Promise<void> {
  const loc = pool.index.get(digest);
  if (!loc) throw new Error(`chunk ${digest} is not in the pool`);
  const fh = await open(pool.paths.pack(loc.pack), 'r+');
  try {
    const b = Buffer.alloc(1);
    const at = loc.offset + Math.floor(loc.storedLength / 2);
    await fh.read(b, 0, 1, at);
    b[0] = (b[0] as number) ^ 0xff;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}
