/**
 * An NBD client over a Unix socket, for reading qcow2 images that `qemu-nbd -k SOCKET` (or a
 * running QEMU) exports: which blocks a dirty bitmap marks (`qemu:dirty-bitmap:NAME`), which are
 * allocated (`base:allocation`), and their bytes. No kernel module: the protocol is spoken over
 * the socket. Requests are pipelined: many in flight on one connection, each reply matched to its
 * request by cookie, so a tracker can keep several reads going while it hashes earlier ones.
 *
 * Failure model: a server error answers one request (NbdRequestError) and the connection stays
 * up; a dropped connection or a protocol violation rejects every pending request and every later
 * one. An aborted operation rejects at once with ABORTED; its replies are still read and dropped
 * when they come, so the stream stays in step.
 */
import { createConnection, type Socket } from 'node:net';
import { HoldfastError, errnoCode } from '../../core/errors.js';
import { ByteQueue } from './byte-queue.js';
import { NbdConnectionError, NbdError, NbdProtocolError, NbdRangeError, NbdRequestError, type NbdEndpoint } from './nbd-errors.js';
import { negotiate, type BlockSizeConstraints, type NegotiatedExport } from './nbd-handshake.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_DISC,
  NBD_CMD_READ,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_STATE_DIRTY,
  NBD_STRUCTURED_REPLY_MAGIC,
  NbdDecodeError,
  SIMPLE_REPLY_HEADER_LENGTH,
  STRUCTURED_REPLY_HEADER_LENGTH,
  encodeRequest,
  nbdErrorName,
  parseReplyHeader,
  readU64,
  type ChunkHeader,
  type ErrorChunk,
  type SimpleReply,
} from './nbd-protocol.js';
import { ReadAssembly, StatusAssembly, type ReplyAssembly } from './nbd-replies.js';

export interface ConnectOptions {
  /** The export name; qemu-nbd's default export is '' (change it with qemu-nbd -x). */
  exportName?: string;
  /** Meta contexts to negotiate, e.g. 'qemu:dirty-bitmap:b0', 'base:allocation'. All must be granted. */
  metaContexts?: readonly string[];
  signal?: AbortSignal;
}

/** A run of bytes with one status; `flags` means what the meta context defines. */
export interface Extent {
  offset: number;
  length: number;
  flags: number;
}

export interface ByteRange {
  offset: number;
  length: number;
}

/** Request lengths are 32-bit. This is the largest multiple of every legal minimum block size (≤ 64 KiB). */
const MAX_REQUEST_LENGTH = 2 ** 32 - 2 ** 16;
/** Reads are split so one request never holds more than this, whatever the server allows. */
const MAX_READ_LENGTH = 32 * 1024 * 1024;
/** Largest chunk payload accepted: a full read plus its offset, with room to spare. */
const MAX_CHUNK_PAYLOAD = 64 * 1024 * 1024 + 8;

interface InFlight {
  what: string;
  assembly: ReplyAssembly<unknown>;
  settle(error: Error | undefined, value?: unknown): void;
}

export class NbdClient {
  readonly size: number;
  readonly transmissionFlags: number;
  readonly blockSize: BlockSizeConstraints;
  /** Context name → id, for the contexts negotiated at connect. */
  readonly metaContextIds: ReadonlyMap<string, number>;

