/**
 * Log shipping over the wire, without a database: `holdfast log-push` (what PostgreSQL's
 * archive_command runs) hands a file to the real agent daemon's Unix socket, the agent ships it to
 * the real server, and the command exits 0 only once the record is durable. Pushing the same file
 * again succeeds (a retry after a lost answer), other bytes under the same name are refused, a
 * wrong key is refused, a hole in the segment numbers raises a 'log-gap' alert, and the bytes
 * stored on the server are exactly the file's.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, scratch } from './cli-harness.js';
import { TestAgent, TestServer, until } from './server-harness.js';
import { logSourceKey, LOG_SOCKET } from '../../src/agent/remote/log-socket.js';
import { Pool } from '../../src/pool/pool.js';

const SEG = 1024 * 1024; // small segments keep the test quick; the name says which segment it is
const segName = (n: number): string => `00000001${'0'.repeat(8)}${n.toString(16).toUpperCase().padStart(8, '0')}`;

describe('log shipping: log-push → agent socket → server', { timeout: 180_000 }, () => {
  const tmp = scratch('holdfast-logwire-');
  let server: TestServer;
  let agent: TestAgent;
  let key: string;
  const dir = (n: string): string => join(tmp.dir, n);
  const files = new Map<string, Buffer>();
  const push = (file: string, name: string, k = key): ReturnType<typeof holdfast> =>
    holdfast(['log-push', '--socket', join(dir('agent'), LOG_SOCKET), '--source', 'db', '--key', k, file, name]);
  const writeSeg = (name: string, data = randomBytes(SEG)): string => {
    const f = join(dir('wal'), name);
    writeFileSync(f, data);
    files.set(name, data);
    return f;
  };

  before(async () => {
    mkdirSync(dir('wal'));
    server = await TestServer.start(dir('server'));
    agent = await TestAgent.start(server, 'dbhost', dir('agent'));
    await server.cliOk(['group', 'create', 'g', '--sync-every', 'off']);
    await server.cliOk(['source', 'add', '--group', 'g', '--agent', 'dbhost', '--kind', 'postgres', '--connect', 'postgresql://postgres@/postgres?host=/nonexistent', 'db', '/nonexistent/pgdata']);
    // What the agent does when it configures archive_command: make the source's key.
    key = await logSourceKey(dir('agent'), 'db', 'pg-wal');
  });

  after(async () => {
    await agent?.kill();
    await server?.kill();
    tmp.cleanup();
  });

  it('a pushed segment is durable when log-push exits 0; the chain lists it in order', async () => {
    for (const n of [1, 2, 3]) {
      const r = await push(writeSeg(segName(n)), segName(n));
      assert.equal(r.code, 0, r.stderr);
    }
    const logs = await server.admin().json<Array<{ name: string; seq: number; kind: string; bytes: number; time: string }>>('GET', '/api/v1/sources/db/logs');
    assert.deepEqual(logs.map((l) => [l.name, l.seq, l.kind, l.bytes]), [1, 2, 3].map((n) => [segName(n), n, 'pg-wal', SEG]));
    assert.ok(logs[0] && logs[2] && logs[0].time <= logs[2].time);
  });

  it('the same segment again succeeds; other bytes under its name are refused; a wrong key is refused', async () => {
    const again = await push(join(dir('wal'), segName(2)), segName(2));
    assert.equal(again.code, 0, again.stderr);
    const other = join(dir('wal'), 'other');
    writeFileSync(other, randomBytes(SEG));
    const conflict = await push(other, segName(2));
    assert.notEqual(conflict.code, 0);
    assert.match(conflict.stderr, /already stored .* different content/);
    const badKey = await push(join(dir('wal'), segName(3)), segName(4), 'not-the-key');
    assert.notEqual(badKey.code, 0);
    assert.match(badKey.stderr, /wrong key/);
    const logs = await server.admin().json<unknown[]>('GET', '/api/v1/sources/db/logs');
    assert.equal(logs.length, 3, 'nothing was added by the refused pushes');
  });

  it('a hole in the segment numbers raises a log-gap alert naming the missing segments', async () => {
    const r = await push(writeSeg(segName(6)), segName(6));
    assert.equal(r.code, 0, r.stderr);
    const alert = await until('the log-gap alert', async () => {
      const alerts = await server.admin().json<Array<{ kind: string; object: string; message: string; state: string }>>('GET', '/api/v1/alerts?state=active');
      return alerts.find((a) => a.kind === 'log-gap' && a.object === 'db');
    });
    assert.match(alert.message, /segments 4–5 missing/);
    const view = await server.admin().json<{ recoverable: unknown }>('GET', '/api/v1/sources/db');
    assert.equal(view.recoverable, null, 'no recovery point yet: nothing is recoverable');
  });

  it('log-push fails (non-zero) when the agent is down, and succeeds once it is back', async () => {
    await agent.kill();
    const down = await push(writeSeg(segName(7)), segName(7));
    assert.notEqual(down.code, 0);
    assert.match(down.stderr, /cannot reach the Holdfast agent/);
    agent.restart();
    await agent.waitOnline();
    const back = await until('log-push to succeed after the restart', async () => (await push(join(dir('wal'), segName(7)), segName(7))).code === 0, 30_000, 500);
    assert.ok(back);
  });

  it('the server holds exactly the bytes of every pushed file', async () => {
    await server.kill();
    const pool = await Pool.open(join(dir('server'), 'pool'));
    try {
      const logs = pool.catalog.logs('db');
      assert.deepEqual(logs.map((l) => l.name), [1, 2, 3, 6, 7].map(segName));
      for (const l of logs) {
        assert.deepEqual(l.meta, { timeline: 1, segno: parseInt(l.name.slice(16), 16), segSize: SEG });
        const back = Buffer.concat(await pool.reader.read(l.manifest));
        assert.ok(back.equals(files.get(l.name) as Buffer), `${l.name} differs`);
      }
    } finally {
      await pool.close();
    }
  });
});
