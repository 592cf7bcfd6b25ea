/**
 * An image as a row of fixed-size chunk slots (16 KiB by default): each slot holds a chunk
 * reference or nothing (all zero, a hole). A tracker starts from the parent recovery point's
 * slots, replaces the slots its change map marks, and writes the result back as one manifest
 * entry's chunks and holes: a new logical full for the cost of the changed slots.
 */
import { setMaxListeners } from 'node:events';
import type { ChunkSink } from '../../core/chunk-io.js';
import type { ChunkRef, FileEntry, Hole, PageLine } from '../../core/manifest.js';
import type { PageSource } from '../../core/manifest-io.js';
import { chunkOffsets } from '../../core/manifest.js';
import { throwIfAborted } from '../../core/errors.js';
import { storeWanted, type CodecBatcher } from '../../workers/codec-batcher.js';
import type { ByteRange } from '../nbd/nbd-client.js';

/** A run of slots [first, end). */
export interface SlotRun {
  first: number;
  end: number;
}

export class ImageSlots {
  private constructor(
    readonly size: number,
    readonly chunk: number,
    readonly slots: Array<ChunkRef | null>,
  ) {}

  static empty(size: number, chunk: number): ImageSlots {
    return new ImageSlots(size, chunk, new Array<ChunkRef | null>(Math.ceil(size / chunk)).fill(null));
  }

  /** Slots kept from a committed point (the qcow2 tracker's slot cache); undefined if they do not fit. */
  static fromSlots(size: number, chunk: number, slots: Array<ChunkRef | null>): ImageSlots | undefined {
    if (slots.length !== Math.ceil(size / chunk)) return undefined;
    const ok = slots.every((ref, i) => ref === null || ref[1] === Math.min(chunk, size - i * chunk));
    return ok ? new ImageSlots(size, chunk, slots) : undefined;
  }

  /**
   * The parent entry's layout as slots, or undefined when it does not sit on this grid (another
   * size, or written by a reader that cut differently): then nothing can be reused.
   */
  static fromEntry(e: FileEntry, size: number, chunk: number): ImageSlots | undefined {
    if (e.size !== size) return undefined;
    const out = ImageSlots.empty(size, chunk);
    for (const { ref, offset } of chunkOffsets(e)) {
      const i = offset / chunk;
      if (!Number.isInteger(i) || ref[1] !== Math.min(chunk, size - offset)) return undefined;
      out.slots[i] = ref;
    }
    return out;
  }

  /** Byte ranges widened to whole slots, merged. */
  runsOf(ranges: ByteRange[]): SlotRun[] {
    const out: SlotRun[] = [];
    for (const r of [...ranges].sort((a, b) => a.offset - b.offset)) {
      if (r.length <= 0) continue;
      const first = Math.floor(r.offset / this.chunk);
      const end = Math.min(this.slots.length, Math.ceil((r.offset + r.length) / this.chunk));
      const last = out[out.length - 1];
      if (last && last.end >= first) last.end = Math.max(last.end, end);
      else out.push({ first, end });
    }
    return out;
  }

  /** Chunks and holes of the manifest entry, in file order. */
  content(): { chunks: ChunkRef[]; holes: Hole[] } {
    const { chunks, holes } = this.cut(0, this.slots.length);
    return { chunks, holes: holes ?? [] };
  }

  /** Chunks and holes (adjacent empty slots merged; undefined when none) of slots [first, end). */
  private cut(first: number, end: number): { chunks: ChunkRef[]; holes: Hole[] | undefined } {
    const chunks: ChunkRef[] = [];
    let holes: Hole[] | undefined;
    for (let s = first; s < end; s++) {
      const ref = this.slots[s];
      if (ref) chunks.push(ref);
      else {
        const off = s * this.chunk;
        const len = Math.min(this.chunk, this.size - off);
        const last = holes?.[holes.length - 1];
        if (last && last[0] + last[1] === off) last[1] += len;
        else (holes ??= []).push([off, len]);
      }
    }
    return { chunks, holes };
  }

  /**
   * The slots as page lines of `span` bytes (a multiple of the chunk size), as `pagesOf` would cut
   * `content()`: one pass, without the whole chunk list in between.
   */
  pages(span: number): PageLine[] {
    const src = this.pageSource(span);
    return Array.from({ length: src.count }, (_, i) => src.page(i));
  }

  /** The same pages, each made only when asked for; `same` compares one with a kept page unmade. */
  pageSource(span: number): PageSource {
    const per = span / this.chunk;
    return {
      count: Math.ceil(this.size / span),
      page: (i) => {
        const at = i * span;
        const { chunks, holes } = this.cut(i * per, Math.min(this.slots.length, (i + 1) * per));
        const page: PageLine = { at, len: Math.min(span, this.size - at), chunks };
        if (holes) page.holes = holes;
        return page;
      },
      same: (i, kept) => {
        const at = i * span;
        if (kept.at !== at || kept.len !== Math.min(span, this.size - at)) return false;
        const holes = kept.holes ?? [];
        let c = 0;
        let h = 0;
        // The hole being matched: [start, end) so far, and the kept one it must become.
        let open = -1;
        let openEnd = -1;
        for (let s = i * per, end = Math.min(this.slots.length, s + per); s < end; s++) {
          const ref = this.slots[s];
          const off = s * this.chunk;
          if (ref) {
            if (open >= 0) {
              if (!closes(holes[h++], open, openEnd)) return false;
              open = -1;
            }
            const k = kept.chunks[c++];
            // The same reference object (an unchanged slot) is the common case: no string compared.
            if (!k || (k !== ref && (k[0] !== ref[0] || k[1] !== ref[1]))) return false;
          } else {
            if (open < 0) open = off;
            openEnd = off + Math.min(this.chunk, this.size - off);
          }
        }
        if (open >= 0 && !closes(holes[h++], open, openEnd)) return false;
        return c === kept.chunks.length && h === holes.length;
      },
    };
  }
}

