/**
 * The plaintext of the manifest chunks a sync uploaded (verified against their digests as they
 * came), kept for the commit's check: the new pages are read from here, while the pool still
 * makes the job's packs durable, instead of read back from the pool afterwards. Bounded per job
 * and over all jobs; what does not fit (or was stored by an earlier attempt) is read from the pool.
 */
import type { ChunkSource } from '../core/chunk-io.js';
import type { ChunkRef } from '../core/manifest.js';
import type { StoredChunk } from '../core/codec.js';
import { HoldfastError } from '../core/errors.js';

const MAX_JOB_BYTES = 16 * 1024 * 1024;
const MAX_TOTAL_BYTES = 64 * 1024 * 1024;
let totalBytes = 0;

export class KeptManifest {
  private readonly chunks = new Map<string, Uint8Array>();
  private bytes = 0;

  /** Keeps a verified manifest chunk if the budgets allow. */
  keep(digest: string, plain: Uint8Array): void {
    if (this.chunks.has(digest)) return;
    if (this.bytes + plain.length > MAX_JOB_BYTES || totalBytes + plain.length > MAX_TOTAL_BYTES) return;
    this.chunks.set(digest, plain);
    this.bytes += plain.length;
    totalBytes += plain.length;
  }

  has(digest: string): boolean {
    return this.chunks.has(digest);
  }

  /** Forgets everything kept (the commit was checked, or the attempt is over). */
  clear(): void {
    totalBytes -= this.bytes;
    this.bytes = 0;
    this.chunks.clear();
  }

  /**
   * A ChunkSource that serves kept chunks from memory and the rest from `pool` once `ready`
   * settles (the job's own chunks are readable only when its packs are indexed).
   */
  source(pool: ChunkSource, ready: Promise<unknown>): ChunkSource {
    return {
      read: async (refs: ChunkRef[], signal?: AbortSignal): Promise<Uint8Array[]> => {
        const out: Array<Uint8Array | undefined> = refs.map(([d, len]) => {
          const c = this.chunks.get(d);
          if (c && c.length !== len) throw new HoldfastError('BAD_ARGUMENT', `the manifest gives chunk ${d} length ${len}, the upload ${c.length}`, { digest: d });
          return c;
        });
        const rest = refs.filter((_, i) => out[i] === undefined);
        if (rest.length > 0) {
          await ready;
          const got = await pool.read(rest, signal);
          let k = 0;
          for (let i = 0; i < out.length; i++) if (out[i] === undefined) out[i] = got[k++];
        }
        return out as Uint8Array[];
      },
      readEncoded: (_refs: ChunkRef[]): Promise<StoredChunk[]> => Promise.reject(new Error('kept manifest: readEncoded is not served')),
    };
  }
}
