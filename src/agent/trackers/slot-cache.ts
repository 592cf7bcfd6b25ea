/**
 * The qcow2 tracker's copy of a committed point's chunk slots, kept beside its state so the next
 * sync need not read the parent's manifest back (an image's manifest is one entry of 131,072
 * chunk references per 2 GiB: reading, decompressing and parsing it is most of an incremental
 * sync's own work). Binary: a JSON header line (point, its manifest's chunk digests, size, chunk
 * size, a SHA-256 of the slots), then per slot its 32-byte digest and a u32 length (0: a hole).
 * Written after the point is committed; trusted only for exactly that point and manifest and when
 * the checksum holds, else the tracker reads the parent's manifest as before. The agent daemon
 * also keeps the last slots it saved per file in memory, so its next sync reads no file at all.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rename } from 'node:fs/promises';
import type { ChunkRef } from '../../core/manifest.js';

export interface SlotCacheHeader {
  pointId: string;
  /** digests of the point's manifest chunks */
  manifest: string[];
  size: number;
  chunk: number;
}

const SLOT_BYTES = 36;

/** The slots last saved to each file by this process (never changed after saving: loads copy them). */
const inMemory = new Map<string, { header: SlotCacheHeader; slots: Array<ChunkRef | null> }>();

const sameHeader = (a: SlotCacheHeader, b: SlotCacheHeader): boolean =>
  a.pointId === b.pointId && a.size === b.size && a.chunk === b.chunk && a.manifest.length === b.manifest.length && a.manifest.every((d, i) => d === b.manifest[i]);

/** Forgets the slots kept in memory, as a restarted agent has none (tests). */
export function forgetKeptSlots(): void {
  inMemory.clear();
}

export async function saveSlots(file: string, header: SlotCacheHeader, slots: Array<ChunkRef | null>): Promise<void> {
  inMemory.set(file, { header, slots });
  const body = Buffer.alloc(slots.length * SLOT_BYTES);
  slots.forEach((ref, i) => {
    if (!ref) return;
    body.write(ref[0], i * SLOT_BYTES, 32, 'hex');
    body.writeUInt32LE(ref[1], i * SLOT_BYTES + 32);
  });
  const head = Buffer.from(`${JSON.stringify({ ...header, body: sha256(body) })}\n`);
  // No fsync: after a crash the checksum refuses whatever did not land, and the manifest is read.
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writev([head, body]);
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

/** The slots saved for exactly this point and manifest, size and grid; otherwise undefined. */
export async function loadSlots(file: string, want: SlotCacheHeader): Promise<Array<ChunkRef | null> | undefined> {
  const mem = inMemory.get(file);
  if (mem && sameHeader(mem.header, want)) return mem.slots.slice();
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch {
    return undefined;
  }
  const nl = buf.indexOf(10);
  if (nl < 0) return undefined;
  let h: SlotCacheHeader & { body?: string };
  try {
    h = JSON.parse(buf.subarray(0, nl).toString('utf8')) as SlotCacheHeader & { body?: string };
  } catch {
    return undefined;
  }
  const count = Math.ceil(want.size / want.chunk);
  const same = h.pointId === want.pointId && h.size === want.size && h.chunk === want.chunk && h.manifest?.join(',') === want.manifest.join(',');
  if (!same || buf.length - nl - 1 !== count * SLOT_BYTES) return undefined;
  const body = buf.subarray(nl + 1);
  if (h.body !== sha256(body)) return undefined;
  const slots = new Array<ChunkRef | null>(count);
  // One hex conversion sliced per slot: several times faster than one conversion per digest.
  const hex = body.toString('hex');
  for (let i = 0; i < count; i++) {
    const len = body.readUInt32LE(i * SLOT_BYTES + 32);
    slots[i] = len === 0 ? null : [hex.slice(2 * i * SLOT_BYTES, 2 * i * SLOT_BYTES + 64), len];
  }
  return slots;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
