/**
 * Writing and reading manifest streams through the chunk seams. The JSON-lines stream is cut
 * with content-defined chunking, so a recovery point that changed little stores little.
 */
import { cdcSplit, MANIFEST_CDC } from './chunker.js';
import { digestOf } from './digest.js';
import { encodeChunk } from './codec.js';
import type { ChunkSink, ChunkSource, NewChunk } from './chunk-io.js';
import { checkContentShape, decodeEntry, decodeHeader, encodeLine, hasContent, MANIFEST_VERSION, type ChunkRef, type Entry, type FileEntry, type ManifestHeader } from './manifest.js';
import { HoldfastError } from './errors.js';

/**
 * The files a manifest holds, by path, as `parentFiles` would read them back (a content-bearing
 * hard link as a file), kept while writing: up to `maxRefs` chunk references, else none at all.
 */
export interface KeptFiles {
  files: Map<string, FileEntry>;
  maxRefs: number;
  refs: number;
  /** false once the manifest outgrew maxRefs (files is then empty) */
  whole: boolean;
}

export class ManifestWriter {
  private parts: Buffer[] = [];
  private bytes = 0;
  private readonly refs: ChunkRef[] = [];
  entries = 0;

  constructor(
    private readonly sink: ChunkSink,
    kind: ManifestHeader['kind'],
    private readonly keep?: KeptFiles,
  ) {
    this.append(encodeLine({ holdfast: 'manifest', v: MANIFEST_VERSION, kind } satisfies ManifestHeader));
  }

  async add(e: Entry): Promise<void> {
    // Never commit an entry the reader would refuse: a bug here must fail the backup, not the restore.
    if (hasContent(e)) checkContentShape(e);
    this.entries++;
    if (this.keep?.whole && hasContent(e)) this.keepFile(this.keep, e);
    this.append(encodeLine(e));
    if (this.bytes >= 4 * MANIFEST_CDC.max) await this.cut(false);
  }

  async finish(): Promise<ChunkRef[]> {
    await this.cut(true);
    return this.refs;
  }

  private keepFile(k: KeptFiles, e: FileEntry): void {
    k.refs += e.chunks.length + 1;
    if (k.refs > k.maxRefs) {
      k.whole = false;
      k.files.clear();
      return;
    }
    k.files.set(e.path, e.type === 'file' ? e : { ...e, type: 'file' });
  }

  private append(line: string): void {
    const b = Buffer.from(line, 'utf8');
    this.parts.push(b);
    this.bytes += b.length;
  }

  private async cut(final: boolean): Promise<void> {
    const buf = Buffer.concat(this.parts);
    const { lengths, rest } = cdcSplit(buf, MANIFEST_CDC, final);
    const fresh: NewChunk[] = [];
    let pos = 0;
    const level = this.sink.compressionLevel;
    const digests = lengths.map((len) => {
      const d = digestOf(buf.subarray(pos, pos + len));
      pos += len;
      return d;
    });
    const wanted = await this.sink.want(digests);
    pos = 0;
    lengths.forEach((len, i) => {
      const piece = buf.subarray(pos, pos + len);
      pos += len;
      const digest = digests[i] as string;
      this.refs.push([digest, len]);
      if (wanted[i]) fresh.push({ digest, length: len, encoded: encodeChunk(Buffer.from(piece), level) });
    });
    if (fresh.length > 0) await this.sink.put(fresh);
    const tail = buf.subarray(buf.length - rest);
    this.parts = rest > 0 ? [Buffer.from(tail)] : [];
    this.bytes = rest;
  }
}

/** Streams a manifest's entries in order; the header is checked first. */
export async function* readManifest(source: ChunkSource, refs: ChunkRef[], signal?: AbortSignal): AsyncGenerator<Entry> {
  // Lines are gathered as bytes: an image's one long line must not be rebuilt per chunk.
  let parts: Buffer[] = [];
  let header: ManifestHeader | undefined;
  const BATCH = 16;
  let next: Promise<Uint8Array[]> | undefined = refs.length > 0 ? source.read(refs.slice(0, BATCH), signal) : undefined;
  for (let i = 0; i < refs.length; i += BATCH) {
    const chunks = await (next as Promise<Uint8Array[]>);
    next = i + BATCH < refs.length ? source.read(refs.slice(i + BATCH, i + 2 * BATCH), signal) : undefined;
    for (const c of chunks) {
      const buf = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
      let start = 0;
      let nl: number;
      while ((nl = buf.indexOf(10, start)) >= 0) {
        parts.push(buf.subarray(start, nl));
        const line = (parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts)).toString('utf8');
        parts = [];
        start = nl + 1;
        if (!header) header = decodeHeader(line);
        else yield decodeEntry(line);
      }
      if (start < buf.length) parts.push(buf.subarray(start));
    }
  }
  if (parts.length > 0) throw new HoldfastError('POOL_CORRUPT', 'manifest ends in the middle of a line');
  if (!header) throw new HoldfastError('POOL_CORRUPT', 'manifest is empty');
}
