/**
 * One writer's view of the pool: the ChunkSink a backup writes into. New chunks go to packs;
 * `finish()` makes them durable and writes the session's index file, after which a recovery
 * point that uses them may be committed.
 */
import { randomBytes } from 'node:crypto';
import type { ChunkSink, NewChunk } from '../core/chunk-io.js';
import { encodeIndex } from './index-file.js';
import { PackWriter } from './pack-writer.js';
import { writeFileDurable } from './durable.js';
import type { Pool } from './pool.js';

export interface SessionStats {
  newChunks: number;
  newBytes: number;
  storedNewBytes: number;
  packs: number;
}

export class WriteSession implements ChunkSink {
  private readonly pending = new Set<string>();
  private readonly packs: PackWriter;
  private newChunks = 0;
  private newBytes = 0;
  private finished = false;

  constructor(private readonly pool: Pool) {
    this.packs = new PackWriter(pool.paths, pool.config.packSize);
  }

  get compressionLevel(): number {
    return this.pool.config.compressionLevel;
  }

  want(digests: string[]): Promise<boolean[]> {
    return Promise.resolve(digests.map((d) => this.claim(d)));
  }

  /** Synchronous form of want() for one digest. */
  claim(digest: string): boolean {
    if (this.pool.index.has(digest) || this.pending.has(digest)) return false;
    this.pending.add(digest);
    return true;
  }

  async put(chunks: NewChunk[]): Promise<void> {
    for (const c of chunks) {
      this.newChunks++;
      this.newBytes += c.length;
      await this.packs.add(c.digest, c.length, c.encoded.data, c.encoded.flags);
    }
  }

  /** Packs durable, then the index file durable, then the chunks are visible to this process. */
  async finish(): Promise<SessionStats> {
    if (this.finished) throw new Error('write session finished twice');
    this.finished = true;
    const entries = await this.packs.finish();
    if (entries.length > 0) {
      const id = randomBytes(16).toString('hex');
      await writeFileDurable(this.pool.paths.indexFile(id), encodeIndex(entries), 0o444);
      for (const e of entries) this.pool.index.add(e);
    }
    return { newChunks: this.newChunks, newBytes: this.newBytes, storedNewBytes: this.packs.storedBytes, packs: this.packs.packsWritten };
  }
}
