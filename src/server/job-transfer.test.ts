import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { ChunkSink, NewChunk } from '../core/chunk-io.js';
import { encodeFrames, FRAME_MANIFEST } from '../core/chunk-frames.js';
import { encodeChunk } from '../core/codec.js';
import { ManifestWriter, type PageSpan } from '../core/manifest-io.js';
import type { ChunkRef, FileEntry } from '../core/manifest.js';
import { Pool } from '../pool/pool.js';
import type { PointRow } from '../pool/catalog.js';
import { JobTransfer } from './job-transfer.js';

const SLOT = 16384;
const SPAN = 128 * SLOT;

/**
 * A job transfer as the agent's sink: want and framed uploads, as over the wire; manifest chunks
 * marked as the agent marks them, unless `mark` is false (an agent that does not).
 */
function sinkOf(t: JobTransfer, mark = true): ChunkSink {
  return {
    compressionLevel: 1,
    want: (digests) => Promise.resolve(t.want(digests)),
    put: async (chunks: NewChunk[]) => {
      await t.put(encodeFrames(chunks.map((c) => ({ digest: c.digest, length: c.length, flags: c.encoded.flags | (mark && c.manifest ? FRAME_MANIFEST : 0), data: c.encoded.data }))));
    },
  };
}

const meta = { mode: 0o644, uid: 0, gid: 0, mtimeNs: '1' };

/** Stores `slots` chunks of an image through `t` and returns its entry (slot i's data seeded by `seed(i)`). */
async function image(t: JobTransfer, slots: number, seed: (i: number) => number): Promise<FileEntry> {
  const chunks: ChunkRef[] = [];
  const fresh: NewChunk[] = [];
  for (let i = 0; i < slots; i++) {
    const data = Buffer.alloc(SLOT, seed(i) % 251);
    data.writeUInt32LE(seed(i));
    const digest = createHash('sha256').update(data).digest('hex');
    chunks.push([digest, SLOT]);
    if (t.want([digest])[0]) fresh.push({ digest, length: SLOT, encoded: encodeChunk(data, 1) });
  }
  await sinkOf(t).put(fresh);
  return { type: 'file', path: 'disk.img', ...meta, size: slots * SLOT, chunks };
}

async function manifestOf(t: JobTransfer, e: FileEntry, mark = true): Promise<ChunkRef[]> {
  const w = new ManifestWriter(sinkOf(t, mark), 'image', { pageSpan: SPAN });
  await w.add(e);
  return w.finish();
}

const row = (manifest: ChunkRef[], parent: string | null): PointRow => ({
  id: randomBytes(6).toString('hex'), source: 'img', time: new Date().toISOString(), kind: 'image', manifest,
  logicalBytes: 0, files: 1, readBytes: 0, newBytes: 0, storedNewBytes: 0, durationMs: 0, parent, torn: 0,
});

/** Counts the chunks the pool's reader is asked for (the commit check's reads). */
function countReads(pool: Pool): { n: number } {
  const c = { n: 0 };
  const read = pool.reader.read.bind(pool.reader);
  pool.reader.read = (refs, signal) => {
    c.n += refs.length;
    return read(refs, signal);
  };
  return c;
}

