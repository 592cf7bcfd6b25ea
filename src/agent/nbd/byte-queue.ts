/**
 * Exact-length reads over a byte stream. The socket pushes whatever it received; the NBD client
 * asks for "the next n bytes" (a header, then its payload) and waits until they are all there.
 * One reader at a time: the handshake reads step by step, then one reply loop reads forever.
 */

interface Waiter {
  length: number;
  /** where the bytes go, if the reader gave a place */
  into?: Buffer;
  resolve: (buf: Buffer) => void;
  reject: (err: Error) => void;
}

export class ByteQueue {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: Waiter | undefined;
  private failure: Error | undefined;

  /** Bytes received from the stream. */
  push(chunk: Buffer): void {
    if (this.failure || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const w = this.waiter;
    if (w && this.buffered >= w.length) {
      this.waiter = undefined;
      w.resolve(this.take(w.length, w.into));
    }
  }

  /** The stream ended or broke: the pending read and every later one reject with `err`. */
  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.chunks = [];
    this.buffered = 0;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
  }

  /** The next `length` bytes, once they have all arrived. */
  read(length: number): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiter) return Promise.reject(new Error('assertion failed: ByteQueue has one reader at a time'));
    if (this.buffered >= length) return Promise.resolve(this.take(length));
    return new Promise((resolve, reject) => {
      this.waiter = { length, resolve, reject };
    });
  }

  /**
   * The next `into.length` bytes, copied straight into `into` (a read's data lands where it
   * belongs: no buffer of its own, no second copy).
   */
  readInto(into: Buffer): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiter) return Promise.reject(new Error('assertion failed: ByteQueue has one reader at a time'));
    if (this.buffered >= into.length) return Promise.resolve(this.take(into.length, into));
    return new Promise((resolve, reject) => {
      this.waiter = { length: into.length, into, resolve, reject };
    });
  }

  /** Removes `length` buffered bytes; a view when they lie in one chunk, else one copy (into `into` if given). */
  private take(length: number, into?: Buffer): Buffer {
    this.buffered -= length;
    const first = this.chunks[0];
    if (!into && first && first.length >= length) {
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
      return first.subarray(0, length);
    }
    const out = into ?? Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0] as Buffer;
      const n = Math.min(chunk.length, length - filled);
      chunk.copy(out, filled, 0, n);
      filled += n;
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
    }
    return out;
  }
}
