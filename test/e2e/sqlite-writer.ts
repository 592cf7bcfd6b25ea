/**
 * A real application writing to a SQLite database in WAL mode, for the SQLite tests: a child
 * process that inserts rows stamped with the time just before their commit, one transaction each,
 * until it is sent SIGTERM. Options make the WAL reset often (a small autocheckpoint, periodic
 * TRUNCATE checkpoints), so generations change while the shipper runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import type Database from 'better-sqlite3';

export interface WriterOptions {
  /** pages before SQLite's automatic checkpoint (default 1000) */
  autocheckpoint?: number;
  /** run PRAGMA wal_checkpoint(TRUNCATE) this often (ms) */
  truncateEveryMs?: number;
  /** largest random padding per row (bytes); default 2000 */
  pad?: number;
  /** pause between transactions (ms); default 3 */
  pauseMs?: number;
}

const script = `
const [mod, path, opts] = process.argv.slice(1);
const o = JSON.parse(opts);
const Database = require(mod);
const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('busy_timeout = 10000');
db.pragma('wal_autocheckpoint = ' + (o.autocheckpoint ?? 1000));
db.exec('CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, t INTEGER NOT NULL, pad BLOB)');
const ins = db.prepare('INSERT INTO rows (t, pad) VALUES (?, randomblob(?))');
let stop = false;
process.on('SIGTERM', () => { stop = true; });
let lastTruncate = Date.now();
process.stdout.write('ready\\n');
const tick = () => {
  if (stop) { db.close(); process.exit(0); }
  ins.run(Date.now(), Math.floor(Math.random() * (o.pad ?? 2000)));
  if (o.truncateEveryMs && Date.now() - lastTruncate > o.truncateEveryMs) { db.pragma('wal_checkpoint(TRUNCATE)'); lastTruncate = Date.now(); }
  setTimeout(tick, o.pauseMs ?? 3);
};
tick();
`;

export interface Writer {
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startWriter(path: string, o: WriterOptions = {}): Promise<Writer> {
  const require = createRequire(import.meta.url);
  const child = spawn(process.execPath, ['-e', script, require.resolve('better-sqlite3'), path, JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
  if (!chunk.toString().includes('ready')) throw new Error(`the SQLite writer did not start: ${chunk.toString()}`);
  return {
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface Row {
  id: number;
  t: number;
}

export function rowsOf(db: Database.Database): Row[] {
  return db.prepare('SELECT id, t FROM rows ORDER BY id').all() as Row[];
}

/**
 * What a restore to `target` must hold: exactly a prefix of the source's rows, with every row
 * stamped before target − slack and none stamped after the target. Returns a problem or undefined.
 */
export function checkPrefix(source: Row[], restored: Row[], target: number, slackMs: number): string | undefined {
  for (let i = 0; i < restored.length; i++) {
    const r = restored[i]!;
    const s = source[i];
    if (!s || s.id !== r.id || s.t !== r.t) return `restored row ${i} (id ${r.id}, t ${r.t}) is not the source's row ${i} (${s ? `id ${s.id}, t ${s.t}` : 'none'})`;
    if (r.t > target) return `restored row id ${r.id} was stamped ${r.t - target} ms after the target`;
  }
  const missing = source.slice(restored.length).find((s) => s.t <= target - slackMs);
  if (missing) return `row id ${missing.id} stamped ${target - missing.t} ms before the target is missing (restored ${restored.length} rows)`;
  return undefined;
}