  private readonly pending = new Map<bigint, InFlight>();
  private readonly idleWaiters: Array<() => void> = [];
  private nextCookie = 1n;
  /** Set once the connection is unusable: makes the error each request rejects with. */
  private broken: ((what: string) => NbdError) | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly at: NbdEndpoint,
    private readonly socket: Socket,
    private readonly queue: ByteQueue,
    negotiated: NegotiatedExport,
  ) {
    this.size = negotiated.size;
    this.transmissionFlags = negotiated.transmissionFlags;
    this.blockSize = negotiated.blockSize;
    this.metaContextIds = negotiated.metaContextIds;
    this.pump().catch((err: unknown) => this.fail(err));
  }

  /** Connects to the server on `socketPath` and negotiates the export and its meta contexts. */
  static async connect(socketPath: string, options: ConnectOptions = {}): Promise<NbdClient> {
    const at: NbdEndpoint = { socketPath, exportName: options.exportName ?? '' };
    if (options.signal?.aborted) throw aborted(at, 'connect');
    const socket = createConnection({ path: socketPath });
    const queue = new ByteQueue();
    feedQueue(socket, queue);
    try {
      const negotiated = await withAbort(handshake(socket, queue, at, options.metaContexts ?? []), options.signal, () => aborted(at, 'connect'));
      return new NbdClient(at, socket, queue, negotiated);
    } catch (err) {
      socket.destroy();
      if (err instanceof NbdError || err instanceof HoldfastError) throw err;
      throw new NbdConnectionError(at, `handshake failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Requests sent and not yet fully answered (aborted ones included until their reply is read). */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * `length` bytes from `offset`; holes come back as zeros. The result is one Buffer, so the
   * caller bounds memory by what it asks for; large reads go out as several pipelined requests.
   * With `into` (`length` bytes), the data lands there when the range needs no widening.
   */
  async read(offset: number, length: number, signal?: AbortSignal, into?: Buffer): Promise<Buffer> {
    const what = `read of ${length} bytes at offset ${offset}`;
    this.checkRange(what, offset, length);
    if (length === 0) return Buffer.alloc(0);
    const { start, end } = this.aligned(offset, length);
    const target = into && into.length === length && start === offset && end === offset + length ? into : Buffer.allocUnsafe(end - start);
    const pieces = splitRange(start, end - start, this.maxRead());
    await Promise.all(
      pieces.map((p) => {
        const slice = target.subarray(p.offset - start, p.offset - start + p.length);
        return this.send(NBD_CMD_READ, p, new ReadAssembly(p.offset, slice), `read of ${p.length} bytes at offset ${p.offset}`, signal);
      }),
    );
    return target.subarray(offset - start, offset - start + length);
  }

  /**
   * The status of every byte in [offset, offset + length) in meta context `context`, as extents
   * that cover the range exactly, adjacent equal statuses merged. Servers may answer a block
   * status request for less than was asked; this asks again from where the answer stopped.
   */
  async blockStatus(offset: number, length: number, context: string, signal?: AbortSignal): Promise<Extent[]> {
    const id = this.metaContextIds.get(context);
    if (id === undefined) throw new NbdError(this.at, `meta context '${context}' was not negotiated (pass it in metaContexts when connecting)`);
    this.checkRange(`block status of ${length} bytes at offset ${offset}`, offset, length);
    const { start, end } = this.aligned(offset, length);
    const parts = splitRange(start, end - start, MAX_REQUEST_LENGTH);
    const lists = await Promise.all(parts.map((p) => this.statusOf(p, id, context, signal)));
    return mergeExtents(clipExtents(lists.flat(), offset, offset + length));
  }

  /** The extents bitmap `bitmapName` marks dirty across the whole export, merged. Needs 'qemu:dirty-bitmap:NAME' negotiated. */
  async dirtyExtents(bitmapName: string, signal?: AbortSignal): Promise<ByteRange[]> {
    const extents = await this.blockStatus(0, this.size, `qemu:dirty-bitmap:${bitmapName}`, signal);
    return mergeRanges(extents.filter((e) => (e.flags & NBD_STATE_DIRTY) !== 0));
  }

  /** Waits for requests in flight, sends NBD_CMD_DISC and waits for the server to hang up. */
  close(signal?: AbortSignal): Promise<void> {
    this.closing ??= this.disconnect(signal);
    return this.closing;
  }

  // ---- Requests ----

  private async statusOf(range: ByteRange, id: number, context: string, signal?: AbortSignal): Promise<Extent[]> {
    const ids = new Set(this.metaContextIds.values());
    const end = range.offset + range.length;
    const out: Extent[] = [];
    let pos = range.offset;
    while (pos < end) {
      const want = { offset: pos, length: end - pos };
      const what = `block status of ${context} for ${want.length} bytes at offset ${pos}`;
      const descriptors = await this.send(NBD_CMD_BLOCK_STATUS, want, new StatusAssembly(id, ids), what, signal);
      for (const d of descriptors) {
        if (pos >= end) break;
        // The last descriptor may reach past the request; keep only what was asked.
        const len = Math.min(d.length, end - pos);
        out.push({ offset: pos, length: len, flags: d.flags });
        pos += len;
      }
    }
    return out;
  }

  private send<T>(type: number, range: ByteRange, assembly: ReplyAssembly<T>, what: string, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(aborted(this.at, what));
    if (this.broken) return Promise.reject(this.broken(what));
    if (this.closing) return Promise.reject(new NbdConnectionError(this.at, `${what} refused: the client is closing`));
    const cookie = this.nextCookie++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(aborted(this.at, what));
      this.pending.set(cookie, {
        what,
        assembly,
        // Settling twice is harmless: an aborted request's late outcome is simply dropped.
        settle: (error, value) => {
          signal?.removeEventListener('abort', onAbort);
          if (error) reject(error);
          else resolve(value as T);
        },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.socket.write(encodeRequest({ type, cookie, offset: range.offset, length: range.length }));
    });
  }

  private checkRange(what: string, offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new NbdRangeError(this.at, `${what}: offset and length must be non-negative integers`);
    }
    if (offset + length > this.size) throw new NbdRangeError(this.at, `${what} reaches past the end of the export (${this.size} bytes)`);
  }

  /** The range widened to the server's minimum block size, which requests must respect. */
  private aligned(offset: number, length: number): { start: number; end: number } {
    const min = this.blockSize.minimum;
    return { start: Math.floor(offset / min) * min, end: Math.min(this.size, Math.ceil((offset + length) / min) * min) };
  }

  private maxRead(): number {
    const limit = Math.min(this.blockSize.maximum, MAX_READ_LENGTH);
    return Math.max(this.blockSize.minimum, limit - (limit % this.blockSize.minimum));
  }

  // ---- Replies ----

  /** Reads replies until the connection ends; any throw here breaks the connection. */
  private async pump(): Promise<void> {
    for (;;) {
      // Both headers start with the 16 bytes of a simple reply; a structured one has 4 more.
      let head = await this.queue.read(SIMPLE_REPLY_HEADER_LENGTH);
      if (head.readUInt32BE(0) === NBD_STRUCTURED_REPLY_MAGIC) {
        head = Buffer.concat([head, await this.queue.read(STRUCTURED_REPLY_HEADER_LENGTH - SIMPLE_REPLY_HEADER_LENGTH)]);
      }
      const header = parseReplyHeader(head);
      if (header.kind === 'simple') this.onSimpleReply(header);
      else await this.onChunk(header);
    }
  }

  private entry(cookie: bigint): InFlight {
    const entry = this.pending.get(cookie);
    if (!entry) throw new NbdDecodeError(`reply with cookie ${cookie}, which matches no request in flight`);
    return entry;
  }

  /** With structured replies on, a simple reply may only carry an error for a request without payload. */
  private onSimpleReply(reply: SimpleReply): void {
    const entry = this.entry(reply.cookie);
    if (reply.error === 0) throw new NbdDecodeError(`simple success reply to ${entry.what}, which needs a structured reply`);
    this.finish(reply.cookie, entry, { error: reply.error, message: '' });
  }

  private async onChunk(header: ChunkHeader): Promise<void> {
    const entry = this.entry(header.cookie);
    if (header.length > MAX_CHUNK_PAYLOAD) throw new NbdDecodeError(`reply chunk of ${header.length} bytes`);
    if (header.type === NBD_REPLY_TYPE_OFFSET_DATA && entry.assembly instanceof ReadAssembly && header.length >= 9) {
      // A read's data goes from the socket's buffers straight to its place in the target.
      const offset = readU64((await this.queue.read(8)).subarray(0, 8), 0);
      await this.queue.readInto(entry.assembly.dataTarget(offset, header.length - 8));
    } else {
      const payload = header.length > 0 ? await this.queue.read(header.length) : Buffer.alloc(0);
      entry.assembly.add(header.type, payload);
    }
    if (header.flags & NBD_REPLY_FLAG_DONE) this.finish(header.cookie, entry, entry.assembly.error);
  }

  private finish(cookie: bigint, entry: InFlight, error: ErrorChunk | undefined): void {
    // result() may throw NbdDecodeError; the entry is still pending then, so fail() rejects it.
    const value = error ? undefined : entry.assembly.result();
    this.pending.delete(cookie);
    if (error) entry.settle(new NbdRequestError(this.at, entry.what, error.error, nbdErrorName(error.error), error.message));
    else entry.settle(undefined, value);
    this.notifyIfIdle();
  }

  /** The connection is unusable: reject everything pending and everything later, and hang up. */
  private fail(cause: unknown): void {
    if (this.broken) return;
    this.broken = explain(this.at, cause);
    const broken = this.broken;
    for (const entry of this.pending.values()) entry.settle(broken(entry.what));
    this.pending.clear();
    this.notifyIfIdle();
    this.queue.fail(new Error('connection is closed'));
    this.socket.destroy();
  }

  // ---- Closing ----

  private async disconnect(signal?: AbortSignal): Promise<void> {
    const hangUp = async (): Promise<void> => {
      await this.idle();
      if (this.broken) return;
      // No reply comes to NBD_CMD_DISC; the server finishes and closes the connection.
      this.socket.end(encodeRequest({ type: NBD_CMD_DISC, cookie: 0n, offset: 0, length: 0 }));
      // Not events.once: it would reject on a late 'error' (a reset after DISC is still a close).
      if (!this.socket.destroyed) await new Promise((resolve) => this.socket.once('close', resolve));
    };
    try {
      await withAbort(hangUp(), signal, () => aborted(this.at, 'close'));
    } finally {
      this.fail(new Error('the client was closed'));
    }
  }

  private idle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIfIdle(): void {
    if (this.pending.size > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

// ---- Helpers ----

function aborted(at: NbdEndpoint, what: string): HoldfastError {
  return new HoldfastError('ABORTED', `NBD ${what} aborted (export '${at.exportName}' on socket ${at.socketPath})`, { ...at });
}

/** Pushes the socket's bytes into the queue, and fails the queue, with the reason, when it closes. */
function feedQueue(socket: Socket, queue: ByteQueue): void {
  let lastError: Error | undefined;
  socket.on('data', (chunk: Buffer) => queue.push(chunk));
  // Listening also keeps a socket error from crashing the process; 'close' always follows it.
  socket.on('error', (err) => {
    lastError = err;
  });
  socket.on('close', () => {
    const code = lastError ? (errnoCode(lastError) ?? lastError.message) : undefined;
    queue.fail(new Error(code ? `connection lost (${code})` : 'connection closed by the server'));
  });
}

async function handshake(socket: Socket, queue: ByteQueue, at: NbdEndpoint, metaContexts: readonly string[]): Promise<NegotiatedExport> {
  await connected(socket, at);
  return negotiate({ read: (n) => queue.read(n), write: (data) => socket.write(data) }, at, metaContexts);
}

function connected(socket: Socket, at: NbdEndpoint): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve();
    });
    const onError = (err: Error): void => {
      const code = errnoCode(err);
      const hint = code === 'ENOENT' ? ' (no such socket: is qemu-nbd running with -k on this path?)' : code === 'ECONNREFUSED' ? ' (nothing is listening)' : '';
      reject(new NbdConnectionError(at, `cannot connect: ${code ?? err.message}${hint}`, { cause: err }));
    };
    socket.once('error', onError);
  });
}

/** Says why the connection broke, in the words each pending request will reject with. */
function explain(at: NbdEndpoint, cause: unknown): (what: string) => NbdError {
  if (cause instanceof NbdDecodeError) return (what) => new NbdProtocolError(at, `${cause.message}; connection dropped, ${what} not completed`, { cause });
  const reason = cause instanceof Error ? cause.message : String(cause);
  return (what) => new NbdConnectionError(at, `${what} failed: ${reason}`, { cause });
}

/** Settles with `work`, or rejects with `abortError()` as soon as `signal` aborts. */
function withAbort<T>(work: Promise<T>, signal: AbortSignal | undefined, abortError: () => Error): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError());
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export function splitRange(offset: number, length: number, max: number): ByteRange[] {
  const out: ByteRange[] = [];
  for (let pos = offset; pos < offset + length; pos += max) out.push({ offset: pos, length: Math.min(max, offset + length - pos) });
  return out;
}

function clipExtents(extents: Extent[], start: number, end: number): Extent[] {
  return extents
    .map((e) => ({ offset: Math.max(e.offset, start), length: Math.min(e.offset + e.length, end) - Math.max(e.offset, start), flags: e.flags }))
    .filter((e) => e.length > 0);
}

function mergeExtents(extents: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    const last = out[out.length - 1];
    if (last && last.flags === e.flags && last.offset + last.length === e.offset) last.length += e.length;
    else out.push({ ...e });
  }
  return out;
}

function mergeRanges(ranges: ByteRange[]): ByteRange[] {
  const out: ByteRange[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && last.offset + last.length === r.offset) last.length += r.length;
    else out.push({ offset: r.offset, length: r.length });
  }
  return out;
}
