/**
 * A small pool of worker threads for the CPU-heavy work of the data path (hashing, zstd), so the
 * main thread stays free for I/O. Hashing leaves the data in the worker that hashed it; the
 * follow-up encode request is pinned to that worker. Buffers that own their memory are
 * transferred, not copied.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { MetaOf } from './apply-meta.js';
import { bigBuffer, keepBigBuffer, movable, spareBigBuffer } from './big-buffers.js';
import type { DecodeResult, EncodedChunk, HashedPiece, Placed, PlacedDecode, SplitRule, StoredChunk, VerifyItem, VerifyResult } from '../core/codec.js';

export interface HashItem {
  buf: Uint8Array;
  rule: SplitRule;
  detectZero: boolean;
}
export interface DecodeItem {
  data: Uint8Array;
  flags: number;
  length: number;
  digest: string;
}
/**
 * A range of an open file for a worker to read itself (with O_DIRECT where it can) and hash:
 * the data never passes through the main thread.
 */
export interface RangeItem {
  fd: number;
  offset: number;
  length: number;
  rule: SplitRule;
  detectZero: boolean;
}
/** A small file for a worker to read and hash itself, with the stat the walk saw. */
export interface SmallFileItem {
  path: string;
  rule: SplitRule;
  expect: { size: number; mtimeNs: string; ctimeNs: string; ino: string };
}
export type SmallFileResult = { ok: true; piece: HashedPiece; same: boolean } | { ok: false; code: string; message: string };
/** A whole file to restore: its stored chunks with their file offsets; verified before written. */
export interface FileWriteItem {
  path: string;
  size: number;
  pieces: Array<StoredChunk & { offset: number }>;
  meta: MetaOf;
  /** largest single write (see RangeWriteItem) */
  maxWrite?: number;
}
/** Chunks of one open file to verify and write at their offsets (a batch of a large file). */
export interface RangeWriteItem {
  fd: number;
  pieces: Array<StoredChunk & { offset: number }>;
  /**
   * Largest single write. The kernel sizes page cache folios by the write (ext4 on Linux 6.x), and
   * every later small write into a large folio costs per-folio work: a database copy that will be
   * written 8 KiB at a time is written in small pieces.
   */
  maxWrite?: number;
}
export type FileWriteResult = { ok: true; warnings: string[] } | { ok: false; code: string; message: string };
/** lstat fields a walk needs, as bigints (structured clone carries them). */
export interface RawStat {
  mode: bigint;
  uid: bigint;
  gid: bigint;
  size: bigint;
  blocks: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
  nlink: bigint;
  rdev: bigint;
}
/**
 * A directory's entries sorted by name, with their stats as one int64 array (`STAT_FIELDS` per
 * entry, native/stat-view.ts reads it) and the extended attributes of those that have any.
 */
export type DirListing = { ok: true; names: string[]; stats: BigInt64Array; xattrs?: Record<number, Record<string, string>> } | { ok: false; code: string; message: string };
/** [item index in the hash job, offset, length] */
export type HeldPiece = [number, number, number];

export type CodecRequest =
  | { id: number; op: 'hash'; items: HashItem[] }
  | { id: number; op: 'readHash'; items: SmallFileItem[] }
  | { id: number; op: 'readRanges'; items: RangeItem[] }
  /** `into`: an output buffer of an earlier batch, to encode into if big enough (else handed back as `unused`) */
  | { id: number; op: 'encodeHeld'; holdId: number; level: number; pieces: HeldPiece[]; into?: Uint8Array }
  | { id: number; op: 'decode'; items: DecodeItem[] }
  /** `back`: the buffer behind the items, moved here and handed back in the reply */
  | { id: number; op: 'verify'; items: VerifyItem[]; back?: Uint8Array }
  | { id: number; op: 'writeFiles'; items: FileWriteItem[] }
  | { id: number; op: 'writeAt'; item: RangeWriteItem }
  | { id: number; op: 'listDirs'; paths: string[] };
export type { DecodeResult };
export type CodecResponse =
  | { id: number; op: 'hash'; items: HashedPiece[] }
  | { id: number; op: 'readHashed'; items: SmallFileResult[] }
  | { id: number; op: 'encoded'; out: Uint8Array; placed: Placed[]; returned?: Uint8Array[]; unused?: Uint8Array }
  /** `spent`: the large buffers the request's data came in, handed back for reuse */
  | { id: number; op: 'decoded'; out: Uint8Array; placed: PlacedDecode[]; spent?: Uint8Array[] }
  /** `kept`: the plaintext of the items marked keep, where their results say */
  | { id: number; op: 'verified'; results: VerifyResult[]; back?: Uint8Array; kept?: Uint8Array }
  | { id: number; op: 'written'; items: FileWriteResult[]; spent?: Uint8Array[] }
  | { id: number; op: 'listed'; listings: DirListing[] }
  | { id: number; op: 'error'; message: string };

