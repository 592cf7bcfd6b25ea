/**
 * Reads chunks back out of packs: the ChunkSource for restore and verify. Every chunk is
 * decompressed and re-hashed in a worker; a mismatch is an error naming the digest and pack.
 *
 * gc may repack chunks into new packs and delete the old ones while a reader runs (in this
 * process or another): a chunk whose pack vanished, or that the view lacks, is looked up
 * again after reloading the index files, for as long as reloads move what it reads (10 at most),
 * before it is called missing.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { HoldfastError, errnoCode, isHoldfastError, throwIfAborted } from '../core/errors.js';
import type { ChunkSource } from '../core/chunk-io.js';
import type { CodecPool, DecodeItem } from '../workers/codec-pool.js';
import { bigBuffer } from '../workers/big-buffers.js';
import type { ChunkRef } from '../core/manifest.js';
import type { StoredChunk } from '../core/codec.js';
import type { ChunkIndex, ChunkLocation } from './chunk-index.js';
import type { PoolPaths } from './pool-layout.js';

const MAX_OPEN_PACKS = 64;
const BATCH_BYTES = 2 * 1024 * 1024;
const RUN_BYTES = 2 * 1024 * 1024;
/** Reloads of the view, each of which moved something a read needs, before a chunk is called missing. */
const MAX_RELOADS = 10;

/** Where a chunk is stored, as a comparable string ('-' for nowhere). */
function placeOf(loc: ChunkLocation | undefined): string {
  return loc ? `${loc.pack}@${loc.offset}` : '-';
}

/** The pool's side of a reader on a lazily loaded view (pool.ts, `lazyIndex`). */
export interface LazyView {
  loaded(): boolean;
  /** locations of these digests found without loading the view, or undefined (then `load` it) */
  few(digests: string[]): Promise<Array<ChunkLocation | undefined> | undefined>;
  load(): Promise<void>;
}

export class PackReader implements ChunkSource {
  private readonly handles = new Map<string, Slot>();

  constructor(
    private readonly paths: PoolPaths,
    private readonly index: ChunkIndex,
    private readonly codec: CodecPool,
    private readonly reload?: () => Promise<void>,
    /** why a chunk is not in the view, if the pool knows (verify found it damaged) */
    private readonly whyMissing?: (digest: string) => string | undefined,
    /** a pool whose view loads when first needed: a few locations found without it, or the view loaded */
    private readonly lazy?: LazyView,
  ) {}

  async readEncoded(refs: ChunkRef[], signal?: AbortSignal): Promise<StoredChunk[]> {
    return this.withReloads(async (few) => (await this.readRuns(refs, signal, few)).stored, refs);
  }

  /**
   * Runs `fn` (with the locations of a lazy pool's scan, if it answered); if a chunk or pack was
   * missing, reloads the index files and runs it again, for as long as each reload moved some of
   * what `fn` reads (a gc running back to back may repack chunks again between a reload and the
   * read) and MAX_RELOADS at most. A reload that moves nothing ends it: the chunk is gone.
   */
  private async withReloads<T>(fn: (few?: Array<ChunkLocation | undefined>) => Promise<T>, refs: ChunkRef[]): Promise<T> {
    let few: Array<ChunkLocation | undefined> | undefined;
    if (this.lazy && !this.lazy.loaded()) {
      few = await this.lazy.few(refs.map((r) => r[0]));
      if (!few) await this.lazy.load();
    }
    const where = (locs?: Array<ChunkLocation | undefined>): string => refs.map(([d], i) => placeOf(locs ? locs[i] : this.index.get(d))).join(',');
    for (let reloads = 0; ; reloads++) {
      // What this try reads from (fn looks its locations up before its first await).
      const used = this.reload ? where(reloads === 0 ? few : undefined) : '';
      try {
        return await fn(reloads === 0 ? few : undefined);
      } catch (err) {
        if (!this.reload || reloads >= MAX_RELOADS || !isHoldfastError(err) || err.code !== 'CHUNK_MISSING') throw err;
        await this.reload();
        if (where() === used) throw err;
      }
    }
  }

