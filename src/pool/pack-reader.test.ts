import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, unlinkSync } from 'node:fs';
import type { ChunkRef } from '../core/manifest.js';
import { PackReader } from './pack-reader.js';
import { Pool } from './pool.js';
import { poolOfChunks } from './pool-fixtures.test.js';

test('a pack that is really gone: one reload, which moves nothing, and the read says the chunk is missing', async () => {
  const { dir, chunks } = await poolOfChunks(3, 'hf-reader-');
  try {
    const pool = await Pool.open(dir);
    let reloads = 0;
    const reader = new PackReader(pool.paths, pool.index, pool.codec, async () => {
      reloads++;
      await pool.refreshIndex();
    });
    try {
      const refs = chunks.map((c) => c.ref);
      const gone = pool.index.get((refs[1] as ChunkRef)[0]);
      assert.ok(gone);
      unlinkSync(pool.paths.pack(gone.pack));
      await assert.rejects(reader.read(refs), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CHUNK_MISSING');
        assert.match(err.message, new RegExp(`pack ${gone.pack} is missing`));
        return true;
      });
      assert.equal(reloads, 1, 'a reload that moved nothing is not tried again');
      // The other chunks read as ever.
      const got = await reader.read([refs[0] as ChunkRef, refs[2] as ChunkRef]);
      assert.ok(Buffer.from(got[1] as Uint8Array).equals((chunks[2] as { data: Buffer }).data));
    } finally {
      await reader.close();
      await pool.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
