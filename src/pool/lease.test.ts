import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Catalog } from './catalog.js';
import { Lease, RELEASE_RETRY_MS } from './lease.js';

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
  await new Promise((r) => setTimeout(r, 2 * RELEASE_RETRY_MS + 200));
  assert.equal(rows.size, 0, 'the row went on a later try');
  assert.equal(refuse, -1, 'tried three times, no more');
});
