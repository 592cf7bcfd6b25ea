/**
 * Ships one log record (a WAL segment, a run of SQLite WAL frames) to the server: the bytes are
 * cut into fixed 1 MiB chunks, hashed and compressed in the codec workers, and posted as one body
 * of chunk frames. The server answers only once the record is durable ({seq, time}); the same
 * record sent again is answered as a duplicate, so a retry after a lost answer is harmless.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkSource } from '../../core/chunk-io.js';
import { encodeFrames, type ChunkFrame } from '../../core/chunk-frames.js';
import type { ChunkRef } from '../../core/manifest.js';
import type { StoredChunk } from '../../core/codec.js';
import { HoldfastError } from '../../core/errors.js';
import type { CodecPool, HeldPiece } from '../../workers/codec-pool.js';
import type { RequestOptions, ServerClient } from './server-client.js';

export const LOG_CHUNK = 1024 * 1024;

export interface LogToShip {
  name: string;
  kind: 'pg-wal' | 'sqlite-wal';
  meta: Record<string, unknown>;
  data: Uint8Array;
}

export interface ShippedLog {
  seq: number;
  time: string;
  duplicate: boolean;
}

/** Chunk frames of `data` (1 MiB pieces, compressed at `level`). */
export async function logFrames(codec: CodecPool, data: Uint8Array, level = 3): Promise<ChunkFrame[]> {
  if (data.length === 0) return [];
  // The codec keeps the buffer it hashes: give it a copy the caller can no longer touch.
  const buf = Buffer.from(data);
  const { hold, pieces } = await codec.hash([{ buf, rule: { kind: 'fixed', size: LOG_CHUNK }, detectZero: false }]);
  const p = pieces[0];
  if (!p) throw new Error('codec: no hash result');
  const held: HeldPiece[] = [];
  let off = 0;
  for (const len of p.lengths) {
    held.push([0, off, len]);
    off += len;
  }
  // The frames keep the encoded bytes: their buffer is not handed back for reuse.
  const { chunks: encoded } = await codec.encodeHeld(hold, held, level);
  return p.lengths.map((length, i) => ({ digest: p.digests[i] as string, length, flags: (encoded[i] as { flags: number }).flags, data: (encoded[i] as { data: Uint8Array }).data }));
}

export interface ShipOptions {
  signal?: AbortSignal;
  retries?: number;
  /** where the record stands: 'encoding', then 'uploading' (for the caller's slow-shipping warnings) */
  onStage?: (stage: 'encoding' | 'uploading') => void;
  onRetry?: RequestOptions['onRetry'];
}

export async function shipLog(client: ServerClient, codec: CodecPool, source: string, log: LogToShip, o: ShipOptions = {}): Promise<ShippedLog> {
  o.onStage?.('encoding');
  const frames = await logFrames(codec, log.data);
  const q = new URLSearchParams({ name: log.name, kind: log.kind, meta: JSON.stringify(log.meta) });
  const body = encodeFrames(frames);
  o.onStage?.('uploading');
  const reply = await client.binary('POST', `/api/v1/agent/logs/${encodeURIComponent(source)}?${q.toString()}`, { type: 'application/octet-stream', data: body }, {
    signal: o.signal,
    retries: o.retries ?? 5,
    timeoutMs: 120_000,
    onRetry: o.onRetry,
  });
  const r = JSON.parse(reply.toString('utf8')) as Partial<ShippedLog>;
  if (typeof r.seq !== 'number' || typeof r.time !== 'string') throw new HoldfastError('SERVER_ERROR', `the server's answer to log '${log.name}' is not a commit: ${reply.toString('utf8').slice(0, 200)}`);
  return { seq: r.seq, time: r.time, duplicate: r.duplicate === true };
}

/**
 * Writes one log record a restore job was given into `dir` under its name: its chunks read through
 * the job's chunk source in one request, verified and written by a codec worker (the plaintext
 * never comes back to this thread), under a temporary name that is renamed once the whole record
 * is in place. `durable` fsyncs it first. Returns the bytes written.
 */
export async function fetchLog(source: ChunkSource, codec: CodecPool, log: { name: string; manifest: ChunkRef[] }, dir: string, o: { mode?: number; durable?: boolean; signal?: AbortSignal } = {}): Promise<number> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(log.name) || log.name.endsWith('.part')) throw new HoldfastError('BAD_ARGUMENT', `log name '${log.name}' is not valid`);
  const final = join(dir, log.name);
  const part = `${final}.part`;
  const fh = await open(part, 'w', o.mode ?? 0o600);
  let bytes = 0;
  try {
    await fh.chmod(o.mode ?? 0o600); // whatever the umask
    const stored = await source.readEncoded(log.manifest, o.signal);
    const pieces: Array<StoredChunk & { offset: number }> = [];
    for (const s of stored) {
      pieces.push({ ...s, offset: bytes });
      bytes += s.length;
    }
    if (pieces.length > 0) {
      const r = await codec.writeAt({ fd: fh.fd, pieces });
      if (!r.ok) {
        if (r.code === 'CHUNK_CORRUPT') throw new HoldfastError('CHUNK_CORRUPT', `log '${log.name}': ${r.message}`);
        throw Object.assign(new Error(`${part}: ${r.message}`), { code: r.code });
      }
    }
    if (o.durable) await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(part).catch(() => undefined);
    throw err;
  }
  await fh.close();
  await rename(part, final);
  return bytes;
}
