import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { checkPrefix, rowsOf, startWriter } from '../../../test/e2e/sqlite-writer.js';
import { checkSqlite } from './sqlite-check.js';
import { rebuildSqlite, type SqliteLogRecord } from './sqlite-rebuild.js';
import { SqliteShipper, type ShipRecord } from './sqlite-shipper.js';
import type { SqliteSnapshot } from './sqlite-snapshot.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A real writer process (small autocheckpoint and periodic TRUNCATE checkpoints, so the WAL is
 * reset and generations change), the shipper polling every 100 ms into an in-memory log, and
 * snapshots taken while the writer runs. Every random target time rebuilds to exactly a prefix
 * of the source's rows: all rows stamped before target − slack, none stamped after the target.
 */
test('shipped WAL frames and snapshots rebuild the database at any target time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-sqlite-ship-'));
  const path = join(dir, 'app.db');
  const writer = await startWriter(path, { autocheckpoint: 64, truncateEveryMs: 900 });
  const log: ShipRecord[] = [];
  // Small base parts: every base copy travels in several records.
  const shipper = new SqliteShipper({ source: 'app', path, stateDir: join(dir, 'state'), maxBaseRecordBytes: 256 * 1024, ship: (r) => {
      log.push(r);
      return Promise.resolve();
    } });
  const snaps: Array<{ snap: SqliteSnapshot; logLength: number }> = [];
  const started = Date.now();
  let bases = 0;
  try {
    let stop = false;
    const polling = (async () => {
      while (!stop) {
        const p = await shipper.poll();
        if (p.base) bases++;
        await sleep(100);
      }
    })();
    for (let i = 0; i < 3; i++) {
      await sleep(700);
      const snap = await shipper.snapshot();
      snaps.push({ snap, logLength: log.length });
    }
    await sleep(500);
    stop = true;
    await polling;
    await writer.stop();
    await shipper.poll(); // the writer's last commits (its close checkpoints and deletes the WAL)
  } finally {
    await writer.stop();
    await shipper.close();
  }
  const src = new Database(path, { readonly: true });
  const source = rowsOf(src);
  src.close();
  const ended = Date.now();
  assert.ok(source.length > 200, `the writer wrote ${source.length} rows`);
  const gens = new Set(log.map((r) => r.meta.generation));
  const follows = log.filter((r) => r.meta.follows !== undefined).length;
  console.log(`# ${source.length} rows, ${log.length} records, ${gens.size} generations (${follows} continued without a copy), ${bases} polls with a base, ${snaps.length} snapshots`);
  assert.ok(gens.size >= 3, `the WAL was reset during shipping (${gens.size} generations, ${bases} bases)`);
  // Every generation the log holds frames of starts with a base copy, or continues the one before.
  const based = new Set<string>();
  for (const r of log) {
    if (r.meta.type === 'base' || (r.meta.follows !== undefined && based.has(r.meta.follows))) based.add(r.meta.generation);
    else assert.ok(based.has(r.meta.generation), `frames ${r.name} of a generation without a start`);
  }
  const records = (from: number): SqliteLogRecord[] => log.slice(from).map((r) => ({ name: r.name, meta: r.meta, read: () => Promise.resolve(r.data) }));
  let n = 0;
  for (const { snap, logLength } of snaps) {
    for (let k = 0; k < 4; k++) {
      const target = Date.parse(snap.takenAt) + Math.random() * (ended - Date.parse(snap.takenAt));
      const out = join(dir, `restored-${n++}.db`);
      await rebuildSqlite({ base: snap.data, baseMark: { ...snap.mark, takenAt: snap.takenAt }, records: records(logLength), targetTime: new Date(target).toISOString(), out });
      const check = await checkSqlite({ file: out });
      assert.ok(check.ok, check.detail);
      const db = new Database(out, { readonly: true });
      const restored = rowsOf(db);
      db.close();
      const problem = checkPrefix(source, restored, target, 400);
      assert.equal(problem, undefined, `target +${Math.round(target - started)} ms: ${problem}`);
    }
  }
  assert.ok(log.some((r) => (r.meta.parts ?? 1) > 1), 'base copies went in parts');
  // The whole log from the first base on (no recovery point at all) gives every row.
  const out = join(dir, 'all.db');
  const first = log.findIndex((r) => r.meta.type === 'base');
  const empty = Buffer.alloc(0);
  await rebuildSqlite({ base: empty, baseMark: { lastFrame: 0 }, records: records(first), out });
  const db = new Database(out, { readonly: true });
  assert.deepEqual(rowsOf(db), source);
  db.close();
  rmSync(dir, { recursive: true, force: true });
});
