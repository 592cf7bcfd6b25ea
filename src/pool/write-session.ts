/**
 * One writer's view of the pool: the ChunkSink a backup writes into. New chunks go to the pool's
 * shared pack writer; `finish()` waits until they are durable and indexed, after which a recovery
 * point that uses them may be committed. `abort()` gives back claims that were never sent.
 *
 * A `want` answer of false for a chunk another session is still sending is a borrowed promise:
 * finish() checks that the chunk did arrive and otherwise fails with a retryable error.
 *
 * A session holds a lease (pool/lease.ts) from its start until its point is committed or it is
 * aborted, and remembers which chunks it was told the pool already had and from which view of
 * the index: that is what the commit check needs (docs/design.md, "Garbage collection and
 * concurrent syncs").
 */
import type { ChunkSink, NewChunk } from '../core/chunk-io.js';
import { HoldfastError } from '../core/errors.js';
import type { PackOwner } from './pack-writer.js';
import type { Pool } from './pool.js';
import { Lease } from './lease.js';

export interface SessionStats {
  newChunks: number;
  newBytes: number;
  storedNewBytes: number;
}

/** How long a finished session keeps its lease while waiting for its point to be committed. */
const COMMIT_GRACE_MS = 120_000;

export class WriteSession implements ChunkSink, PackOwner {
  /** claimed by this session, not yet put */
  private readonly claimed = new Set<string>();
  private readonly borrowed = new Set<string>();
  /** chunks the pool said it had ('stored'): the commit check may have to re-check them */
  readonly reused = new Set<string>();
  /** the oldest catalog epoch of the index views that answered 'stored' (Infinity: none did) */
  minViewEpoch = Infinity;
  readonly lease: Lease;
  /** the index view is current for this session's lease (reloaded if gc changed the pool) */
  private ready: Promise<void> | undefined;
  private newChunks = 0;
  private newBytes = 0;
  private storedNewBytes = 0;
  private failure: Error | undefined;
  private ended = false;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: Pool,
    readonly compressionLevel: number,
  ) {
    // The lease comes before the first want(): chunks that become visible after this moment are
    // safe from gc while the lease lives.
    this.lease = new Lease(pool.catalog, () => this.failed(new HoldfastError('RETRY', `the lease of a sync on storage pool ${pool.dir} expired; run the sync again`, { pool: pool.dir })));
    // A lazy pool loads its view at the first want(): a backup that sends nothing never does.
    if (pool.viewLoaded) this.viewReady().catch(() => undefined); // a failure is seen again by want()
    pool.sessionStarted(this);
  }

  async want(digests: string[]): Promise<boolean[]> {
    await this.viewReady();
    return digests.map((d) => this.claim(d));
  }

  private viewReady(): Promise<void> {
    return (this.ready ??= this.pool.freshView());
  }

  /** Synchronous form of want() for one digest (the pool's view must be loaded: want() first, or a pool opened eagerly). */
  claim(digest: string): boolean {
    const answer = this.pool.claim(digest, this);
    if (answer === 'claimed') this.claimed.add(digest);
    else if (answer === 'borrowed') this.borrowed.add(digest);
    else if (answer === 'stored') {
      this.reused.add(digest);
      this.minViewEpoch = Math.min(this.minViewEpoch, this.pool.viewEpoch);
    }
    return answer === 'claimed';
  }

  async put(chunks: NewChunk[]): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error('write session already ended');
    for (const c of chunks) {
      if (!this.claimed.delete(c.digest)) {
        // Put without asking (want), or again (an upload retried after its answer was lost):
        // stored only if the pool lacks it and no session is sending it, never twice.
        await this.viewReady();
        if (!this.claim(c.digest)) continue;
        this.claimed.delete(c.digest);
      }
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
    if (this.failure) {
      this.close();
      throw this.failure;
    }
    const lost = [...this.borrowed].filter((d) => !this.pool.index.has(d));
    if (lost.length > 0) {
      this.close();
      throw new HoldfastError('RETRY', `${lost.length} chunk(s) another sync promised never arrived (first ${lost[0]}); run the sync again`, { digest: lost[0] });
    }
    // The lease stays until the point is committed (commitPoint releases it), or a grace period.
    this.pool.awaitCommit(this);
    this.graceTimer = setTimeout(() => this.close(), COMMIT_GRACE_MS).unref();
    return { newChunks: this.newChunks, newBytes: this.newBytes, storedNewBytes: this.storedNewBytes };
  }

  /** Ends the session without committing: unsent claims are released for other sessions. */
  abort(): void {
    if (!this.ended) this.end();
    this.close();
  }

  /** The point is committed (or will not be): the lease goes. */
  close(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.lease.release();
    this.pool.sessionClosed(this);
  }

  private end(): void {
    this.ended = true;
    this.pool.release(this.claimed, this);
    this.claimed.clear();
  }
}
