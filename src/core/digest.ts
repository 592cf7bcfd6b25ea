/** Chunk digests: SHA-256 of the plaintext, carried as lowercase hex strings in manifests and maps. */
import { createHash } from 'node:crypto';

export type Digest = string;

export function digestOf(data: Uint8Array): Digest {
  return createHash('sha256').update(data).digest('hex');
}
