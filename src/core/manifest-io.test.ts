import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ChunkSink, ChunkSource, NewChunk } from './chunk-io.js';
import { decodeChunk, type StoredChunk } from './codec.js';
import { ManifestWriter, readManifest, type KeptFiles } from './manifest-io.js';
import { hasContent, type ChunkRef, type Entry, type FileEntry } from './manifest.js';

/** Chunks in memory, as the pool keeps them. */
class Store implements ChunkSink, ChunkSource {
  readonly compressionLevel = 0;
  readonly chunks = new Map<string, NewChunk>();
  want(digests: string[]): Promise<boolean[]> {
    return Promise.resolve(digests.map((d) => !this.chunks.has(d)));
  }
  put(chunks: NewChunk[]): Promise<void> {
    for (const c of chunks) this.chunks.set(c.digest, c);
    return Promise.resolve();
  }
  read(refs: ChunkRef[]): Promise<Uint8Array[]> {
    return Promise.resolve(
      refs.map(([digest, length]) => {
        const c = this.chunks.get(digest) as NewChunk;
        const r = decodeChunk(c.encoded.data, c.encoded.flags, length, digest);
        if (!r.ok) throw new Error(r.reason);
        return r.data;
      }),
    );
  }
  readEncoded(refs: ChunkRef[]): Promise<StoredChunk[]> {
    return Promise.resolve(refs.map(([digest, length]) => ({ digest, length, ...(this.chunks.get(digest) as NewChunk).encoded })));
  }
}

const meta = { mode: 0o644, uid: 0, gid: 0, mtimeNs: '1' };
const ref = (i: number): ChunkRef => [createHash('sha256').update(String(i)).digest('hex'), 16384];
const entries = (files: number, refsEach: number): Entry[] => [
  { type: 'dir', path: 'd', ...meta },
  ...Array.from({ length: files }, (_, f): Entry => ({ type: 'file', path: `d/f${f}`, ...meta, size: refsEach * 16384, chunks: Array.from({ length: refsEach }, (_, i) => ref(f * 1000 + i)) })),
  { type: 'hardlink', path: 'd/link', target: 'd/f0', ...meta, size: refsEach * 16384, chunks: Array.from({ length: refsEach }, (_, i) => ref(i)) },
];

async function write(es: Entry[], keep: KeptFiles): Promise<{ store: Store; refs: ChunkRef[] }> {
  const store = new Store();
  const w = new ManifestWriter(store, 'dir', keep);
  for (const e of es) await w.add(e);
  return { store, refs: await w.finish() };
}

test('the files kept while writing are the files the manifest reads back as (a hard link as a file)', async () => {
  const keep: KeptFiles = { files: new Map(), maxRefs: 10_000, refs: 0, whole: true };
  const { store, refs } = await write(entries(20, 300), keep);
  const back = new Map<string, FileEntry>();
  for await (const e of readManifest(store, refs)) if (hasContent(e)) back.set(e.path, { ...e, type: 'file' });
  assert.equal(keep.whole, true);
  assert.equal(back.size, 21);
  assert.deepEqual(new Map([...keep.files].map(([p, e]) => [p, JSON.parse(JSON.stringify(e)) as FileEntry])), back);
});

test('a manifest with more chunk references than the bound keeps no files', async () => {
  const keep: KeptFiles = { files: new Map(), maxRefs: 1000, refs: 0, whole: true };
  await write(entries(20, 300), keep);
  assert.equal(keep.whole, false);
  assert.equal(keep.files.size, 0);
});
