/**
 * SQLite log shipping end to end: a real server and agent (separate processes), real writer
 * processes inserting rows stamped with their time while snapshots are taken, the agent shipping
 * WAL frames every 250 ms. Restores through the server to random times must give exactly a prefix
 * of the source's rows: every row stamped before target − slack, none stamped after the target.
 *  - 'app' resets its WAL often (small autocheckpoint, TRUNCATE checkpoints): new generations
 *    while shipping, restores across them;
 *  - 'steady' never resets its WAL: the agent is killed with SIGKILL while shipping and restarted;
 *    it continues its generation from its last durable record and no committed frame is lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sleep, TestAgent, TestServer, until } from './server-harness.js';
import { checkPrefix, rowsOf, startWriter, type Row } from './sqlite-writer.js';

/**
 * How far behind a restore may be: a poll every 250 ms after the previous one is durable, so the
 * poll interval plus one poll's upload on a loaded 2-core machine; 'app' also ships a base copy of
 * the whole database at each of its WAL resets.
 */
const SLACK_MS = { app: 4000, steady: 1500 };

interface LogJson {
  name: string;
  seq: number;
  kind: string;
  time: string;
  bytes: number;
}

const readRows = (path: string): Row[] => {
  const db = new Database(path, { readonly: true });
  try {
    return rowsOf(db);
  } finally {
    db.close();
  }
};

test('SQLite: WAL shipping and point-in-time restore across WAL resets and an agent killed mid-shipping', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-sqlite-e2e-'));
  mkdirSync(join(dir, 'data'));
  const server = await TestServer.start(join(dir, 'server'));
  const agent = await TestAgent.start(server, 'prod1', join(dir, 'agent'));
  const app = join(dir, 'data', 'app.db');
  const steady = join(dir, 'data', 'steady.db');
  const w1 = await startWriter(app, { truncateEveryMs: 2000, pad: 400, pauseMs: 5 });
  const w2 = await startWriter(steady, { autocheckpoint: 1_000_000, pad: 400, pauseMs: 5 });
  const t0 = Date.now();
  const phase = (what: string): void => console.log(`# +${Date.now() - t0} ms: ${what}`);
  try {
    await server.cliOk(['group', 'create', 'db', '--sync-every', 'off']);
    const admin = server.admin();
    const firstPoint: Record<string, number> = {};
    for (const [name, path] of [['app', app], ['steady', steady]] as const) {
      await server.cliOk(['source', 'add', '--group', 'db', '--agent', 'prod1', '--kind', 'sqlite', '--ship', 'continuous', name, path]);
      assert.deepEqual((await admin.json<{ options: unknown }>('GET', `/api/v1/sources/${name}`)).options, { tracker: 'auto', timeoutMs: 60_000, sqlite: { ship: 'continuous' } });
      await server.cliOk(['sync', name, '--wait']); // the first sync starts the source's shipper
      firstPoint[name] = Date.parse((await admin.json<{ latestPoint: { time: string } }>('GET', `/api/v1/sources/${name}`)).latestPoint.time);
    }
    phase('first syncs done');
    await sleep(1500);
    // Snapshots while the writers run.
    await server.cliOk(['sync', 'app', '--wait']);
    await server.cliOk(['sync', 'steady', '--wait']);
    await sleep(800);
    const logsOf = (s: string): Promise<LogJson[]> => admin.json<LogJson[]>('GET', `/api/v1/sources/${s}/logs`);
    const before = await logsOf('steady');
    assert.ok(before.length > 0, 'steady has shipped records before the kill');
    phase('second syncs done');
    const killedAt = Date.now();
    await agent.kill('SIGKILL');
    await sleep(1500); // the writers go on; nobody ships
    agent.restart();
    await agent.waitOnline();
    // Shipping resumes from the last durable record: wait until a record newer than the restart exists.
    const restartedAt = Date.now();
    phase('agent back');
    await until('steady to ship again after the restart', async () => (await logsOf('steady')).some((l) => Date.parse(l.time) > restartedAt));
    const caughtUp = Date.now();
    await sleep(3000);
    const stoppedAt = Date.now();
    await w1.stop();
    await w2.stop();
    await sleep(1000); // the last polls (the writers' close checkpoints and deletes their WAL)

    const after = await logsOf('steady');
    const gen = (l: LogJson): string => l.name.split('-')[0] ?? '';
    const lastBefore = before.at(-1)!;
    const resumed = after.filter((l) => l.seq > lastBefore.seq);
    // The agent went on with the same WAL generation (no base copy needed) after it restarted.
    const firstAfterRestart = resumed.find((l) => Date.parse(l.time) > restartedAt);
    assert.ok(firstAfterRestart, 'a record after the restart');
    assert.equal(gen(firstAfterRestart), gen(lastBefore), `after the restart: ${firstAfterRestart.name}, before the kill: ${lastBefore.name}`);
    assert.ok(!resumed.some((l) => l.name.includes('-base-') && Date.parse(l.time) < stoppedAt), 'no base copy after the restart: frames continued from the last durable record');
    const appLogs = await logsOf('app');
    const gens = new Set(appLogs.map(gen));
    assert.ok(gens.size >= 3, `app's WAL was reset while shipping (${gens.size} generations in ${appLogs.length} records)`);

    phase('writers stopped');
    const sources = { app: readRows(app), steady: readRows(steady) };
    console.log(`# ${appLogs.length} records of app in ${gens.size} generations, ${after.length} of steady; shipping resumed ${caughtUp - restartedAt} ms after the restart`);
    let n = 0;
    const restoreAt = async (source: 'app' | 'steady', target: number): Promise<Row[]> => {
      const out = join(dir, `restored-${source}-${n++}.db`);
      await server.cliOk(['restore', '--source', source, '--at', new Date(target).toISOString(), '--to', out, '--json']);
      return readRows(out);
    };
    // Random targets from the first snapshot to the writers' end: before the kill, while the agent
    // was down (nothing shipped then: those commits carry the time they were shipped, so only the
    // prefix and "nothing after the target" hold), and after it caught up.
    for (const source of ['app', 'steady'] as const) {
      const from = firstPoint[source]!;
      const slack = SLACK_MS[source];
      const windows: Array<[number, number, boolean]> = [
        [from, killedAt, false],
        [from, killedAt, false],
        [killedAt, caughtUp + slack, true],
        [caughtUp + slack, stoppedAt, false],
      ];
      for (const [a, end, down] of windows) {
        const b = Math.min(end, stoppedAt); // within the recoverable range
        if (b <= a) continue;
        const target = a + Math.random() * (b - a);
        const restored = await restoreAt(source, target);
        const problem = checkPrefix(sources[source], restored, target, down ? Number.POSITIVE_INFINITY : slack);
        console.log(`# ${source} at +${Math.round(target - from)} ms: ${restored.length} of ${sources[source].length} rows${down ? ' (agent down)' : ''}`);
        assert.equal(problem, undefined, `${source} at +${Math.round(target - from)} ms: ${problem}`);
      }
    }
    phase('random restores done');
    // No committed frame lost: the latest state of each is every row the writer committed.
    for (const source of ['app', 'steady'] as const) {
      const last = (await logsOf(source)).at(-1)!;
      assert.deepEqual(await restoreAt(source, Date.parse(last.time)), sources[source], `${source} restored to its last record has every row`);
    }
    const latest = join(dir, 'latest.db');
    await server.cliOk(['restore', '--source', 'steady', '--latest', '--to', latest]);
    assert.deepEqual(readRows(latest), sources.steady, 'steady restored with --latest has every row');
  } finally {
    await w1.stop();
    await w2.stop();
    await agent.kill();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
