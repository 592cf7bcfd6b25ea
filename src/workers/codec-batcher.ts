/**
 * Gathers many small codec requests (one per small file) into few worker messages: requests
 * made in the same turn of the event loop, or up to a byte budget, travel together. Each hashed
 * item comes back with take(), which must be called exactly once: it names the pieces to
 * compress (possibly none), and the group's held data is freed when every item has spoken.
 */
import type { CodecPool, HashItem, HeldPiece, Hold, RangeItem, SmallFileItem } from './codec-pool.js';
import type { EncodedChunk, HashedPiece } from '../core/codec.js';

const FLUSH_BYTES = 2 * 1024 * 1024;

export interface HashedForTake extends HashedPiece {
  /** Compress these [offset, length] pieces of the item; call exactly once. */
  take(this: void, pieces: Array<[number, number]>): Promise<EncodedChunk[]>;
}

/** A small file read and hashed by a worker; `take` as for HashedForTake. */
export type SmallFileHashed =
  | { ok: true; piece: HashedPiece; same: boolean; take(this: void, pieces: Array<[number, number]>): Promise<EncodedChunk[]> }
  | { ok: false; code: string; message: string };

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
  private readonly asks: Array<{ item: number; pieces: Array<[number, number]>; resolve: (e: EncodedChunk[]) => void; reject: (e: unknown) => void }> = [];

  constructor(
    private readonly codec: CodecPool,
    private readonly hold: Hold,
    private readonly level: number,
    count: number,
  ) {
    this.remaining = count;
  }

  take(item: number, pieces: Array<[number, number]>): Promise<EncodedChunk[]> {
    return new Promise((resolve, reject) => {
      this.asks.push({ item, pieces, resolve, reject });
      if (--this.remaining === 0) this.send();
    });
  }

  private send(): void {
    const all: HeldPiece[] = [];
    for (const a of this.asks) for (const [off, len] of a.pieces) all.push([a.item, off, len]);
    this.codec.encodeHeld(this.hold, all, this.level).then(
      (out) => {
        let i = 0;
        for (const a of this.asks) {
          a.resolve(out.slice(i, i + a.pieces.length));
          i += a.pieces.length;
        }
      },
      (err: unknown) => this.asks.forEach((a) => a.reject(err)),
    );
  }
}

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
        return { hold, results: pieces.map((p) => (g: HoldGroup) => (i: number) => ({ ...p, take: (x: Array<[number, number]>) => g.take(i, x) })) };
      },
      (i) => i.buf.length,
      codec,
      level,
      Infinity,
    );
    this.ranges = new Gather(
      async (items) => {
        const { hold, pieces } = await codec.readRanges(items);
        return { hold, results: pieces.map((p) => (g: HoldGroup) => (i: number) => ({ ...p, take: (x: Array<[number, number]>) => g.take(i, x) })) };
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
            return { ...r, take: (x: Array<[number, number]>) => g.take(i, x) };
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
