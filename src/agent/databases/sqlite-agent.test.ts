import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWriter } from '../../../test/e2e/sqlite-writer.js';
import { shipSqliteSource, stopSqliteShipping } from './sqlite-agent.js';
import type { ShipRecord } from './sqlite-shipper.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Frame records shipped per second: about 4 when continuous, about one per group interval otherwise. */
test("a SQLite source ships every 250 ms ('continuous') or at the group's sync frequency ('frequency')", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-sqlite-modes-'));
  const writers = await Promise.all(['fast.db', 'slow.db'].map((f) => startWriter(join(dir, f), { autocheckpoint: 1_000_000, pad: 200, pauseMs: 10 })));
  const shipped = new Map<string, ShipRecord[]>([['fast', []], ['slow', []]]);
  const ctx = { stateDir: join(dir, 'state'), log, ship: (source: string, r: ShipRecord) => (shipped.get(source)!.push(r), Promise.resolve()) };
  try {
    shipSqliteSource({ name: 'fast', kind: 'sqlite', path: join(dir, 'fast.db'), options: { sqlite: { ship: 'continuous' } } }, ctx);
    shipSqliteSource({ name: 'slow', kind: 'sqlite', path: join(dir, 'slow.db'), options: { sqlite: { ship: 'frequency' } }, syncEveryMs: 1500 }, ctx);
    shipSqliteSource({ name: 'other', kind: 'dir', path: dir }, ctx); // not a SQLite source: ignored
    await sleep(3200);
  } finally {
    await stopSqliteShipping();
    await Promise.all(writers.map((w) => w.stop()));
  }
  const frames = (s: string): ShipRecord[] => shipped.get(s)!.filter((r) => r.meta.type === 'frames');
  const fast = frames('fast').length;
  const slow = frames('slow').length;
  console.log(`# continuous: ${fast} frame records, frequency (1.5 s): ${slow} in 3.2 s`);
  assert.ok(fast >= 6, `continuous shipping sent ${fast} frame records in 3.2 s`);
  assert.ok(slow >= 2 && slow <= 3, `frequency shipping sent ${slow} frame records in 3.2 s at 1.5 s`);
  assert.ok(!shipped.has('other'));
  rmSync(dir, { recursive: true, force: true });
});
