/**
 * The data side of one running job: for a sync, a pool write session fed by the agent's want
 * and chunk requests, and the commit that turns its manifest into a recovery point; for any job,
 * the chunks the agent may read (only those of the points the job names — an agent never reads
 * by digest alone).
 */
import { uploadFrames, verifyFrames } from './upload-frames.js';
import { releaseUploadBody } from './upload-body.js';
import { HoldfastError } from '../core/errors.js';
import { KeptManifest } from './kept-manifest.js';
import type { ChunkSource } from '../core/chunk-io.js';
import { readManifest, walkManifest, type PageSpan } from '../core/manifest-io.js';
import { chunkOffsets, hasContent, type ChunkRef } from '../core/manifest.js';
import type { StoredChunk } from '../core/codec.js';
import type { Pool } from '../pool/pool.js';
import type { PointRow } from '../pool/catalog.js';
import type { WriteSession } from '../pool/write-session.js';

export interface TransferScope {
  /** manifests the agent may read whole (their chunks and the content they reference) */
  contentOf: ChunkRef[][];
  /** manifests the agent may read only as manifests (a sync's parent point) */
  manifestsOnly: ChunkRef[][];
  /** raw chunk lists the agent may read (a restore's log records) */
  raw?: ChunkRef[][];
  /**
   * A sync's parent point as its job spec named it (the transfer is made when the spec is): the
   * commit refuses (RETRY) if it is no longer the source's latest point, and a manifest that is
   * exactly the parent's is not read back (it was when the parent was committed).
   */
  parent?: { id: string; manifest: ChunkRef[] } | null;
  /** the parent's page chunks its own commit checked (server/checked-pages.ts): skipped where they stand unchanged */
  parentPages?: Map<string, PageSpan>;
}

const sameRefs = (a: ChunkRef[], b: ChunkRef[]): boolean => a.length === b.length && a.every((r, i) => r[0] === b[i]?.[0] && r[1] === b[i]?.[1]);

export class JobTransfer {
  private session: WriteSession | undefined;
  private allowed: Set<string> | undefined;
  /** finished or aborted: late requests of this attempt are refused */
  private ended = false;
  /** the manifest chunks this attempt uploaded, for finish() */
  private readonly kept = new KeptManifest();
  receivedBytes = 0;
  receivedChunks = 0;

  constructor(
    private readonly pool: Pool,
    private readonly scope: TransferScope,
    private readonly compressionLevel: number,
  ) {}

  private writer(): WriteSession {
    if (this.ended) throw new HoldfastError('CONFLICT', 'this sync attempt is over; its uploads are refused');
    this.session ??= this.pool.startSession(this.compressionLevel);
    return this.session;
  }

  want(digests: string[]): boolean[] {
    const s = this.writer();
    return digests.map((d) => s.claim(d));
  }

  /**
   * Verifies every uploaded chunk against its digest before it goes near a pack. `release`: the
   * body came from readUploadBody and nothing else refers to it, so once stored it is kept for reuse.
   */
  async put(body: Uint8Array, release = false): Promise<number> {
    const bodyLength = body.length;
    const frames = await verifyFrames(this.pool.codec, body, uploadFrames(body));
    await this.writer().put(frames.map((f) => ({ digest: f.digest, length: f.length, encoded: { data: f.data, flags: f.flags } })));
    for (const f of frames) if (f.plain) this.kept.keep(f.digest, f.plain);
    // Stored (the writer copied what it keeps). The frames view the body as it came back from the
    // verify worker (moved there and back), so any one of them names its memory.
    const view = frames[0]?.data;
    if (release && view) releaseUploadBody(view);
    this.receivedBytes += bodyLength;
    this.receivedChunks += frames.length;
    return frames.length;
  }

  /** Stored chunks for the agent, after checking each is within the job's scope. */
  async read(refs: ChunkRef[]): Promise<StoredChunk[]> {
    const allowed = await this.allowedDigests();
    for (const [d] of refs) {
      if (!allowed.has(d)) throw new HoldfastError('FORBIDDEN', `chunk ${d} is not part of this job's recovery points`, { digest: d });
    }
    return this.pool.reader.readEncoded(refs);
  }

  private async allowedDigests(): Promise<Set<string>> {
    if (this.allowed) return this.allowed;
    const set = new Set<string>();
    for (const m of [...this.scope.manifestsOnly, ...this.scope.contentOf, ...(this.scope.raw ?? [])]) for (const [d] of m) set.add(d);
    for (const m of this.scope.contentOf) {
      for await (const e of readManifest(this.pool.reader, m)) {
        if (hasContent(e)) for (const { ref } of chunkOffsets(e)) set.add(ref[0]);
      }
    }
    this.allowed = set;
    return set;
  }

