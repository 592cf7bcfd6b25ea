/**
 * Gathers many small codec requests (one per small file) into few worker messages: requests
 * made in the same turn of the event loop, or up to a byte budget, travel together. Each hashed
 * item comes back with take(), which must be called exactly once: it names the pieces to
 * compress (possibly none) and what to do with them, and the group's held data is freed when
 * every item has spoken; the encoded bytes are reused once every item's use of them is done.
 */
import type { CodecPool, HashItem, HeldPiece, Hold, RangeItem, SmallFileItem } from './codec-pool.js';
import type { EncodedChunk, HashedPiece } from '../core/codec.js';
import type { ChunkSink, NewChunk } from '../core/chunk-io.js';

const FLUSH_BYTES = 2 * 1024 * 1024;

/**
 * Compress these [offset, length] pieces of the item and hand them to `use`; call exactly once.
 * The encoded bytes are valid only until `use`'s promise settles.
 */
export type Take = (this: void, pieces: Array<[number, number]>, use?: (encoded: EncodedChunk[]) => Promise<void>) => Promise<void>;

export interface HashedForTake extends HashedPiece {
  take: Take;
}

/** A small file read and hashed by a worker; `take` as for HashedForTake. */
export type SmallFileHashed = { ok: true; piece: HashedPiece; same: boolean; take: Take } | { ok: false; code: string; message: string };

/**
 * Asks the sink which of a hashed item's chunks it lacks, has the worker encode exactly those,
 * and puts them (a sink copies what it keeps before put() settles).
 */
export async function storeWanted(sink: ChunkSink, take: Take, pieces: Array<[number, number]>, digests: string[], lengths: number[]): Promise<void> {
  let wanted: boolean[];
  try {
    wanted = digests.length > 0 ? await sink.want(digests) : [];
  } catch (err) {
    await take([]);
    throw err;
  }
  await take(
    pieces.filter((_, i) => wanted[i]),
    async (encoded) => {
      const fresh: NewChunk[] = [];
      let j = 0;
      wanted.forEach((w, i) => {
        if (w) fresh.push({ digest: digests[i] as string, length: lengths[i] as number, encoded: encoded[j++] as EncodedChunk });
      });
      if (fresh.length > 0) await sink.put(fresh);
    },
  );
}

/** Requests of one kind that travel to a worker together. */
class Gather<I, O> {
  private waiting: Array<{ item: I; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  private bytes = 0;
  private scheduled = false;

  constructor(
    private readonly send: (items: I[]) => Promise<{ hold: Hold; results: Array<(o: HoldGroup) => (i: number) => O> }>,
    private readonly size: (i: I) => number,
    private readonly codec: CodecPool,
    private readonly level: number,
    private readonly maxItems: number,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.bytes += this.size(item);
      if (this.bytes >= FLUSH_BYTES || this.waiting.length >= this.maxItems) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.waiting.length === 0) return;
    const batch = this.waiting;
    this.waiting = [];
    this.bytes = 0;
    this.send(batch.map((w) => w.item)).then(
      ({ hold, results }) => {
        const group = new HoldGroup(this.codec, hold, this.level, batch.length);
        batch.forEach((w, i) => w.resolve((results[i] as (g: HoldGroup) => (i: number) => O)(group)(i)));
      },
      (err: unknown) => batch.forEach((w) => w.reject(err)),
    );
  }
}

/** One hash job's held data, released once each of its items has called take(). */
class HoldGroup {
  private remaining: number;
  private readonly asks: Array<{ item: number; pieces: Array<[number, number]>; use?: (e: EncodedChunk[]) => Promise<void>; resolve: () => void; reject: (e: unknown) => void }> = [];

  constructor(
    private readonly codec: CodecPool,
    private readonly hold: Hold,
    private readonly level: number,
    count: number,
  ) {
    this.remaining = count;
  }

  take(item: number, pieces: Array<[number, number]>, use?: (e: EncodedChunk[]) => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.asks.push({ item, pieces, use, resolve, reject });
      if (--this.remaining === 0) this.send();
    });
  }

  private send(): void {
    const all: HeldPiece[] = [];
    for (const a of this.asks) for (const [off, len] of a.pieces) all.push([a.item, off, len]);
    this.codec.encodeHeld(this.hold, all, this.level).then(
      ({ chunks, release }) => {
        let i = 0;
        const uses = this.asks.map(async (a) => {
          const mine = chunks.slice(i, i + a.pieces.length);
          i += a.pieces.length;
          if (a.use && mine.length > 0) await a.use(mine);
        });
        // The buffer behind the chunks is reused only once every use of it is over.
        void Promise.allSettled(uses).then(release);
        this.asks.forEach((a, k) => {
          (uses[k] as Promise<void>).then(a.resolve, a.reject);
        });
      },
      (err: unknown) => this.asks.forEach((a) => a.reject(err)),
    );
  }
}

const takeOf =
  (g: HoldGroup, i: number): Take =>
  (pieces, use) =>
    g.take(i, pieces, use);

export class CodecBatcher {
  private readonly hashes: Gather<HashItem, HashedForTake>;
  private readonly files: Gather<SmallFileItem, SmallFileHashed>;
  private readonly ranges: Gather<RangeItem, HashedForTake>;

  constructor(
    readonly codec: CodecPool,
    level: number,
  ) {
    this.hashes = new Gather(
      async (items) => {
        const { hold, pieces } = await codec.hash(items);
        return { hold, results: pieces.map((p) => (g: HoldGroup) => (i: number) => ({ ...p, take: takeOf(g, i) })) };
      },
      (i) => i.buf.length,
      codec,
      level,
      Infinity,
    );
    this.ranges = new Gather(
      async (items) => {
        const { hold, pieces } = await codec.readRanges(items);
        return { hold, results: pieces.map((p) => (g: HoldGroup) => (i: number) => ({ ...p, take: takeOf(g, i) })) };
      },
      (i) => i.length,
      codec,
      level,
      Infinity,
    );
    this.files = new Gather(
      async (items) => {
        const { hold, results } = await codec.readHash(items);
        return {
          hold,
          results: results.map((r) => (g: HoldGroup) => (i: number): SmallFileHashed => {
            if (!r.ok) {
              void g.take(i, []); // nothing to encode; lets the group's hold go
              return r;
            }
            return { ...r, take: takeOf(g, i) };
          }),
        };
      },
      (i) => i.expect.size,
      codec,
      level,
      256,
    );
  }

  /** The buffer moves to a worker: the caller must not use it afterwards. */
  hash(item: HashItem): Promise<HashedForTake> {
    return this.hashes.submit(item);
  }

  /** A range of an open file, read and hashed in a worker; `used` is the bytes read. */
  readRange(item: RangeItem): Promise<HashedForTake> {
    return this.ranges.submit(item);
  }

  /** A small file, read and hashed in a worker. */
  readHash(item: SmallFileItem): Promise<SmallFileHashed> {
    return this.files.submit(item);
  }
}
