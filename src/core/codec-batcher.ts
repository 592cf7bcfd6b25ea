/**
 * Gathers many small codec requests (one per small file) into few worker messages: requests
 * made in the same turn of the event loop, or up to a byte budget, travel together. Each hashed
 * item comes back with take(), which must be called exactly once: it names the pieces to
 * compress (possibly none), and the group's held data is freed when every item has spoken.
 */
import type { CodecPool, HashItem, HeldPiece, Hold } from './codec-pool.js';
import type { EncodedChunk, HashedPiece } from './codec.js';

const FLUSH_BYTES = 2 * 1024 * 1024;

export interface HashedForTake extends HashedPiece {
  /** Compress these [offset, length] pieces of the item; call exactly once. */
  take(pieces: Array<[number, number]>): Promise<EncodedChunk[]>;
}

interface Waiting {
  item: HashItem;
  resolve: (o: HashedForTake) => void;
  reject: (e: unknown) => void;
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
  private waiting: Waiting[] = [];
  private bytes = 0;
  private scheduled = false;

  constructor(
    readonly codec: CodecPool,
    private readonly level: number,
  ) {}

  /** The buffer moves to a worker: the caller must not use it afterwards. */
  hash(item: HashItem): Promise<HashedForTake> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.bytes += item.buf.length;
      if (this.bytes >= FLUSH_BYTES) this.flush();
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
    this.codec.hash(batch.map((w) => w.item)).then(
      ({ hold, pieces }) => {
        const group = new HoldGroup(this.codec, hold, this.level, batch.length);
        batch.forEach((w, i) => w.resolve({ ...(pieces[i] as HashedPiece), take: (p) => group.take(i, p) }));
      },
      (err: unknown) => batch.forEach((w) => w.reject(err)),
    );
  }
}
