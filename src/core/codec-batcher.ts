/**
 * Gathers many small codec requests (one per small file) into few worker messages: requests
 * made in the same turn of the event loop, or up to a byte budget, travel together.
 */
import type { CodecPool, HashItem, HashedItem } from './codec-pool.js';
import type { EncodedChunk } from './codec.js';

const FLUSH_BYTES = 2 * 1024 * 1024;

interface Waiting<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

class Batch<I, O> {
  private waiting: Waiting<I, O>[] = [];
  private bytes = 0;
  private scheduled = false;

  constructor(
    private readonly send: (items: I[]) => Promise<O[]>,
    private readonly size: (i: I) => number,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.bytes += this.size(item);
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
    this.send(batch.map((w) => w.item)).then(
      (out) => batch.forEach((w, i) => w.resolve(out[i] as O)),
      (err: unknown) => batch.forEach((w) => w.reject(err)),
    );
  }
}

export class CodecBatcher {
  private readonly hashes: Batch<HashItem, HashedItem>;
  private readonly encodes: Batch<Uint8Array, EncodedChunk>;

  constructor(
    readonly codec: CodecPool,
    level: number,
  ) {
    this.hashes = new Batch((items) => codec.hash(items), (i) => i.buf.length);
    this.encodes = new Batch((items) => codec.encode(items, level), (b) => b.length);
  }

  hash(item: HashItem): Promise<HashedItem> {
    return this.hashes.submit(item);
  }

  encode(plain: Uint8Array): Promise<EncodedChunk> {
    return this.encodes.submit(plain);
  }
}
