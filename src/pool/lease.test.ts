import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Catalog } from './catalog.js';
import { Pool } from './pool.js';
import { storeAlone } from './pool-fixtures.test.js';
import { CLOCK_MARGIN_MS, runGc } from './gc.js';
import { Lease } from './lease.js';

/** Waits until `done()` (a retried deletion comes within RELEASE_RETRY_MS, later on a busy machine), 10 s at most. */
async function until(done: () => boolean): Promise<void> {
  for (let waited = 0; !done() && waited < 10_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
}

test('a release that the catalog refuses (a full pool) is tried again until the row is gone', async () => {
  const rows = new Set<string>();
  let refuse = 2;
  // A stand-in for the catalog's lease rows: the first two deletions fail as SQLITE_FULL would.
  const catalog = {
    addLease: (l: { id: string }) => rows.add(l.id),
    releaseLease: (id: string) => {
      if (refuse-- > 0) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      rows.delete(id);
    },
  } as unknown as Catalog;
  const lease = new Lease(catalog, () => assert.fail('not lost'));
  assert.equal(rows.size, 1);
  lease.release();
  assert.equal(rows.size, 1, 'the first deletion failed');
  await until(() => rows.size === 0);
  assert.equal(rows.size, 0, 'the row went on a later try');
  assert.equal(refuse, -1, 'tried three times, no more');
});

test('gc does not wait for a lease this process released whose row a full pool would not delete; that session cannot commit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-lease-'));
  try {
    await Pool.init(dir);
    const pool = await Pool.open(dir);
    try {
      const { session } = await storeAlone(pool, randomBytes(100_000));
      // The deletion of the lease row fails as SQLITE_FULL would on a full pool, every time.
      const releaseLease = pool.catalog.releaseLease.bind(pool.catalog);
      pool.catalog.releaseLease = () => {
        throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      };
      try {
        session.abort();
        assert.equal(pool.catalog.leases().length, 1, 'the row lingers');
        assert.equal(session.lease.valid(), false, 'a released lease is not valid, whatever its row');
        await new Promise((r) => setTimeout(r, CLOCK_MARGIN_MS + 300)); // past gc's clock margin
        const r = await runGc(pool);
        assert.equal(r.liveLeases, 0);
        assert.equal(r.condemnedChunks, 1, 'the aborted session\'s chunk is garbage');
        assert.equal(r.packsDeleted, 1);
      } finally {
        pool.catalog.releaseLease = releaseLease;
      }
      await until(() => pool.catalog.leases().length === 0);
      assert.equal(pool.catalog.leases().length, 0, 'the row went once the catalog let it');
    } finally {
      await pool.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
