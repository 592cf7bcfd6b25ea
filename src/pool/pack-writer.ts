/**
 * Collects encoded chunks into packs of about `packSize` bytes and writes each one in the
 * background (write, fsync). `finish()` returns the index entries only after every pack and its
 * directory are durable, which is what allows the index to be written next.
 */
import { open, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { fsyncDir } from './durable.js';
import { encodeTrailer, PACK_MAGIC, type PackEntry } from './pack-format.js';
import type { IndexEntry } from './index-file.js';
import type { PoolPaths } from './pool-layout.js';

const MAX_PARALLEL_WRITES = 2;

export class PackWriter {
  private parts: Uint8Array[] = [];
  private entries: PackEntry[] = [];
  private bytes = PACK_MAGIC.length;
  private readonly writing = new Set<Promise<void>>();
  private readonly done: IndexEntry[] = [];
  private readonly dirs = new Set<string>();
  private failure: Error | undefined;
  storedBytes = 0;
  packsWritten = 0;

  constructor(
    private readonly paths: PoolPaths,
    private readonly packSize: number,
  ) {}

  async add(digest: string, length: number, data: Uint8Array, flags: number): Promise<void> {
    if (this.failure) throw this.failure;
    this.entries.push({ digest, offset: this.bytes, storedLength: data.length, length, flags });
    this.parts.push(data);
    this.bytes += data.length;
    if (this.bytes >= this.packSize) await this.seal();
  }

  /** Seals the open pack and waits until all packs are durable. */
  async finish(): Promise<IndexEntry[]> {
    await this.seal();
    while (this.writing.size > 0) await Promise.race(this.writing);
    if (this.failure) throw this.failure;
    for (const d of this.dirs) await fsyncDir(d);
    return this.done;
  }

  private async seal(): Promise<void> {
    if (this.entries.length === 0) return;
    const id = randomBytes(16).toString('hex');
    const parts = [PACK_MAGIC, ...this.parts, encodeTrailer(this.entries)];
    const entries = this.entries;
    this.parts = [];
    this.entries = [];
    this.bytes = PACK_MAGIC.length;
    while (this.writing.size >= MAX_PARALLEL_WRITES) await Promise.race(this.writing);
    const p = this.write(id, parts).then(
      () => {
        for (const e of entries) this.done.push({ ...e, pack: id });
      },
      (err: unknown) => {
        this.failure ??= err instanceof Error ? err : new Error(String(err));
      },
    );
    const tracked = p.finally(() => this.writing.delete(tracked));
    this.writing.add(tracked);
  }

  private async write(id: string, parts: Uint8Array[]): Promise<void> {
    const dir = this.paths.packDir(id);
    await mkdir(dir, { recursive: true });
    this.dirs.add(dir);
    const fh = await open(this.paths.pack(id), 'wx', 0o444);
    try {
      await fh.writev(parts);
      await fh.sync();
    } finally {
      await fh.close();
    }
    for (const p of parts) this.storedBytes += p.length;
    this.packsWritten++;
  }
}
