/**
 * One writer's view of the pool: the ChunkSink a backup writes into. New chunks go to the pool's
 * shared pack writer; `finish()` waits until they are durable and indexed, after which a recovery
 * point that uses them may be committed. `abort()` gives back claims that were never sent.
 *
 * A `want` answer of false for a chunk another session is still sending is a borrowed promise:
 * finish() checks that the chunk did arrive and otherwise fails with a retryable error.
 */
import type { ChunkSink, NewChunk } from '../core/chunk-io.js';
import { HoldfastError } from '../core/errors.js';
import type { PackOwner } from './pack-writer.js';
import type { Pool } from './pool.js';

export interface SessionStats {
  newChunks: number;
  newBytes: number;
  storedNewBytes: number;
}

export class WriteSession implements ChunkSink, PackOwner {
  /** claimed by this session, not yet put */
  private readonly claimed = new Set<string>();
  private readonly borrowed = new Set<string>();
  private newChunks = 0;
  private newBytes = 0;
  private storedNewBytes = 0;
  private failure: Error | undefined;
  private ended = false;

  constructor(
    private readonly pool: Pool,
    readonly compressionLevel: number,
  ) {}

  want(digests: string[]): Promise<boolean[]> {
    return Promise.resolve(digests.map((d) => this.claim(d)));
  }

  /** Synchronous form of want() for one digest. */
  claim(digest: string): boolean {
    const answer = this.pool.claim(digest, this);
    if (answer === 'claimed') this.claimed.add(digest);
    else if (answer === 'borrowed') this.borrowed.add(digest);
    return answer === 'claimed';
  }

  async put(chunks: NewChunk[]): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error('write session already ended');
    for (const c of chunks) {
      this.claimed.delete(c.digest);
      this.newChunks++;
      this.newBytes += c.length;
      this.storedNewBytes += c.encoded.data.length;
      await this.pool.packs.add(this, c.digest, c.length, c.encoded.data, c.encoded.flags);
    }
  }

  failed(err: Error): void {
    this.failure ??= err;
  }

  /** Everything put is durable and indexed; every borrowed chunk arrived. */
  async finish(): Promise<SessionStats> {
    if (this.ended) throw new Error('write session finished twice');
    await this.pool.packs.flush();
    this.end();
    if (this.failure) throw this.failure;
    const lost = [...this.borrowed].filter((d) => !this.pool.index.has(d));
    if (lost.length > 0) {
      throw new HoldfastError('RETRY', `${lost.length} chunk(s) another sync promised never arrived (first ${lost[0]}); run the sync again`, { digest: lost[0] });
    }
    return { newChunks: this.newChunks, newBytes: this.newBytes, storedNewBytes: this.storedNewBytes };
  }

  /** Ends the session without committing: unsent claims are released for other sessions. */
  abort(): void {
    if (!this.ended) this.end();
  }

  private end(): void {
    this.ended = true;
    this.pool.release(this.claimed, this);
    this.claimed.clear();
  }
}
