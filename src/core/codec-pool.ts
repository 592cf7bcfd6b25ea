/**
 * A small pool of worker threads for the CPU-heavy work of the data path (hashing, zstd), so the
 * main thread stays free for I/O. Buffers that own their memory are transferred, not copied.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { DecodeResult, EncodedChunk, HashedPiece, SplitRule } from './codec.js';

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
export type CodecRequest =
  | { id: number; op: 'hash'; items: HashItem[] }
  | { id: number; op: 'encode'; level: number; items: Uint8Array[] }
  | { id: number; op: 'decode'; items: DecodeItem[] };
export type HashedItem = HashedPiece & { buf: Uint8Array };
export type CodecResponse =
  | { id: number; op: 'hash'; items: HashedItem[] }
  | { id: number; op: 'encode'; items: EncodedChunk[] }
  | { id: number; op: 'decode'; items: DecodeResult[] }
  | { id: number; op: 'error'; message: string };

interface Pending {
  req: CodecRequest;
  transfer: ArrayBuffer[];
  resolve: (r: CodecResponse) => void;
  reject: (e: Error) => void;
}

export function transferList(bufs: Uint8Array[]): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const b of bufs) {
    if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) seen.add(b.buffer);
  }
  return [...seen];
}

export class CodecPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: Pending[] = [];
  private readonly inFlight = new Map<Worker, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(size = Math.max(1, availableParallelism())) {
    const url = new URL('./codec-worker.js', import.meta.url);
    for (let i = 0; i < size; i++) {
      const w = new Worker(url);
      w.unref();
      w.on('message', (res: CodecResponse) => this.onMessage(w, res));
      w.on('error', (err) => this.onError(w, err));
      this.all.push(w);
      this.idle.push(w);
    }
  }

  get size(): number {
    return this.all.length;
  }

  /** The caller's buffers are transferred when they own their memory: do not reuse them. */
  async hash(items: HashItem[]): Promise<HashedItem[]> {
    const res = await this.run({ id: this.nextId++, op: 'hash', items }, transferList(items.map((i) => i.buf)));
    if (res.op !== 'hash') throw new Error('codec worker: unexpected reply');
    return res.items;
  }

  async encode(items: Uint8Array[], level: number): Promise<EncodedChunk[]> {
    const res = await this.run({ id: this.nextId++, op: 'encode', level, items }, []);
    if (res.op !== 'encode') throw new Error('codec worker: unexpected reply');
    return res.items;
  }

  async decode(items: DecodeItem[]): Promise<DecodeResult[]> {
    const res = await this.run({ id: this.nextId++, op: 'decode', items }, transferList(items.map((i) => i.data)));
    if (res.op !== 'decode') throw new Error('codec worker: unexpected reply');
    return res.items;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.all.map((w) => w.terminate()));
  }

  private run(req: CodecRequest, transfer: ArrayBuffer[]): Promise<CodecResponse> {
    if (this.closed) return Promise.reject(new Error('codec pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ req, transfer, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop() as Worker;
      const job = this.queue.shift() as Pending;
      this.inFlight.set(w, job);
      w.ref();
      w.postMessage(job.req, job.transfer);
    }
  }

  private onMessage(w: Worker, res: CodecResponse): void {
    const job = this.inFlight.get(w);
    this.inFlight.delete(w);
    w.unref();
    this.idle.push(w);
    if (job) {
      if (res.op === 'error') job.reject(new Error(`codec worker failed: ${res.message}`));
      else job.resolve(res);
    }
    this.pump();
  }

  private onError(w: Worker, err: Error): void {
    const job = this.inFlight.get(w);
    this.inFlight.delete(w);
    job?.reject(err);
  }
}
