/**
 * An agent's upload body (chunk frames) as the server takes it: frames decoded and bounded, then
 * every chunk decompressed and re-hashed in a codec worker before it may go near a pack. The
 * body is moved to the worker and back, not copied, and no plaintext is kept but that of the
 * chunks the agent marks as part of a manifest: the pack stores the chunks as they came.
 */
import { decodeFrames, FRAME_MANIFEST, type ChunkFrame } from '../core/chunk-frames.js';
import { FLAG_ZSTD } from '../core/codec.js';
import { HoldfastError } from '../core/errors.js';
import type { CodecPool } from '../workers/codec-pool.js';

const MAX_CHUNK = 16 * 1024 * 1024;

/** The body's frames, each within the chunk size limit. */
export function uploadFrames(body: Uint8Array): ChunkFrame[] {
  const frames = decodeFrames(body);
  for (const f of frames) {
    if (f.length > MAX_CHUNK || f.data.length > MAX_CHUNK + 1024) throw new HoldfastError('BAD_ARGUMENT', `chunk ${f.digest} is larger than ${MAX_CHUNK} bytes`);
    if ((f.flags & ~(FLAG_ZSTD | FRAME_MANIFEST)) !== 0) throw new HoldfastError('BAD_ARGUMENT', `chunk ${f.digest} has unknown flags ${f.flags}`);
  }
  return frames;
}

/** A verified frame; `plain`: its plaintext, for a frame the agent marked as part of a manifest. */
export interface VerifiedFrame extends ChunkFrame {
  plain?: Buffer;
}

/**
 * Checks every frame against its digest; a mismatch is refused, naming the chunk. Returns the
 * frames with their data in the buffer that came back (the caller's `body` is void afterwards),
 * the wire-only manifest flag taken off, and the plaintext of the manifest chunks.
 */
export async function verifyFrames(codec: CodecPool, body: Uint8Array, frames: ChunkFrame[]): Promise<VerifiedFrame[]> {
  // Taken before the move: the views read as empty once their buffer has gone to the worker.
  const at = frames.map((f) => [f.data.byteOffset - body.byteOffset, f.data.byteLength] as const);
  const { results, back, kept } = await codec.verify(
    frames.map((f) => ({ data: f.data, flags: f.flags & ~FRAME_MANIFEST, length: f.length, digest: f.digest, keep: (f.flags & FRAME_MANIFEST) !== 0 })),
    body,
  );
  return frames.map((f, i) => {
    const r = results[i];
    if (!r?.ok) throw new HoldfastError('BAD_ARGUMENT', `uploaded chunk ${f.digest} does not match its digest: ${r?.reason ?? 'no result'}`, { digest: f.digest });
    const [off, len] = at[i] as readonly [number, number];
    const out: VerifiedFrame = { ...f, flags: f.flags & ~FRAME_MANIFEST, data: back ? back.subarray(off, off + len) : f.data };
    if (r.at && kept) out.plain = kept.subarray(r.at[0], r.at[0] + r.at[1]);
    return out;
  });
}
