/**
 * Recoverability drills with a real server and agent process, real PostgreSQL and real SQLite:
 * the agent restores a recovery point into a scratch place, starts and checks the database,
 * and the server records the result with the point (`points --server`, `drill --history`, the
 * source view). A damaged index in the backed-up cluster and a damaged chunk in the pool fail
 * their drills and raise `drill-failed`; the next good drill of the source resolves it. A
 * group's drill schedule queues drills by itself. The scratch copy is gone afterwards.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { scratch } from './cli-harness.js';
import { writeRandomFile } from './tree-fixtures.js';
import { freePort, TestAgent, TestServer, until, type JobJson } from './server-harness.js';

const BIN = '/usr/lib/postgresql/15/bin';
const noPg = !existsSync(join(BIN, 'initdb')) || process.getuid?.() !== 0 ? 'needs root and PostgreSQL 15 with amcheck (postgresql-15)' : false;

interface DrillResult {
  job: string;
  ok: boolean;
  point: string;
  check: string;
  detail: string;
}
interface PointJson {
  id: string;
  drill: { time: string; ok: boolean; detail: string } | null;
}
interface AlertJson {
  key: string;
  kind: string;
  state: string;
  object: string;
  message: string;
}

function packFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.pack')) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

function flipMiddle(file: string): void {
  chmodSync(file, 0o644);
  const fd = openSync(file, 'r+');
  const at = Math.floor(statSync(file).size / 2);
  const b = Buffer.alloc(64);
  readSync(fd, b, 0, 64, at);
  for (let i = 0; i < b.length; i++) b[i] = (b[i] as number) ^ 0xff;
  writeSync(fd, b, 0, 64, at);
  closeSync(fd);
}

const scratchCopies = (): string[] => readdirSync(tmpdir()).filter((n) => /^holdfast-drill-[0-9a-f]{8}-/.test(n));

describe('recoverability drills', { timeout: 300_000 }, () => {
  const tmp = scratch('hf-drilltest-');
  let server: TestServer;
  let agent: TestAgent;
  const dir = (n: string): string => join(tmp.dir, n);
  const drill = async (args: string[]): Promise<{ code: number; result: DrillResult }> => {
    const r = await server.cli(['drill', ...args, '--wait', '--json']);
    assert.ok(r.stdout.trim(), `drill ${args.join(' ')} printed nothing (exit ${r.code}): ${r.stderr}`);
    return { code: r.code, result: JSON.parse(r.stdout) as DrillResult };
  };
  const alerts = (): Promise<AlertJson[]> => server.json<AlertJson[]>(['alerts']);
  const activeDrillAlert = async (source: string): Promise<AlertJson | undefined> => (await alerts()).find((a) => a.kind === 'drill-failed' && a.state === 'active' && a.object === source);

  before(async () => {
    chmodSync(tmp.dir, 0o711); // initdb runs as postgres below it
    server = await TestServer.start(dir('server'), ['--prune-every', 'off', '--gc-every', 'off', '--verify-every', 'off']);
    agent = await TestAgent.start(server, 'd1', dir('agent'));
    await server.cliOk(['group', 'create', 'g', '--sync-every', 'off']);
  });

  after(async () => {
    await agent?.kill();
    await server?.kill();
    tmp.cleanup();
  });

  it('drills a PostgreSQL cluster: ok with amcheck; a damaged index fails and alerts; the next good drill resolves it', { skip: noPg }, async () => {
    const ids = { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
    const home = dir('pg');
    mkdirSync(home);
    chownSync(home, ids.uid, ids.gid);
    const data = join(home, 'data');
    execFileSync(join(BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], { ...ids, cwd: home, stdio: 'ignore' });
    const sql = (text: string): string => execFileSync(join(BIN, 'postgres'), ['--single', '-D', data, 'postgres'], { ...ids, cwd: home, input: text, stdio: ['pipe', 'pipe', 'ignore'] }).toString();
    sql('CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL);\nINSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 20000) g;\nCREATE INDEX orders_customer ON orders (customer);\n');
    await server.cliOk(['source', 'add', '--group', 'g', '--agent', 'd1', 'pgdata', data]);
    const good = (await server.json<{ point: string }>(['sync', 'pgdata', '--wait'])).point;

    const ok = await drill(['pgdata', '--check', 'postgres']);
    assert.equal(ok.code, 0, JSON.stringify(ok.result));
    assert.equal(ok.result.ok, true, ok.result.detail);
    assert.equal(ok.result.point, good);
    assert.equal(ok.result.check, 'postgres');
    assert.match(ok.result.detail, /amcheck: \d+ btree indexes and \d+ tables/);
    assert.deepEqual(scratchCopies(), [], 'the scratch copy was removed');

    // The index's leaf page overwritten in the source; the next point carries the damage.
    const rel = /pg_relation_filepath = "([^"]+)"/.exec(sql("SELECT pg_relation_filepath('orders_customer')\n"))?.[1] as string;
    const fd = openSync(join(data, rel), 'r+');
    writeSync(fd, randomBytes(8192), 0, 8192, 8192 * 2);
    closeSync(fd);
    const bad = (await server.json<{ point: string }>(['sync', 'pgdata', '--wait'])).point;
    const failed = await drill(['pgdata', '--check', 'postgres']);
    assert.notEqual(failed.code, 0);
    assert.equal(failed.result.ok, false);
    assert.equal(failed.result.point, bad);
    assert.match(failed.result.detail, /orders_customer/);
    const alert = await activeDrillAlert('pgdata');
    assert.ok(alert, `no drill-failed alert: ${JSON.stringify(await alerts())}`);
    assert.match(alert.message, /orders_customer/);
    const pts = await server.json<PointJson[]>(['points', '--source', 'pgdata']);
    assert.equal(pts.find((p) => p.id === good)?.drill?.ok, true, JSON.stringify(pts));
    assert.equal(pts.find((p) => p.id === bad)?.drill?.ok, false, JSON.stringify(pts));
    const view = (await server.json<Array<{ name: string; lastDrill: { ok: boolean } | null }>>(['source', 'list'])).find((s) => s.name === 'pgdata');
    assert.equal(view?.lastDrill?.ok, false, JSON.stringify(view));

    // A good drill of the source (the older point) resolves the alert.
    const again = await drill(['pgdata', '--check', 'postgres', '--point', good]);
    assert.equal(again.result.ok, true, again.result.detail);
    assert.equal(await activeDrillAlert('pgdata'), undefined);
    const history = await server.json<Array<{ ok: boolean; point: string; origin: string }>>(['drill', 'pgdata', '--history']);
    assert.deepEqual(history.map((h) => [h.point, h.ok]), [[good, true], [bad, false], [good, true]]);
    assert.deepEqual(scratchCopies(), []);
  });

  it('drills SQLite databases; a damaged chunk in the pool fails the drill and raises the alert', async () => {
    const src = dir('sqlite');
    mkdirSync(src);
    const db = new Database(join(src, 'shop.db'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL); CREATE INDEX items_name ON items(name)');
    const ins = db.prepare('INSERT INTO items (id, name) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 1; i <= 20000; i++) ins.run(i, randomBytes(24).toString('hex'));
    })();
    db.close();
    await server.cliOk(['source', 'add', '--group', 'g', '--agent', 'd1', 'shop', src]);
    const packsBefore = new Set(packFiles(join(server.dir, 'pool', 'packs')));
    const point = (await server.json<{ point: string }>(['sync', 'shop', '--wait'])).point;

    const ok = await drill(['shop', '--check', 'sqlite']);
    assert.equal(ok.result.ok, true, ok.result.detail);
    assert.equal(ok.result.check, 'sqlite-integrity');
    assert.match(ok.result.detail, /integrity_check of \d+ pages, 1 tables: ok/);

    // Damage the packs this source's sync wrote: the drill's restore finds the chunk does not match its digest.
    const fresh = packFiles(join(server.dir, 'pool', 'packs')).filter((p) => !packsBefore.has(p));
    assert.ok(fresh.length > 0);
    for (const p of fresh) flipMiddle(p);
    const failed = await drill(['shop', '--check', 'sqlite']);
    assert.notEqual(failed.code, 0);
    assert.equal(failed.result.ok, false);
    assert.equal(failed.result.point, point);
    assert.equal(failed.result.check, 'restore');
    assert.match(failed.result.detail, /CHUNK_CORRUPT|damaged/);
    const alert = await activeDrillAlert('shop');
    assert.ok(alert, `no drill-failed alert: ${JSON.stringify(await alerts())}`);
    const jobs = await server.json<JobJson[]>(['jobs']);
    assert.equal(jobs.find((j) => j.id === failed.result.job)?.state, 'failed');
    assert.deepEqual(scratchCopies(), []);
  });

  it('drills a SQLite source to a time: the snapshot and the shipped WAL up to it, checked, the rows of that time', async () => {
    await server.cliOk(['group', 'create', 'sq', '--sync-every', 'off', '--drill-query', 'SELECT count(*) FROM items']);
    const src = dir('sqlite-src');
    mkdirSync(src);
    const file = join(src, 'app.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
    const add = (n: number): void => {
      const ins = db.prepare('INSERT INTO items (name) VALUES (?)');
      db.transaction(() => {
        for (let i = 0; i < n; i++) ins.run(randomBytes(16).toString('hex'));
      })();
    };
    let target = '';
    try {
      add(100);
      const admin = server.admin();
      try {
        await admin.json('POST', '/api/v1/sources', { name: 'app', group: 'sq', agent: 'd1', kind: 'sqlite', path: file, options: { sqlite: { ship: 'continuous' } } });
        await server.cliOk(['sync', 'app', '--wait']); // the first sync starts the source's shipper
        add(50);
        await new Promise((r) => setTimeout(r, 2000));
        target = new Date().toISOString();
        await new Promise((r) => setTimeout(r, 2000));
        add(70);
        await until('the WAL to be shipped past the target', async () => {
          const logs = await admin.json<Array<{ time: string }>>('GET', '/api/v1/sources/app/logs');
          return logs.some((l) => l.time > target) && logs.length >= 2;
        }, 30_000, 300);
      } finally {
        await admin.close();
      }
      const at = await drill(['app', '--at', target]);
      assert.equal(at.result.ok, true, at.result.detail);
      assert.equal(at.result.check, 'sqlite-integrity');
      assert.match(at.result.detail, /replayed [1-9]\d* log record\(s\)/);
      assert.match(at.result.detail, /check query answered "150"/);
      await until('the last rows to be shipped', async () => {
        const latest = await drill(['app']);
        return latest.result.ok && /answered "220"/.test(latest.result.detail);
      }, 30_000, 1000);
      assert.deepEqual(scratchCopies(), []);
    } finally {
      db.close();
    }
  });

  it('drills a PostgreSQL source to a time: express full and shipped WAL, recovered, amcheck, the rows of that time', { skip: noPg }, async () => {
    const ids = { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
    const home = dir('pglive');
    mkdirSync(home);
    chownSync(home, ids.uid, ids.gid);
    const data = join(home, 'data');
    const port = await freePort();
    const as = { ...ids, cwd: home, stdio: 'pipe' as const };
    execFileSync(join(BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], as);
    execFileSync(join(BIN, 'pg_ctl'), ['-D', data, '-l', join(home, 'log'), '-w', '-o', `-p ${port} -k ${home} -c listen_addresses='' -c archive_mode=on`, 'start'], as);
    const psql = (sql: string): string => execFileSync(join(BIN, 'psql'), ['-X', '-At', '-h', home, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql], as).toString().trim();
    try {
      await server.cliOk(['group', 'create', 'pg', '--sync-every', 'off', '--drill-query', 'SELECT count(*) FROM items']);
      psql('CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)');
      psql("INSERT INTO items (name) SELECT md5(g::text) FROM generate_series(1, 1000) g");
      const admin = server.admin();
      let target = '';
      try {
        await admin.json('POST', '/api/v1/sources', { name: 'pglive', group: 'pg', agent: 'd1', kind: 'postgres', path: data, options: { postgres: { connect: `postgresql://postgres@/postgres?host=${home}&port=${port}` } } });
        await server.cliOk(['sync', 'pglive', '--wait']);
        psql("INSERT INTO items (name) SELECT md5(g::text) FROM generate_series(1, 500) g");
        await new Promise((r) => setTimeout(r, 1500));
        target = new Date().toISOString();
        await new Promise((r) => setTimeout(r, 1500));
        psql("INSERT INTO items (name) SELECT md5(g::text) FROM generate_series(1, 700) g");
        psql('SELECT pg_switch_wal()');
        await until('the WAL to be shipped past the target', async () => {
          const logs = await admin.json<Array<{ time: string }>>('GET', '/api/v1/sources/pglive/logs');
          return logs.some((l) => l.time > target);
        }, 60_000, 500);
      } finally {
        await admin.close();
      }
      const at = await drill(['pglive', '--at', target]);
      assert.equal(at.result.ok, true, at.result.detail);
      assert.equal(at.result.check, 'postgres');
      assert.match(at.result.detail, /amcheck: \d+ btree indexes/);
      assert.match(at.result.detail, /check query answered "1500"/);
      const latest = await drill(['pglive']);
      assert.equal(latest.result.ok, true, latest.result.detail);
      assert.match(latest.result.detail, /check query answered "2200"/);
      assert.deepEqual(scratchCopies(), []);
    } finally {
      execFileSync(join(BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop'], as);
    }
  });

  it('an agent killed while its drill runs PostgreSQL: the drill runs again and passes, nothing is left running', { skip: noPg }, async () => {
    const good = (await server.json<PointJson[]>(['points', '--source', 'pgdata']))[0]?.id as string; // the point before the damage
    const job = await server.json<{ id: string }>(['drill', 'pgdata', '--check', 'postgres', '--point', good]);
    const running = (): string[] => execFileSync('ps', ['-eo', 'pid,args']).toString().split('\n').filter((l) => /holdfast-drill-[0-9a-f]{8}-pgdata\/data/.test(l));
    await until('PostgreSQL running in the drill copy', () => Promise.resolve(running().length > 0), 120_000, 100);
    await agent.kill('SIGKILL');
    agent.restart();
    await agent.waitOnline();
    // The server hands the drill out again (resumed, or retried once the agent counted as lost).
    const end = await until('the drill to end', async () => {
      const jobs = await server.json<JobJson[]>(['jobs', '--source', 'pgdata']);
      const again = jobs.find((j) => j.id === job.id && j.state === 'succeeded') ?? jobs.find((j) => j.retryOf === job.id && !['queued', 'running'].includes(j.state));
      return again;
    }, 180_000, 1000);
    assert.equal(end.state, 'succeeded', JSON.stringify(end));
    assert.equal(end.result?.ok, true, JSON.stringify(end.result));
    assert.deepEqual(running(), [], 'no PostgreSQL left in a drill copy');
    assert.deepEqual(scratchCopies(), []);
    assert.equal(await activeDrillAlert('pgdata'), undefined, 'a lost agent is not a failed drill');
  });

  it("runs drills on the group's schedule", async () => {
    await server.cliOk(['group', 'create', 'nightly', '--sync-every', 'off', '--drill-schedule', '1m']);
    const src = dir('files');
    mkdirSync(src);
    writeRandomFile(join(src, 'a.bin'), 300 * 1024);
    writeRandomFile(join(src, 'b.bin'), 5000);
    await server.cliOk(['source', 'add', '--group', 'nightly', '--agent', 'd1', 'files', src]);
    const point = (await server.json<{ point: string }>(['sync', 'files', '--wait'])).point;
    const rows = await until(
      'a scheduled drill',
      async () => {
        const h = await server.json<Array<{ ok: boolean; point: string; origin: string; check: string; detail: string }>>(['drill', 'files', '--history']);
        return h.length > 0 && h;
      },
      30_000,
      500,
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.origin, 'schedule');
    assert.equal(rows[0]?.point, point);
    assert.equal(rows[0]?.check, 'bytes');
    assert.equal(rows[0]?.ok, true, rows[0]?.detail);
    const groups = await server.json<Array<{ name: string; drillSchedule: string | null }>>(['group', 'list']);
    assert.equal(groups.find((g) => g.name === 'nightly')?.drillSchedule, '1m');
    // Not again until the interval has passed.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((await server.json<unknown[]>(['drill', 'files', '--history'])).length, 1);
  });
});