/** Where hashed data waits for its encode request. */
export interface Hold {
  worker: number;
  holdId: number;
}

interface Job {
  req: CodecRequest;
  transfer: ArrayBuffer[];
  /** the worker that ran it, set when it starts */
  worker: number;
  resolve: (r: { res: CodecResponse; worker: number }) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  /** jobs sent to this worker and not yet answered, by id */
  running: Map<number, Job>;
  /** how many of them are CPU jobs (at most one) */
  cpu: number;
  pinned: Job[];
}

/**
 * Jobs whose first part is file I/O, which the worker does asynchronously (libuv's thread pool):
 * a worker takes up to IO_IN_FLIGHT of them beside one CPU job, so that it hashes or compresses
 * while its next reads are under way, and the disk sees more than one request at a time.
 */
const IO_OPS = new Set<CodecRequest['op']>(['readRanges', 'readHash', 'listDirs']);
const IO_IN_FLIGHT = 2;
/** how far into the shared queue a worker looks for a job it has room for */
const SCAN = 8;

/** The size of the segments that large files and images are read in. */
export const RECYCLED_SIZE = 4 * 1024 * 1024;
/** Read buffers from this size on come back from the workers after encoding, to be reused. */
export const RETURNED_MIN = 1024 * 1024;
const MAX_SPARE = 4;
/** Batches from this size on are encoded into a buffer of their own (codec.ts), which comes back for reuse. */
const OUT_MIN = 1024 * 1024;

export function transferList(bufs: Uint8Array[]): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const b of bufs) if (movable(b)) seen.add(b.buffer as ArrayBuffer);
  return [...seen];
}

function encodedOf(res: CodecResponse): EncodedChunk[] {
  if (res.op !== 'encoded') throw new Error('codec worker: unexpected reply');
  const out = res.out;
  return res.placed.map((p) => ({ data: out.subarray(p.offset, p.offset + p.length), flags: p.flags }));
}

export class CodecPool {
  private readonly slots: Slot[] = [];
  private readonly shared: Job[] = [];
  private nextId = 1;
  private closed = false;

  private readonly spare: Buffer[] = [];

  /**
   * A read buffer of `size` bytes that owns its memory (so it can move to a worker). Buffers of
   * RECYCLED_SIZE come back from the workers after encoding and are reused, which bounds the
   * memory a backup holds by its pipeline depth rather than by when garbage is collected.
   */
  buffer(size: number): Buffer {
    if (size === RECYCLED_SIZE) {
      const b = this.spare.pop();
      if (b) return b;
    }
    // A shorter segment (a file of 1–4 MiB read whole) takes a kept big buffer: a fresh one per
    // file was mapped, touched and unmapped again, the largest share of a fresh agent's page faults.
    if (size >= RETURNED_MIN && size < RECYCLED_SIZE) return bigBuffer(size);
    return Buffer.allocUnsafeSlow(size);
  }

  /**
   * Takes back a read buffer nothing refers to any more (one that came back from a worker, or one
   * from buffer() the caller did not send): a segment-sized one for buffer(), another large one
   * for the big-buffer store (a file's segments joined with the carry before them).
   */
  giveBack(b: Uint8Array): void {
    if (b.byteOffset !== 0 || !(b.buffer instanceof ArrayBuffer)) return;
    if (b.byteLength === RECYCLED_SIZE && b.buffer.byteLength === RECYCLED_SIZE && this.spare.length < MAX_SPARE) {
      this.spare.push(Buffer.from(b.buffer, 0, RECYCLED_SIZE));
    } else keepBigBuffer(b.buffer);
  }

  /** Workers start on first use (or warm()): a command that finds nothing to do never pays for them. */
  constructor(private readonly workers = Math.max(1, availableParallelism())) {}

  /** Starts the workers now, if not started yet, so that the first job does not wait for them. */
  warm(): void {
    if (!this.closed && this.slots.length === 0) this.start();
  }

  private start(): void {
    for (let i = 0; i < this.workers; i++) {
      const slot: Slot = { worker: undefined as unknown as Worker, running: new Map(), cpu: 0, pinned: [] };
      this.spawn(slot);
      this.slots.push(slot);
    }
  }

