/**
 * The two seams of the data path. A ChunkSink takes new chunks (the local pool, or later the
 * server over the network); a ChunkSource gives verified plaintext back for restore. The agent's
 * readers and restorers depend only on these, never on the pool itself.
 */
import type { EncodedChunk, StoredChunk } from './codec.js';
import type { ChunkRef } from './manifest.js';

export interface NewChunk {
  digest: string;
  length: number;
  encoded: EncodedChunk;
  /** part of a manifest (a sink may treat it specially: the server keeps it for its commit check) */
  manifest?: boolean;
}

export interface ChunkSink {
  /** zstd level for new chunks; 0 stores them raw */
  readonly compressionLevel: number;
  /**
   * For each digest, true when the sink lacks it and nobody else is already sending it: the
   * caller must then put() it. A false answer is a promise that the chunk will be there at commit.
   */
  want(digests: string[]): Promise<boolean[]>;
  /** Takes the chunks; the caller may reuse their bytes once the promise settles (a sink copies what it keeps). */
  put(chunks: NewChunk[]): Promise<void>;
}

export interface ChunkSource {
  /** Verified plaintext of each chunk, in order; throws CHUNK_MISSING / CHUNK_CORRUPT naming the digest. */
  read(refs: ChunkRef[], signal?: AbortSignal): Promise<Uint8Array[]>;
  /**
   * The chunks as stored (compressed or raw), not yet verified: the reader must decode them with
   * decodeMany. The buffers behind them belong to the caller (they may be moved to a worker).
   */
  readEncoded(refs: ChunkRef[], signal?: AbortSignal): Promise<StoredChunk[]>;
}
