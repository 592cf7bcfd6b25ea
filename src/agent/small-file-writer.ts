/**
 * Restores small files in batches: their stored chunks are fetched together (neighbouring
 * chunks in one read) and a codec worker verifies and writes whole files, so the main thread
 * spends no system calls on them.
 */
import type { ChunkSource } from '../core/chunk-io.js';
import { chunkOffsets, type FileEntry } from '../core/manifest.js';
import { HoldfastError, type ErrorCode } from '../core/errors.js';
import type { CodecPool, FileWriteItem } from '../workers/codec-pool.js';

const BATCH_FILES = 64;
const BATCH_BYTES = 4 * 1024 * 1024;

interface Pending {
  e: FileEntry;
  abs: string;
  resolve: (warnings: string[]) => void;
  reject: (err: unknown) => void;
}

export class SmallFileWriter {
  private pending: Pending[] = [];
  private bytes = 0;
  private scheduled = false;

  constructor(
    private readonly source: ChunkSource,
    private readonly codec: CodecPool,
    private readonly label: string,
    private readonly signal?: AbortSignal,
    /** largest single write (RangeWriteItem.maxWrite) */
    private readonly maxWrite?: number,
  ) {}

  /** Writes the file and applies its metadata; resolves with any metadata warnings. */
  write(e: FileEntry, abs: string): Promise<string[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ e, abs, resolve, reject });
      this.bytes += e.size;
      if (this.pending.length >= BATCH_FILES || this.bytes >= BATCH_BYTES) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.bytes = 0;
    this.run(batch).catch((err: unknown) => batch.forEach((p) => p.reject(err)));
  }

  private async run(batch: Pending[]): Promise<void> {
    const refs = batch.flatMap((p) => p.e.chunks);
    const stored = await this.source.readEncoded(refs, this.signal);
    let k = 0;
    const items: FileWriteItem[] = batch.map((p) => ({
      path: p.abs,
      size: p.e.size,
      pieces: [...chunkOffsets(p.e)].map((c) => ({ ...stored[k++]!, offset: c.offset })),
      meta: { type: p.e.type, path: p.e.path, mode: p.e.mode, uid: p.e.uid, gid: p.e.gid, mtimeNs: p.e.mtimeNs, atimeNs: p.e.atimeNs, xattrs: p.e.xattrs },
      ...(this.maxWrite ? { maxWrite: this.maxWrite } : {}),
    }));
    const results = await this.codec.writeFiles(items);
    results.forEach((r, i) => {
      const p = batch[i] as Pending;
      if (r.ok) p.resolve(r.warnings);
      else if (r.code === 'CHUNK_CORRUPT') p.reject(new HoldfastError('CHUNK_CORRUPT', `${this.label}: ${p.e.path}: ${r.message}`, { path: p.e.path }));
      else p.reject(Object.assign(new Error(`${p.abs}: ${r.message}`), { code: r.code as ErrorCode }));
    });
  }
}
