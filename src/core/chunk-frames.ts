/**
 * The wire form of chunks between agent and server: a body of frames, each
 *
 *   digest[32] | length u32 (plaintext) | flags u8 | storedLength u32 | stored bytes
 *
 * The stored bytes are exactly what the pool keeps (zstd or raw, per flags), so the server
 * verifies and stores them without re-compressing, and restores send them as they lie.
 */
import { HoldfastError } from './errors.js';

const HEAD = 41;

/**
 * A frame flag of the wire only, never stored: the chunk is part of a manifest, so the server
 * keeps its plaintext (verified) for the commit's check instead of reading it back from the pool.
 */
export const FRAME_MANIFEST = 0x80;

export interface ChunkFrame {
  digest: string;
  length: number;
  flags: number;
  data: Uint8Array;
}

export function framesLength(frames: ChunkFrame[]): number {
  let n = 0;
  for (const f of frames) n += HEAD + f.data.length;
  return n;
}

/** Room one frame takes in a body. */
export function frameLength(f: ChunkFrame): number {
  return HEAD + f.data.length;
}

/** Writes one frame into `out` at `o` (which must have room); returns the offset after it. */
export function writeFrame(out: Buffer, o: number, f: ChunkFrame): number {
  out.write(f.digest, o, 32, 'hex');
  out.writeUInt32LE(f.length, o + 32);
  out.writeUInt8(f.flags, o + 36);
  out.writeUInt32LE(f.data.length, o + 37);
  out.set(f.data, o + HEAD);
  return o + HEAD + f.data.length;
}

/** The frames as one body. */
export function encodeFrames(frames: ChunkFrame[]): Buffer {
  const out = Buffer.allocUnsafe(framesLength(frames));
  let o = 0;
  for (const f of frames) o = writeFrame(out, o, f);
  return out;
}

/** Frames as views of `body`; throws BAD_ARGUMENT on a malformed body. */
export function decodeFrames(body: Uint8Array): ChunkFrame[] {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const out: ChunkFrame[] = [];
  let o = 0;
  while (o < buf.length) {
    if (o + HEAD > buf.length) throw new HoldfastError('BAD_ARGUMENT', `chunk frames: truncated header at byte ${o}`);
    const stored = buf.readUInt32LE(o + 37);
    if (o + HEAD + stored > buf.length) throw new HoldfastError('BAD_ARGUMENT', `chunk frames: truncated chunk at byte ${o}`);
    out.push({ digest: buf.toString('hex', o, o + 32), length: buf.readUInt32LE(o + 32), flags: buf.readUInt8(o + 36), data: buf.subarray(o + HEAD, o + HEAD + stored) });
    o += HEAD + stored;
  }
  return out;
}
