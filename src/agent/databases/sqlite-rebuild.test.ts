import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { rebuildSqlite, type SqliteLogRecord } from './sqlite-rebuild.js';
import { SqliteShipper, type ShipRecord } from './sqlite-shipper.js';

const count = (path: string): number => {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

test('the rebuild stops at the target time and refuses a chain with a hole or a generation without a start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-sqlite-rebuild-'));
  const path = join(dir, 'app.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
  const log: ShipRecord[] = [];
  const shipper = new SqliteShipper({ source: 'app', path, stateDir: join(dir, 'state'), ship: (r) => (log.push(r), Promise.resolve()) });
  try {
    await shipper.poll(); // the base copy (the table, no rows)
    for (let i = 0; i < 4; i++) {
      db.transaction(() => {
        for (let k = 0; k < 10; k++) db.prepare('INSERT INTO t (v) VALUES (randomblob(500))').run();
      })();
      await shipper.poll();
      await new Promise((r) => setTimeout(r, 5)); // capture times apart
    }
  } finally {
    await shipper.close();
    db.close();
  }
  // the base, the frames of CREATE TABLE (still in the WAL), then one record per transaction
  assert.deepEqual(log.map((r) => r.meta.type), ['base', 'frames', 'frames', 'frames', 'frames', 'frames']);
  const recs = (list: ShipRecord[]): SqliteLogRecord[] => list.map((r) => ({ name: r.name, meta: r.meta, read: () => Promise.resolve(r.data) }));
  let n = 0;
  const build = async (list: ShipRecord[], targetTime?: string): Promise<string> => {
    const out = join(dir, `out-${n++}.db`);
    await rebuildSqlite({ base: Buffer.alloc(0), baseMark: { lastFrame: 0 }, records: recs(list), targetTime, out });
    return out;
  };
  assert.equal(count(await build(log)), 40);
  // A target between two records: exactly the transactions captured by then.
  assert.equal(count(await build(log, log[3]!.meta.capturedAt)), 20);
  // A missing record in the middle: an error that says how far the chain goes.
  await assert.rejects(build([log[0]!, log[1]!, log[2]!, log[4]!, log[5]!]), (err: Error) => /hole/.test(err.message) && err.message.includes(log[2]!.meta.capturedAt));
  // Frames of a generation nobody copied the start of.
  const stray = { ...log[2]!, meta: { ...log[2]!.meta, generation: 'ffffffff00000000' } };
  await assert.rejects(build([log[0]!, log[1]!, stray]), /without a snapshot/);
  rmSync(dir, { recursive: true, force: true });
});