  /** Stored chunks, and the run buffers (one pread each) that hold them, in ref order. */
  private async readRuns(refs: ChunkRef[], signal?: AbortSignal, few?: Array<ChunkLocation | undefined>): Promise<{ stored: StoredChunk[]; runs: Array<{ buf: Buffer; members: number[] }>; locs: ChunkLocation[] }> {
    throwIfAborted(signal);
    const locs = refs.map(([digest, length], i) => {
      const loc = few ? few[i] : this.index.get(digest);
      if (!loc) {
        const why = this.whyMissing?.(digest);
        throw new HoldfastError('CHUNK_MISSING', `chunk ${digest} is not in the storage pool${why ? ` (${why})` : ''}`, { digest });
      }
      if (loc.length !== length) throw new HoldfastError('CHUNK_CORRUPT', `chunk ${digest}: manifest says ${length} bytes, pool index says ${loc.length}`, { digest });
      return loc;
    });
    // Neighbouring chunks of one pack are read with one pread.
    const runs: Array<{ pack: string; offset: number; end: number; members: number[] }> = [];
    locs.forEach((loc, i) => {
      const last = runs[runs.length - 1];
      if (last && last.pack === loc.pack && last.end === loc.offset && last.end - last.offset < RUN_BYTES) {
        last.end += loc.storedLength;
        last.members.push(i);
      } else runs.push({ pack: loc.pack, offset: loc.offset, end: loc.offset + loc.storedLength, members: [i] });
    });
    const stored = new Array<StoredChunk>(refs.length);
    const bufs = await Promise.all(
      runs.map(async (r) => {
        const buf = await this.readRange(r.pack, r.offset, r.end - r.offset, (refs[r.members[0] as number] as ChunkRef)[0]);
        for (const i of r.members) {
          const loc = locs[i] as ChunkLocation;
          const [digest, length] = refs[i] as ChunkRef;
          stored[i] = { data: buf.subarray(loc.offset - r.offset, loc.offset - r.offset + loc.storedLength), flags: loc.flags, length, digest };
        }
        return { buf, members: r.members };
      }),
    );
    return { stored, runs: bufs, locs };
  }

  async read(refs: ChunkRef[], signal?: AbortSignal): Promise<Uint8Array[]> {
    const { stored, runs, locs } = await this.withReloads((few) => this.readRuns(refs, signal, few), refs);
    const out = new Array<Uint8Array>(refs.length);
    // Decode batches are whole runs, so each run buffer moves to one worker without a copy.
    const batches: Array<{ idx: number[]; bufs: Buffer[] }> = [];
    let cur: { idx: number[]; bufs: Buffer[] } = { idx: [], bufs: [] };
    let bytes = 0;
    for (const r of runs) {
      cur.idx.push(...r.members);
      cur.bufs.push(r.buf);
      bytes += r.buf.length;
      if (bytes >= BATCH_BYTES) {
        batches.push(cur);
        cur = { idx: [], bufs: [] };
        bytes = 0;
      }
    }
    if (cur.idx.length > 0) batches.push(cur);
    await Promise.all(
      batches.map(async ({ idx, bufs }) => {
        const items: DecodeItem[] = idx.map((i) => stored[i] as StoredChunk);
        const res = await this.codec.decode(items, bufs);
        res.forEach((r, j) => {
          const i = idx[j] as number;
          if (!r.ok) {
            const digest = (refs[i] as ChunkRef)[0];
            const pack = (locs[i] as ChunkLocation).pack;
            throw new HoldfastError('CHUNK_CORRUPT', `chunk ${digest} in pack ${pack} is damaged: ${r.reason}`, { digest, pack });
          }
          out[i] = r.data;
        });
      }),
    );
    return out;
  }

  /** Stored (encoded) bytes from a pack, unverified. */
  private async readRange(pack: string, offset: number, length: number, digest: string): Promise<Buffer> {
    const slot = this.acquire(pack);
    try {
      const fh = await slot.fh;
      // Reused memory: the worker that decodes or writes these bytes hands the buffer back.
      const buf = bigBuffer(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead !== length) {
        throw new HoldfastError('CHUNK_CORRUPT', `chunk ${digest}: pack ${pack} is truncated`, { digest, pack });
      }
      return buf;
    } finally {
      slot.users--;
    }
  }

  async close(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    for (const slot of all) {
      try {
        await (await slot.fh).close();
      } catch {
        // a pack that failed to open has nothing to close
      }
    }
  }

  /** Open packs, least recently used first; only idle ones are closed to make room. */
  private acquire(pack: string): Slot {
    let slot = this.handles.get(pack);
    if (slot) {
      this.handles.delete(pack);
      this.handles.set(pack, slot);
    } else {
      if (this.handles.size >= MAX_OPEN_PACKS) {
        for (const [id, s] of this.handles) {
          if (s.users > 0) continue;
          this.handles.delete(id);
          void s.fh.then((fh) => fh.close()).catch(() => undefined);
          break;
        }
      }
      const fh = open(this.paths.pack(pack), 'r').catch((err: unknown) => {
        this.handles.delete(pack);
        if (errnoCode(err) === 'ENOENT') throw new HoldfastError('CHUNK_MISSING', `pack ${pack} is missing from the storage pool`, { pack });
        throw err;
      });
      slot = { fh, users: 0 };
      this.handles.set(pack, slot);
    }
    slot.users++;
    return slot;
  }
}

interface Slot {
  fh: Promise<FileHandle>;
  users: number;
}
