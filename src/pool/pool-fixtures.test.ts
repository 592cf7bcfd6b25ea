/**
 * Shared by pool unit tests (lazy-index, index-churn, lease): small pools built through real
 * write sessions. No tests of its own (like log-fixtures.test.ts, it only exports).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { encodeChunk } from '../core/codec.js';
import { digestOf } from '../core/digest.js';
import type { ChunkRef } from '../core/manifest.js';
import { Pool } from './pool.js';
import type { WriteSession } from './write-session.js';

/** Stores `data` as one raw chunk through a session of its own (its own pack and index file); the session is finished, not closed. */
export async function storeAlone(pool: Pool, data: Buffer): Promise<{ ref: ChunkRef; session: WriteSession }> {
  const digest = digestOf(data);
  const session = pool.startSession(0);
  assert.deepEqual(await session.want([digest]), [true], 'a chunk the pool lacks is claimed');
  await session.put([{ digest, length: data.length, encoded: encodeChunk(data, 0) }]);
  await session.finish();
  return { ref: [digest, data.length], session };
}

/** A new pool in a temporary folder holding `n` chunks of random bytes, each in a pack and index file of its own. */
export async function poolOfChunks(n: number, prefix: string): Promise<{ dir: string; chunks: Array<{ ref: ChunkRef; data: Buffer }> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  await Pool.init(dir);
  const pool = await Pool.open(dir);
  const chunks: Array<{ ref: ChunkRef; data: Buffer }> = [];
  try {
    for (let i = 0; i < n; i++) {
      const data = randomBytes(500 + i);
      const { ref, session } = await storeAlone(pool, data);
      session.close();
      chunks.push({ ref, data });
    }
  } finally {
    await pool.close();
  }
  return { dir, chunks };
}
