/**
 * Every chunk a recovery point needs: its manifest's own chunks, then the chunks of every file
 * entry in it. gc marks from this, usage counts from it, and the commit check reads it when it
 * cannot rely on its session's bookkeeping. Callers that walk many points pass `seen` (the pages
 * walked so far): a source's points share most of an image's pages, and each is read once.
 */
import type { ChunkSource } from '../core/chunk-io.js';
import { forEachManifestRef, type PageSpan } from '../core/manifest-io.js';
import type { ChunkRef } from '../core/manifest.js';

export function forEachPointChunk(source: ChunkSource, manifest: ChunkRef[], fn: (digest: string, length: number) => void, signal?: AbortSignal, seen?: Map<string, PageSpan>): Promise<void> {
  return forEachManifestRef(source, manifest, fn, { signal, seen });
}

export async function pointDigests(source: ChunkSource, manifest: ChunkRef[], signal?: AbortSignal): Promise<Set<string>> {
  const out = new Set<string>();
  await forEachPointChunk(source, manifest, (d) => out.add(d), signal);
  return out;
}
