/** Chunk digests: SHA-256 of the plaintext, carried as lowercase hex strings in manifests and maps. */
import { createHash } from 'node:crypto';

export type Digest = string;
export const DIGEST_BYTES = 32;

export function digestOf(data: Uint8Array): Digest {
  return createHash('sha256').update(data).digest('hex');
}

export function digestToBytes(d: Digest): Buffer {
  return Buffer.from(d, 'hex');
}

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
}