  /** Starts the slot's worker; one that dies is replaced, else every job later sent to it would wait forever. */
  private spawn(slot: Slot): void {
    // Small young generations: the workers' garbage is mostly freed buffers, not objects.
    const worker = new Worker(new URL('./codec-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 8 } });
    worker.unref();
    slot.worker = worker;
    let dead = false;
    const died = (err: Error): void => {
      if (dead) return;
      dead = true;
      this.onError(slot, err);
      if (!this.closed) {
        this.spawn(slot);
        this.pump();
      }
    };
    worker.on('message', (res: CodecResponse) => this.onMessage(slot, res));
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`codec worker exited (code ${code})`)));
  }

  get size(): number {
    return this.workers;
  }

  /**
   * Splits and hashes; the buffers move to (and stay in) one worker until encodeHeld() is
   * called with the returned hold, exactly once. The caller must not use the buffers again.
   */
  async hash(items: HashItem[]): Promise<{ hold: Hold; pieces: HashedPiece[] }> {
    const id = this.nextId++;
    const { res, worker } = await this.run({ id, op: 'hash', items }, transferList(items.map((i) => i.buf)));
    if (res.op !== 'hash') throw new Error('codec worker: unexpected reply');
    return { hold: { worker, holdId: id }, pieces: res.items };
  }

  /**
   * Reads file ranges in the worker itself and hashes them; their data is held like hash()'s.
   * A piece's `used` is the number of bytes read (short at the end of a file that shrank).
   */
  async readRanges(items: RangeItem[]): Promise<{ hold: Hold; pieces: HashedPiece[] }> {
    const id = this.nextId++;
    const { res, worker } = await this.run({ id, op: 'readRanges', items }, []);
    if (res.op !== 'hash') throw new Error('codec worker: unexpected reply');
    return { hold: { worker, holdId: id }, pieces: res.items };
  }

  /**
   * Reads small files in the worker itself (sync I/O there costs the main thread nothing) and
   * hashes them; their data is held like hash()'s. `same` is false when the file's stat after
   * the read differs from what the walk saw.
   */
  async readHash(items: SmallFileItem[]): Promise<{ hold: Hold; results: SmallFileResult[] }> {
    const id = this.nextId++;
    const { res, worker } = await this.run({ id, op: 'readHash', items }, []);
    if (res.op !== 'readHashed') throw new Error('codec worker: unexpected reply');
    return { hold: { worker, holdId: id }, results: res.items };
  }

  /**
   * Compresses the wanted pieces of held data and frees the hold (pieces may be empty). The
   * chunks' bytes lie in one buffer; `release()`, once nothing reads them any more, lets a later
   * batch encode into it (not calling it only costs a fresh buffer).
   */
  async encodeHeld(hold: Hold, pieces: HeldPiece[], level: number): Promise<{ chunks: EncodedChunk[]; release: () => void }> {
    let bytes = 0;
    for (const p of pieces) bytes += p[2];
    // zstd's bound: a little over the input (codec.ts encodeMany)
    const into = bytes >= OUT_MIN ? spareBigBuffer(bytes + (bytes >> 7) + 128 * pieces.length) : undefined;
    const { res } = await this.run({ id: this.nextId++, op: 'encodeHeld', holdId: hold.holdId, level, pieces, ...(into ? { into } : {}) }, into ? transferList([into]) : [], hold.worker);
    if (res.op !== 'encoded') throw new Error('codec worker: unexpected reply');
    for (const b of res.returned ?? []) this.giveBack(b);
    keepBigBuffer(res.unused?.buffer);
    let released = false;
    return {
      chunks: encodedOf(res),
      release: () => {
        // A large batch's buffer is its own; a small batch's is too small to be kept.
        if (!released) keepBigBuffer(res.out.buffer);
        released = true;
      },
    };
  }

  /**
   * Checks chunks (decompressed, re-hashed), handing back the plaintext only of items marked
   * `keep` (in `kept`, where each result says). When `whole`, the one buffer all items lie in,
   * owns its memory, it is moved to the worker and back (not copied either way) and returned: the
   * caller's views into it are void meanwhile, so it must slice the returned buffer at the same offsets.
   */
  async verify(items: VerifyItem[], whole?: Uint8Array): Promise<{ results: VerifyResult[]; back?: Buffer; kept?: Buffer }> {
    const transfer = whole ? transferList([whole]) : [];
    const moved = transfer.length === 1 ? whole : undefined;
    const { res } = await this.run({ id: this.nextId++, op: 'verify', items, ...(moved ? { back: moved } : {}) }, transfer);
    if (res.op !== 'verified') throw new Error('codec worker: unexpected reply');
    const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    return { results: res.results, ...(res.back ? { back: buf(res.back) } : {}), ...(res.kept ? { kept: buf(res.kept) } : {}) };
  }

  /** `owned`: buffers that hold the items' data and that the caller gives up (moved, not copied). */
  async decode(items: DecodeItem[], owned: Uint8Array[] = []): Promise<DecodeResult[]> {
    const { res } = await this.run({ id: this.nextId++, op: 'decode', items }, transferList([...owned, ...items.map((i) => i.data)]));
    if (res.op !== 'decoded') throw new Error('codec worker: unexpected reply');
    const out = res.out;
    return res.placed.map((p) => (p.ok ? { ok: true, data: out.subarray(p.offset, p.offset + p.length) } : p));
  }

  /**
   * Restores small files in a worker: every chunk is decoded and verified first, and only then
   * is the file created (O_EXCL, O_NOFOLLOW) and written; a damaged file is never created.
   */
  async writeFiles(items: FileWriteItem[]): Promise<FileWriteResult[]> {
    // The pieces are views of buffers the caller owns (ChunkSource.readEncoded): move them.
    const buffers = new Set<ArrayBuffer>();
    for (const it of items) for (const p of it.pieces) if (p.data.buffer instanceof ArrayBuffer) buffers.add(p.data.buffer);
    const { res } = await this.run({ id: this.nextId++, op: 'writeFiles', items }, [...buffers]);
    if (res.op !== 'written') throw new Error('codec worker: unexpected reply');
    return res.items;
  }

  /**
   * Verifies a batch of a large file's chunks and writes them at their offsets, in a worker: the
   * plaintext never comes back to the main thread. Nothing is written unless every chunk of the
   * batch verifies.
   */
  async writeAt(item: RangeWriteItem): Promise<FileWriteResult> {
    const buffers = new Set<ArrayBuffer>();
    for (const p of item.pieces) if (p.data.buffer instanceof ArrayBuffer) buffers.add(p.data.buffer);
    const { res } = await this.run({ id: this.nextId++, op: 'writeAt', item }, [...buffers]);
    if (res.op !== 'written') throw new Error('codec worker: unexpected reply');
    return res.items[0] as FileWriteResult;
  }

  /**
   * Reads directories, lstats and reads the xattrs of every entry, sorted by name: a walk's
   * system calls, off the main thread, all in flight together.
   */
  async listDirs(paths: string[]): Promise<DirListing[]> {
    const { res } = await this.run({ id: this.nextId++, op: 'listDirs', paths }, []);
    if (res.op !== 'listed') throw new Error('codec worker: unexpected reply');
    return res.listings;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private run(req: CodecRequest, transfer: ArrayBuffer[], pin?: number): Promise<{ res: CodecResponse; worker: number }> {
    if (this.closed) return Promise.reject(new Error('codec pool is closed'));
    if (this.slots.length === 0) this.start();
    return new Promise((resolve, reject) => {
      const target = pin === undefined ? this.shared : this.slots[pin]?.pinned;
      if (!target) return reject(new Error(`codec pool has no worker ${pin}`));
      target.push({ req, transfer, worker: -1, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (;;) {
      let sent = false;
      for (const slot of this.slots) {
        const job = this.nextFor(slot);
        if (!job) continue;
        job.worker = this.slots.indexOf(slot);
        slot.running.set(job.req.id, job);
        if (!IO_OPS.has(job.req.op)) slot.cpu++;
        slot.worker.ref();
        slot.worker.postMessage(job.req, job.transfer);
        sent = true;
      }
      if (!sent) return;
    }
  }

  /** The next job this worker may start now: its pinned jobs first, then shared ones, one CPU job at a time. */
  private nextFor(slot: Slot): Job | undefined {
    const io = slot.running.size - slot.cpu;
    const fits = (j: Job | undefined): boolean => j !== undefined && (IO_OPS.has(j.req.op) ? io < IO_IN_FLIGHT : slot.cpu === 0);
    if (fits(slot.pinned[0])) return slot.pinned.shift();
    // A read may start while a pinned encode waits for the worker's CPU job to end; a CPU job may
    // pass reads this worker has no room for. Only the head of the queue is looked at.
    const k = this.shared.slice(0, SCAN).findIndex((j) => fits(j) && (slot.pinned.length === 0 || IO_OPS.has(j.req.op)));
    return k < 0 ? undefined : this.shared.splice(k, 1)[0];
  }

  private onMessage(slot: Slot, res: CodecResponse): void {
    const job = slot.running.get(res.id);
    slot.running.delete(res.id);
    if (job && !IO_OPS.has(job.req.op)) slot.cpu--;
    if (slot.running.size === 0) slot.worker.unref();
    if ((res.op === 'written' || res.op === 'decoded') && res.spent) for (const b of res.spent) keepBigBuffer(b.buffer);
    if (job) {
      if (res.op === 'error') job.reject(new Error(`codec worker failed: ${res.message}`));
      else job.resolve({ res, worker: job.worker });
    }
    this.pump();
  }

  private onError(slot: Slot, err: Error): void {
    for (const job of slot.running.values()) job.reject(err);
    slot.running.clear();
    slot.cpu = 0;
    for (const j of slot.pinned.splice(0)) j.reject(err);
  }
}