test("the commit check skips the parent's checked pages where they stand, and checks new and moved ones", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-transfer-'));
  try {
    await Pool.init(join(dir, 'pool'));
    const pool = await Pool.open(join(dir, 'pool'));
    try {
      const slots = 8 * 128; // 8 pages
      const t1 = new JobTransfer(pool, { contentOf: [], manifestsOnly: [], parent: null }, 1);
      const e1 = await image(t1, slots, (i) => i);
      const m1 = await manifestOf(t1, e1);
      await t1.finish(m1, 'image');
      const p1 = row(m1, null);
      await t1.commit(p1, '/disk.img');
      assert.equal(t1.checkedPages.size, 8, 'every page read and checked');
      const checked = new Map<string, PageSpan>(t1.checkedPages);

      // One slot changed, from an agent that does not mark its manifest chunks: only the chunk
      // with the head line and the changed page are read from the pool.
      const reads = countReads(pool);
      const t2u = new JobTransfer(pool, { contentOf: [], manifestsOnly: [m1], parent: { id: p1.id, manifest: m1 }, parentPages: checked }, 1);
      const e2u = await image(t2u, slots, (i) => (i === 300 ? 100_001 : i));
      await t2u.finish(await manifestOf(t2u, e2u, false), 'image');
      assert.equal(reads.n, 2);
      t2u.abort();

      // Marked (as agents send them): the changed page comes from the upload, only the head
      // chunk (unchanged, not sent again) from the pool; and the changed slot's chunk, not yet
      // indexed while the walk ran, is checked once it is.
      reads.n = 0;
      const t2 = new JobTransfer(pool, { contentOf: [], manifestsOnly: [m1], parent: { id: p1.id, manifest: m1 }, parentPages: checked }, 1);
      const e2 = await image(t2, slots, (i) => (i === 300 ? 100_000 : i));
      const m2 = await manifestOf(t2, e2);
      await t2.finish(m2, 'image');
      assert.equal(reads.n, 1);
      assert.equal(t2.checkedPages.size, 8, 'skipped pages are passed on as checked');
      await t2.commit(row(m2, p1.id), '/disk.img');

      // A page kept from the upload naming a stored chunk with the wrong length is refused.
      const tl = new JobTransfer(pool, { contentOf: [], manifestsOnly: [m1], parent: { id: p1.id, manifest: m1 }, parentPages: checked }, 1);
      const el = await image(tl, slots, (i) => i);
      el.chunks[10] = [(el.chunks[10] as ChunkRef)[0], SLOT - 1];
      el.chunks[11] = [(el.chunks[11] as ChunkRef)[0], SLOT + 1];
      await assert.rejects(tl.finish(await manifestOf(tl, el), 'image'), /gives chunk [0-9a-f]{64} length 16383, the pool 16384/);

      // A new page naming a chunk never stored is refused even though the others are skipped.
      const t3 = new JobTransfer(pool, { contentOf: [], manifestsOnly: [m1], parent: { id: p1.id, manifest: m1 }, parentPages: checked }, 1);
      const e3 = await image(t3, slots, (i) => i);
      e3.chunks[700] = ['f'.repeat(64), SLOT];
      await assert.rejects(t3.finish(await manifestOf(t3, e3), 'image'), /references chunk f{64} \(disk.img\), which was never stored/);

      // Known pages moved to other places are read, not trusted: the walk refuses the misplaced page.
      const t4 = new JobTransfer(pool, { contentOf: [], manifestsOnly: [m1], parent: { id: p1.id, manifest: m1 }, parentPages: checked }, 1);
      const moved = [...m1];
      [moved[2], moved[5]] = [moved[5] as ChunkRef, moved[2] as ChunkRef];
      await assert.rejects(t4.finish(moved, 'image'), /page 1 should cover/);

      // Without the parent's pages (a restarted server), the whole manifest is read and checked.
      reads.n = 0;
      const t5 = new JobTransfer(pool, { contentOf: [], manifestsOnly: [m1], parent: { id: p1.id, manifest: m1 } }, 1);
      const e5 = await image(t5, slots, (i) => (i === 5 ? 7_000 : i));
      const m5 = await manifestOf(t5, e5, false);
      await t5.finish(m5, 'image');
      assert.equal(reads.n, m5.length);

      // A frame with a flag the wire does not define is refused, naming the chunk.
      const tf = new JobTransfer(pool, { contentOf: [], manifestsOnly: [], parent: null }, 1);
      const data = Buffer.alloc(100, 7);
      const digest = createHash('sha256').update(data).digest('hex');
      await assert.rejects(tf.put(encodeFrames([{ digest, length: 100, flags: 0x40, data }])), new RegExp(`chunk ${digest} has unknown flags 64`));
      tf.abort();
    } finally {
      await pool.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
