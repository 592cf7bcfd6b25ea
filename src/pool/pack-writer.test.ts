import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { encodeChunk } from '../core/codec.js';
import { digestOf } from '../core/digest.js';
import { Pool } from './pool.js';

test('a chunk put is copied into its pack at once: the caller may reuse its bytes as soon as put() settles', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-pack-writer-'));
  await Pool.init(join(dir, 'pool'));
  const pool = await Pool.open(join(dir, 'pool'));
  try {
    const s = pool.startSession(0);
    const plains: Buffer[] = [];
    // One buffer reused for every chunk, as the codec's output buffers are; sizes cross pack
    // boundaries (8 MiB packs) so several packs are sealed and written while later puts run.
    const shared = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < 12; i++) {
      const plain = randomBytes(1024 * 1024 + i * 4096);
      plains.push(plain);
      const digest = digestOf(plain);
      assert.ok(s.claim(digest));
      const enc = encodeChunk(plain, 0);
      shared.set(enc.data);
      await s.put([{ digest, length: plain.length, encoded: { flags: enc.flags, data: shared.subarray(0, enc.data.length) } }]);
      shared.fill(0xee); // the next chunk's bytes take its place
    }
    await s.finish();
    const back = await pool.reader.read(plains.map((p) => [digestOf(p), p.length]));
    back.forEach((b, i) => assert.ok(Buffer.from(b).equals(plains[i] as Buffer), `chunk ${i} reads back as put`));
    assert.ok(pool.packs.packsWritten >= 2, 'the chunks filled more than one pack');
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
