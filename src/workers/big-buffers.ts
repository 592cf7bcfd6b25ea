/**
 * Large buffers (1 MiB and more) kept by this thread for reuse: pack reads on restore, encode
 * outputs on backup. Such blocks are mapped fresh by malloc (native mallopt) and unmapped when
 * freed, and on these VMs memory freshly mapped costs about 3 ms per MiB to touch, more than
 * the work done in it; a buffer that went to a worker comes back in its reply and is kept here.
 * Only buffers nobody else refers to may be given back.
 */
const MiB = 1024 * 1024;
/** the most bytes kept idle */
const KEEP_BYTES = 64 * MiB;

const kept: ArrayBuffer[] = [];
let keptBytes = 0;
/** buffers handed out here: theirs whole, even through a shorter view */
const ours = new WeakSet<ArrayBuffer>();

/** Whether `b`'s whole memory may move to another thread with it. */
export function movable(b: Uint8Array): boolean {
  return b.buffer instanceof ArrayBuffer && b.byteOffset === 0 && (b.byteLength === b.buffer.byteLength || ours.has(b.buffer));
}

/** A kept buffer of at least `size` bytes (the smallest that fits), removed from the store. */
function takeKept(size: number): ArrayBuffer | undefined {
  let best = -1;
  for (let i = 0; i < kept.length; i++) {
    const b = kept[i] as ArrayBuffer;
    if (b.byteLength >= size && (best < 0 || b.byteLength < (kept[best] as ArrayBuffer).byteLength)) best = i;
  }
  if (best < 0) return undefined;
  const [b] = kept.splice(best, 1) as [ArrayBuffer];
  keptBytes -= b.byteLength;
  return b;
}

/**
 * `size` bytes whose memory may move to a worker whole (the Buffer's ArrayBuffer is its own,
 * possibly longer): a kept one when there is one, else new and rounded up to whole MiB so that
 * it can serve other sizes when it comes back.
 */
export function bigBuffer(size: number): Buffer {
  if (size < MiB) return Buffer.allocUnsafeSlow(size);
  const b = takeKept(size) ?? new ArrayBuffer(Math.ceil(size / MiB) * MiB);
  ours.add(b);
  return Buffer.from(b, 0, size);
}

/** A kept buffer of at least `size` bytes if there is one (for a worker to fill, or hand back). */
export function spareBigBuffer(size: number): Buffer | undefined {
  const b = takeKept(Math.max(size, MiB));
  if (!b) return undefined;
  ours.add(b);
  return Buffer.from(b);
}

/** Gives a buffer back for reuse; smaller ones and what does not fit are left to the collector. */
export function keepBigBuffer(b: ArrayBufferLike | undefined): void {
  if (!(b instanceof ArrayBuffer) || b.byteLength < MiB || keptBytes + b.byteLength > KEEP_BYTES) return;
  kept.push(b);
  keptBytes += b.byteLength;
}