  /**
   * Everything the agent sent is durable and indexed, and the manifest it names is whole: every
   * entry decodes (paths checked) and every chunk it references is in the pool with its length.
   * The parent's own manifest (nothing changed) was checked so when the parent was committed, and
   * so were the parent's pages where they stand unchanged; the commit then checks that the parent
   * is still committed and sound, so gc kept their chunks.
   *
   * The walk runs while the session's packs are made durable: the new manifest chunks come from
   * what the upload kept of them, and a reference the index does not hold yet (a chunk of this
   * job still on its way to disk) is checked again once the packs are indexed.
   */
  async finish(manifest: ChunkRef[], kind: 'dir' | 'image'): Promise<{ newChunks: number; newBytes: number; storedNewBytes: number }> {
    const session = this.writer();
    this.ended = true;
    const flushing = session.finish();
    flushing.catch(() => undefined); // awaited below, after the walk
    const parent = this.scope.parent;
    if (parent && sameRefs(manifest, parent.manifest)) {
      this.kept.clear();
      const stats = await flushing;
      this.checkedPages = this.scope.parentPages ?? new Map<string, PageSpan>();
      return stats;
    }
    const pages = new Map<string, PageSpan>();
    const later: Array<{ ref: ChunkRef; path: string }> = [];
    let walkError: Error | undefined;
    try {
      await this.walk(manifest, kind, this.kept.source(this.pool.reader, flushing), pages, later);
    } catch (err) {
      walkError = err instanceof Error ? err : new Error(String(err));
    }
    this.kept.clear();
    const stats = await flushing;
    if (walkError) throw walkError;
    for (const { ref, path } of later) this.checkLength(ref, this.pool.index.lengthOf(ref[0]), path);
    this.checkedPages = pages;
    return stats;
  }

  private async walk(manifest: ChunkRef[], kind: 'dir' | 'image', source: ChunkSource, pages: Map<string, PageSpan>, later: Array<{ ref: ChunkRef; path: string }>): Promise<void> {
    const index = this.pool.index;
    // The manifest's own chunks read from memory must be in the pool too.
    for (const ref of manifest) if (this.kept.has(ref[0])) later.push({ ref, path: 'a manifest chunk' });
    let first = true;
    let events = 0;
    for await (const ev of walkManifest(source, manifest, { known: this.scope.parentPages, onPage: (d, span) => pages.set(d, span) })) {
      // Pages kept in memory come without a pause: let the pack flush this walk overlaps go on.
      if (++events % 16 === 0) await new Promise((r) => setImmediate(r));
      const e = ev.kind === 'entry' ? ev.entry : ev.head;
      if (first && kind === 'image' && e.type !== 'file') throw new HoldfastError('BAD_ARGUMENT', 'an image manifest must hold one file entry');
      first = false;
      const refs = ev.kind === 'page' ? ev.page.chunks : ev.kind === 'entry' && hasContent(ev.entry) ? ev.entry.chunks : [];
      for (const ref of refs) {
        const length = index.lengthOf(ref[0]);
        if (length === undefined) later.push({ ref, path: e.path });
        else this.checkLength(ref, length, e.path);
      }
    }
  }

  private checkLength(ref: ChunkRef, length: number | undefined, path: string): void {
    if (length === undefined) throw new HoldfastError('CHUNK_MISSING', `the manifest references chunk ${ref[0]} (${path}), which was never stored`, { digest: ref[0], path });
    if (length !== ref[1]) throw new HoldfastError('BAD_ARGUMENT', `the manifest gives chunk ${ref[0]} length ${ref[1]}, the pool ${length}`, { digest: ref[0] });
  }

  /** After finish(): the new manifest's page chunks, all checked (for the next sync of the source). */
  checkedPages = new Map<string, PageSpan>();

  /** Commits the point against this job's own write session (its lease and borrowed chunks). */
  async commit(row: PointRow, sourcePath: string): Promise<void> {
    const parent = this.scope.parent;
    if (parent !== undefined && row.parent !== (parent?.id ?? null)) {
      this.abort();
      throw new HoldfastError('RETRY', `the latest recovery point of source '${row.source}' changed while the sync ran (it started from ${parent?.id ?? 'none'}, the latest is now ${row.parent ?? 'none'}); run the sync again`);
    }
    await this.pool.commitPoint(row, sourcePath, this.session);
  }

  abort(): void {
    this.ended = true;
    this.kept.clear();
    this.session?.abort();
  }
}
