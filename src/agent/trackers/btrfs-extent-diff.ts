/**
 * Narrows the ranges `btrfs send --no-data` reports written in a file to the bytes whose extents
 * really differ between the two snapshots. The send stream reports whole file extent items that
 * a write split (a 64 KiB write into a 128 MiB extent can come back as megabytes), but a snapshot
 * shares every unwritten block with its parent: a byte whose logical offset maps to the same
 * physical address in both snapshots' files is the same byte (copy-on-write never reuses an
 * address the older snapshot still holds; a nodatacow file copies a shared block on write too).
 *
 * The maps come from FIEMAP (`filefrag -v`). Only plain extents are compared: a compressed
 * ("encoded") or inline extent, or one not on disk yet, reports no usable per-byte address, and
 * then the send stream's ranges are kept as they are.
 */
import type { ByteRange } from '../nbd/nbd-client.js';
import { runTool } from './run-tool.js';

/** A file's data extents in bytes: logical start, physical start, length; sorted by logical. */
export interface Extent {
  logical: number;
  physical: number;
  length: number;
}

const PLAIN = new Set(['shared', 'last', 'eof', 'merged']);

/** Parses `filefrag -v` output; undefined when an extent is not plain (see above). */
export function parseFilefrag(text: string): Extent[] | undefined {
  const bs = /blocks of (\d+) bytes/.exec(text);
  const block = bs ? Number(bs[1]) : 4096;
  const out: Extent[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+(\d+)\.\.\s*(\d+):\s+(\d+):\s*(?:\d+:)?\s*(.*)$/.exec(line);
    if (!m) continue;
    const flags = (m[6] as string).trim();
    if (flags !== '' && flags.split(',').some((f) => !PLAIN.has(f.trim()))) return undefined;
    out.push({ logical: Number(m[1]) * block, physical: Number(m[3]) * block, length: Number(m[5]) * block });
  }
  return out.sort((a, b) => a.logical - b.logical);
}

export async function fileExtents(path: string, signal?: AbortSignal): Promise<Extent[] | undefined> {
  // e2fsprogs (Essential in Debian) installs it in /usr/sbin, which a non-root PATH may lack.
  for (const cmd of ['filefrag', '/usr/sbin/filefrag']) {
    try {
      return parseFilefrag(await runTool(cmd, ['-v', path], signal));
    } catch {
      // not here, or FIEMAP refused: try the next, then keep the send stream's ranges
    }
  }
  return undefined;
}

/** Where a sorted extent list maps [from, to): pieces with their physical start, or -1 for a hole. */
function pieces(ext: Extent[], from: number, to: number): Array<{ start: number; end: number; phys: number }> {
  const out: Array<{ start: number; end: number; phys: number }> = [];
  let pos = from;
  // Binary search for the first extent that ends after `from`.
  let lo = 0;
  let hi = ext.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const e = ext[mid] as Extent;
    if (e.logical + e.length <= from) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < ext.length && pos < to; i++) {
    const e = ext[i] as Extent;
    if (e.logical >= to) break;
    if (e.logical > pos) {
      out.push({ start: pos, end: e.logical, phys: -1 });
      pos = e.logical;
    }
    const end = Math.min(to, e.logical + e.length);
    if (end > pos) out.push({ start: pos, end, phys: e.physical + (pos - e.logical) });
    pos = Math.max(pos, end);
  }
  if (pos < to) out.push({ start: pos, end: to, phys: -1 });
  return out;
}

/** The parts of `written` where `prev` and `cur` map bytes differently, merged and sorted. */
export function changedRanges(written: ByteRange[], prev: Extent[], cur: Extent[]): ByteRange[] {
  const out: ByteRange[] = [];
  const add = (start: number, end: number): void => {
    const last = out[out.length - 1];
    if (last && last.offset + last.length >= start) last.length = Math.max(last.length, end - last.offset);
    else out.push({ offset: start, length: end - start });
  };
  for (const w of [...written].sort((a, b) => a.offset - b.offset)) {
    if (w.length <= 0) continue;
    const a = pieces(prev, w.offset, w.offset + w.length);
    const b = pieces(cur, w.offset, w.offset + w.length);
    let i = 0;
    let j = 0;
    let pos = w.offset;
    while (i < a.length && j < b.length) {
      const pa = a[i] as { start: number; end: number; phys: number };
      const pb = b[j] as { start: number; end: number; phys: number };
      const end = Math.min(pa.end, pb.end);
      const same = pa.phys === -1 ? pb.phys === -1 : pb.phys !== -1 && pa.phys + (pos - pa.start) === pb.phys + (pos - pb.start);
      if (!same) add(pos, end);
      pos = end;
      if (pa.end === end) i++;
      if (pb.end === end) j++;
    }
  }
  return out;
}
