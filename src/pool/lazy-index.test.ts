import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { digestOf } from '../core/digest.js';
import type { ChunkRef } from '../core/manifest.js';
import { Pool } from './pool.js';
import { poolOfChunks } from './pool-fixtures.test.js';

test('a lazily opened pool reads a few chunks without loading its index, and loads it for more or for a write session', async () => {
  const { dir, chunks } = await poolOfChunks(12, 'hf-lazy-');
  try {
    const pool = await Pool.open(dir, { lazyIndex: true });
    try {
      assert.equal(pool.viewLoaded, false);
      assert.equal(pool.index.size, 0);
      const few = chunks.slice(3, 6);
      const got = await pool.reader.read(few.map((c) => c.ref));
      got.forEach((b, i) => assert.ok(Buffer.from(b).equals((few[i] as { data: Buffer }).data)));
      assert.equal(pool.viewLoaded, false, 'three chunks were found by scanning the index files');
      // A digest no index file has: missing after the view is loaded, named in the error.
      const absent = randomBytes(32).toString('hex');
      await assert.rejects(pool.reader.read([[absent, 10]]), (err: Error) => err.message.includes(absent));
      assert.equal(pool.viewLoaded, true, 'a miss loads the view before calling the chunk missing');
      assert.equal(pool.index.size, 12);
    } finally {
      await pool.close();
    }

    const many = await Pool.open(dir, { lazyIndex: true });
    try {
      const got = await many.reader.read(chunks.map((c) => c.ref));
      got.forEach((b, i) => assert.ok(Buffer.from(b).equals((chunks[i] as { data: Buffer }).data)));
      assert.equal(many.viewLoaded, true, 'twelve chunks are more than a scan looks up');
    } finally {
      await many.close();
    }

    const writer = await Pool.open(dir, { lazyIndex: true });
    try {
      const s = writer.startSession(0);
      assert.equal(writer.viewLoaded, false, 'a session alone does not load the view');
      const fresh = digestOf(randomBytes(64));
      assert.deepEqual(await s.want([(chunks[0] as { ref: ChunkRef }).ref[0], fresh]), [false, true], 'the stored chunk is known, the new one claimed');
      assert.equal(writer.viewLoaded, true);
      s.abort();
    } finally {
      await writer.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a lazy read falls back to loading the view when an index file is damaged, and reports it', async () => {
  const { dir, chunks } = await poolOfChunks(3, 'hf-lazy-');
  try {
    const first = chunks[0] as { ref: ChunkRef; data: Buffer };
    // Index files are named by random pack ids: damage one that does not hold the chunk read.
    const key = Buffer.from(first.ref[0], 'hex');
    const idx = readdirSync(join(dir, 'index')).filter((f) => f.endsWith('.idx') && !readFileSync(join(dir, 'index', f)).includes(key));
    appendFileSync(join(dir, 'index', idx[0] as string), 'x'); // its checksum no longer matches
    const pool = await Pool.open(dir, { lazyIndex: true });
    try {
      const [b] = await pool.reader.read([first.ref]);
      assert.ok(Buffer.from(b as Uint8Array).equals(first.data));
      assert.equal(pool.viewLoaded, true, 'the scan gave up on the damaged file; the view answered');
      assert.equal(pool.damagedIndexes.length, 1);
      assert.match(pool.damagedIndexes[0] as string, new RegExp(idx[0] as string));
    } finally {
      await pool.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
