/**
 * Every chunk a recovery point needs: its manifest's own chunks, then the chunks of every file
 * entry in it. gc marks from this, usage counts from it, and the commit check reads it when it
 * cannot rely on its session's bookkeeping.
 */
import type { ChunkSource } from '../core/chunk-io.js';
import { readManifest } from '../core/manifest-io.js';
import { hasContent, type ChunkRef } from '../core/manifest.js';

export async function forEachPointChunk(source: ChunkSource, manifest: ChunkRef[], fn: (digest: string, length: number) => void, signal?: AbortSignal): Promise<void> {
  for (const [d, l] of manifest) fn(d, l);
  for await (const e of readManifest(source, manifest, signal)) {
    if (!hasContent(e)) continue;
    for (const [d, l] of e.chunks) fn(d, l);
  }
}

export async function pointDigests(source: ChunkSource, manifest: ChunkRef[], signal?: AbortSignal): Promise<Set<string>> {
  const out = new Set<string>();
  await forEachPointChunk(source, manifest, (d) => out.add(d), signal);
  return out;
}
