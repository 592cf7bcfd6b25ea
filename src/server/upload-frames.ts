/**
 * An agent's upload body (chunk frames) as the server takes it: frames decoded and bounded, then
 * every chunk decompressed and re-hashed in a codec worker before it may go near a pack. The
 * body is moved to the worker and back, not copied, and no plaintext is kept: the pack stores
 * the chunks as they came.
 */
import { decodeFrames, type ChunkFrame } from '../core/chunk-frames.js';
import { HoldfastError } from '../core/errors.js';
import type { CodecPool } from '../workers/codec-pool.js';

const MAX_CHUNK = 16 * 1024 * 1024;

/** The body's frames, each within the chunk size limit. */
export function uploadFrames(body: Uint8Array): ChunkFrame[] {
  const frames = decodeFrames(body);
  for (const f of frames) {
    if (f.length > MAX_CHUNK || f.data.length > MAX_CHUNK + 1024) throw new HoldfastError('BAD_ARGUMENT', `chunk ${f.digest} is larger than ${MAX_CHUNK} bytes`);
  }
  return frames;
}

/**
 * Checks every frame against its digest; a mismatch is refused, naming the chunk. Returns the
 * frames with their data in the buffer that came back (the caller's `body` is void afterwards).
 */
export async function verifyFrames(codec: CodecPool, body: Uint8Array, frames: ChunkFrame[]): Promise<ChunkFrame[]> {
  // Taken before the move: the views read as empty once their buffer has gone to the worker.
  const at = frames.map((f) => [f.data.byteOffset - body.byteOffset, f.data.byteLength] as const);
  const { results, back } = await codec.verify(
    frames.map((f) => ({ data: f.data, flags: f.flags, length: f.length, digest: f.digest })),
    body,
  );
  results.forEach((r, i) => {
    if (!r.ok) throw new HoldfastError('BAD_ARGUMENT', `uploaded chunk ${frames[i]?.digest} does not match its digest: ${r.reason}`, { digest: frames[i]?.digest });
  });
  if (!back) return frames;
  return frames.map((f, i) => {
    const [off, len] = at[i] as readonly [number, number];
    return { ...f, data: back.subarray(off, off + len) };
  });
}