const closes = (hole: Hole | undefined, start: number, end: number): boolean => hole !== undefined && hole[0] === start && hole[1] === end - start;

export interface SlotReadContext {
  /** `length` bytes at `offset`, read into `into` where the reader can (else returned elsewhere) */
  read(offset: number, length: number, signal: AbortSignal | undefined, into: Buffer): Promise<Buffer>;
  sink: ChunkSink;
  batcher: CodecBatcher;
  signal?: AbortSignal;
  counters: { readBytes: number };
  onRead?: (bytes: number) => void;
}

/** Bytes per read request; a multiple of every image chunk size in use. */
const PIECE = 4 * 1024 * 1024;
const DEPTH = 4;

/**
 * Reads the slots of `runs`, hashes them in the codec workers (all-zero slots become holes),
 * sends the chunks the sink lacks and puts the new references into `image`. Small runs (a dirty
 * bitmap's 64 KiB extents) are gathered into pieces of up to PIECE bytes, their reads issued
 * together, so a piece costs one hash round trip and one want/put however scattered it is. Up
 * to DEPTH pieces are in flight, so reading, hashing and storing overlap.
 */
export async function readSlots(ctx: SlotReadContext, image: ImageSlots, runs: SlotRun[]): Promise<void> {
  const perPiece = Math.max(1, Math.floor(PIECE / image.chunk));
  const pieces: SlotRun[][] = [];
  let cur: SlotRun[] = [];
  let slots = 0;
  for (const r of runs) {
    for (let s = r.first; s < r.end; ) {
      const take = Math.min(r.end - s, perPiece - slots);
      cur.push({ first: s, end: s + take });
      slots += take;
      s += take;
      if (slots >= perPiece) {
        pieces.push(cur);
        cur = [];
        slots = 0;
      }
    }
  }
  if (cur.length > 0) pieces.push(cur);
  const running = new Set<Promise<void>>();
  let failed: Error | undefined;
  for (const p of pieces) {
    throwIfAborted(ctx.signal);
    if (failed) break;
    const task = readPiece(ctx, image, p).catch((err: unknown) => {
      failed ??= err instanceof Error ? err : new Error(String(err));
    });
    running.add(task);
    void task.finally(() => running.delete(task));
    if (running.size >= DEPTH) await Promise.race(running);
  }
  await Promise.all(running);
  if (failed) throw failed;
}

/** One piece: its runs read side by side into one buffer (only the image's last slot can be short, and it comes last). */
async function readPiece(ctx: SlotReadContext, image: ImageSlots, runs: SlotRun[]): Promise<void> {
  const spans = runs.map((r) => ({ offset: r.first * image.chunk, length: Math.min(r.end * image.chunk, image.size) - r.first * image.chunk }));
  const length = spans.reduce((n, x) => n + x.length, 0);
  // One listener on the caller's signal per piece, not one per read.
  const ac = new AbortController();
  setMaxListeners(spans.length + 8, ac.signal);
  const stop = (): void => ac.abort();
  ctx.signal?.addEventListener('abort', stop, { once: true });
  if (ctx.signal?.aborted) ac.abort();
  // Each span is read straight into its place in the piece's buffer (no copy, no garbage).
  const buf = ctx.batcher.codec.buffer(length);
  let at = 0;
  const places = spans.map((x) => {
    const into = buf.subarray(at, at + x.length);
    at += x.length;
    return into;
  });
  try {
    await Promise.all(
      spans.map(async (x, i) => {
        const into = places[i] as Buffer;
        const got = await ctx.read(x.offset, x.length, ac.signal, into);
        if (got.buffer !== into.buffer || got.byteOffset !== into.byteOffset) got.copy(into);
      }),
    );
  } finally {
    ctx.signal?.removeEventListener('abort', stop);
  }
  ctx.counters.readBytes += length;
  ctx.onRead?.(length);
  const slotOf: number[] = [];
  for (const r of runs) for (let x = r.first; x < r.end; x++) slotOf.push(x);
  const h = await ctx.batcher.hash({ buf, rule: { kind: 'fixed', size: image.chunk }, detectZero: true });
  const wantedPieces: Array<[number, number]> = [];
  const digests: string[] = [];
  const lengths: number[] = [];
  let pos = 0;
  h.lengths.forEach((len, i) => {
    const slot = slotOf[i] as number;
    if (h.zero[i]) image.slots[slot] = null;
    else {
      const digest = h.digests[i] as string;
      image.slots[slot] = [digest, len];
      wantedPieces.push([pos, len]);
      digests.push(digest);
      lengths.push(len);
    }
    pos += len;
  });
  await storeWanted(ctx.sink, h.take, wantedPieces, digests, lengths);
}
