import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { encodeChunk } from '../core/codec.js';
import { digestOf } from '../core/digest.js';
import type { NewChunk } from '../core/chunk-io.js';
import { Pool } from './pool.js';

const chunkOf = (data: Buffer): NewChunk => ({ digest: digestOf(data), length: data.length, encoded: encodeChunk(data, 0) });

test('a chunk put without asking, or put again, is stored once: not again when the pool has it, nor when another session is sending it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-unasked-'));
  await Pool.init(dir);
  const pool = await Pool.open(dir, { lazyIndex: true }); // put() must load the view itself
  try {
    const x = chunkOf(randomBytes(5000));
    const yData = randomBytes(6000);
    const y = chunkOf(yData);
    const a = pool.startSession(0);
    await a.put([x, x]); // unasked, and twice in one put
    assert.deepEqual(await a.finish(), { newChunks: 1, newBytes: 5000, storedNewBytes: x.encoded.data.length });
    a.close();
    assert.equal(pool.index.size, 1);

    const b = pool.startSession(0);
    await b.put([x]); // the pool has it
    assert.equal((await b.finish()).newChunks, 0);
    b.close();
    assert.equal(pool.index.size, 1);
    assert.equal(pool.packs.packsWritten, 1, 'a second pack was written for a chunk the pool had');

    // y is claimed (asked for) by c; d puts it unasked meanwhile: d leaves it to c.
    const c = pool.startSession(0);
    const d = pool.startSession(0);
    assert.deepEqual(await c.want([y.digest]), [true]);
    await d.put([y]);
    await c.put([y]);
    assert.equal((await c.finish()).newChunks, 1);
    assert.equal((await d.finish()).newChunks, 0, 'd stored a chunk c was sending');
    c.close();
    d.close();
    assert.equal(pool.index.size, 2);
    assert.deepEqual(Buffer.from((await pool.reader.read([[y.digest, y.length]]))[0] as Uint8Array), yData);
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
