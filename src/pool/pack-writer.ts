/**
 * The pool's one pack writer, shared by every write session of the process: encoded chunks are
 * copied into the open pack's buffer as they are added (so whoever put them may reuse their
 * memory at once) until it holds about `packSize` bytes, and each sealed pack is written in the
 * background in this order: pack (write, fsync, directory fsync), then the pack's own index file
 * (durable), then its entries are handed to `onIndexed`. A chunk is therefore visible to lookups
 * only once both files that describe it are durable, and an interrupted session's sealed packs
 * stay usable: the next attempt is told the pool has them.
 *
 * Sharing one writer keeps memory flat when many agents sync at once (one open pack, not one per
 * session). A failed pack write fails only the sessions that had chunks in it.
 */
import { access, open, mkdir, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { fsyncDir, writeFileDurable } from './durable.js';
import { PACK_MAGIC, TAIL_BYTES, TRAILER_ENTRY_BYTES, trailerOf } from './pack-format.js';
import { IndexRecords, indexFileOf } from './index-file.js';
import { packBuffer, releasePackBuffer, writePackDirect } from './pack-direct.js';
import { wholeBlocks } from '../workers/direct-io.js';
import type { PoolPaths } from './pool-layout.js';
import { asPoolError } from './pool-full.js';

const MAX_PARALLEL_WRITES = 2;
/** Room in a pack buffer past packSize: the chunk that crosses it (up to 1 MiB) and the trailer. */
const PACK_SLACK = 2 * 1024 * 1024;

/** Whoever put chunks into a pack: told when the pack is lost. */
export interface PackOwner {
  failed(err: Error): void;
}

interface OpenPack {
  /** the pack's bytes so far (magic, then chunks), with room for its trailer */
  buf: Buffer;
  /** its chunks' index records, in order (the pack id filled in when it is sealed) */
  records: IndexRecords;
  digests: string[];
  owners: Set<PackOwner>;
  bytes: number;
}

/** Bytes a pack of `bytes` with `entries` chunks takes once sealed, padded for a direct write. */
function sealedRoom(bytes: number, entries: number): number {
  return wholeBlocks(bytes + entries * TRAILER_ENTRY_BYTES + TAIL_BYTES);
}

export class PackWriter {
  private current: OpenPack | undefined;
  private readonly writing = new Set<Promise<void>>();
  storedBytes = 0;
  packsWritten = 0;

  constructor(
    private readonly paths: PoolPaths,
    private readonly packSize: number,
    /** a pack's index records (an index file's body) and its chunks' digests, once both files are durable */
    private readonly onIndexed: (records: Buffer, digests: string[]) => void,
    private readonly onLost: (digests: string[]) => void,
  ) {}

  /**
   * Adds a chunk to the open pack. Its bytes are copied before this returns its promise, so the
   * caller may reuse `data` at once.
   */
  async add(owner: PackOwner, digest: string, length: number, data: Uint8Array, flags: number): Promise<void> {
    let sealed = false;
    let c = this.current;
    if (c && sealedRoom(c.bytes + data.length, c.digests.length + 1) > c.buf.length) sealed = this.seal();
    c = this.current ??= this.emptyPack(data.length);
    c.records.push(digest, c.bytes, data.length, length, flags);
    c.digests.push(digest);
    c.buf.set(data, c.bytes);
    c.owners.add(owner);
    c.bytes += data.length;
    if (c.bytes >= this.packSize) sealed = this.seal() || sealed;
    // Backpressure: the writer of the pack that overflows waits while too many packs are queued.
    if (sealed) while (this.writing.size > MAX_PARALLEL_WRITES) await Promise.race(this.writing);
  }

  /** Seals the open pack and waits until every pack started so far is durable and indexed (or failed). */
  async flush(): Promise<void> {
    this.seal();
    await Promise.all([...this.writing]);
  }

  private emptyPack(first: number): OpenPack {
    const buf = packBuffer(Math.max(this.packSize + PACK_SLACK, sealedRoom(PACK_MAGIC.length + first, 1)));
    PACK_MAGIC.copy(buf, 0);
    return { buf, records: new IndexRecords(), digests: [], owners: new Set(), bytes: PACK_MAGIC.length };
  }

  /** Starts writing the open pack, if it holds anything; true when it did. */
  private seal(): boolean {
    const c = this.current;
    if (!c || c.digests.length === 0) return false;
    this.current = undefined;
    const id = randomBytes(16).toString('hex');
    // Tracked at once, before it waits for a write slot: a flush() by another session must
    // wait for this pack too, or it could commit a point whose chunks are not yet durable.
    const tracked: Promise<void> = this.slot()
      .then(() => this.write(id, c))
      .catch(async (err: unknown) => {
        // A pack that failed (out of space, I/O error) has no index file: remove what was
        // written of it, so a full pool gets its space back and nothing half-written remains.
        const indexed = await access(this.paths.indexFile(id)).then(() => true, () => false);
        if (!indexed) await unlink(this.paths.pack(id)).catch(() => undefined);
        const mapped = asPoolError(err, this.paths.root);
        const e = mapped instanceof Error ? mapped : new Error(String(mapped));
        this.onLost(c.digests);
        for (const o of c.owners) o.failed(e);
      })
      .finally(() => {
        releasePackBuffer(c.buf);
        this.freeSlot();
        this.writing.delete(tracked);
      });
    this.writing.add(tracked);
    return true;
  }

  private active = 0;
  private readonly slotWaiters: Array<() => void> = [];

  /** Waits for one of MAX_PARALLEL_WRITES write slots (handed over in order when one frees). */
  private slot(): Promise<void> {
    if (this.active < MAX_PARALLEL_WRITES) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((r) => this.slotWaiters.push(r));
  }

  private freeSlot(): void {
    const next = this.slotWaiters.shift();
    if (next) next();
    else this.active--;
  }

  private async write(id: string, c: OpenPack): Promise<void> {
    const dir = this.paths.packDir(id);
    // Not recursive (packs/ exists): a recursive mkdir reports a full file system as ENOENT.
    await mkdir(dir).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    });
    const records = c.records.body();
    const trailer = trailerOf(records);
    trailer.copy(c.buf, c.bytes);
    const total = c.bytes + trailer.length;
    if (!(await writePackDirect(this.paths.pack(id), c.buf, total, 0o444))) await this.writeBuffered(id, c.buf.subarray(0, total));
    await fsyncDir(dir);
    c.records.setPack(id);
    await writeFileDurable(this.paths.indexFile(id), indexFileOf(records), 0o444);
    this.storedBytes += total;
    this.packsWritten++;
    this.onIndexed(records, c.digests);
  }

  private async writeBuffered(id: string, data: Buffer): Promise<void> {
    const fh = await open(this.paths.pack(id), 'wx', 0o444);
    try {
      // write may write less than asked (a file system filling up returns a short count before
      // ENOSPC): write the rest until done, so a short pack never gets an index file.
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await fh.write(data, done, data.length - done, done);
        if (bytesWritten === 0) throw Object.assign(new Error(`short write to pack ${id}`), { code: 'EIO' });
        done += bytesWritten;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}
