/**
 * The transfer between agent and server, measured from the outside: the group's bandwidth
 * limit and compression setting are honoured, an agent killed mid-sync resumes without sending
 * stored chunks again, and alerts (failed job, agent offline, missed objective) are raised,
 * posted to the webhook and resolved.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { diffSnapshots, scratch, snapshotTree } from './cli-harness.js';
import { prng, writeRandomFile } from './tree-fixtures.js';
import { TestAgent, TestServer, until, type JobJson } from './server-harness.js';

const MiB = 1024 * 1024;

interface SyncJson {
  point: string;
  logicalBytes: number;
  sentBytes: number;
  receivedBytes: number;
  newBytes: number;
  storedNewBytes: number;
  durationMs: number;
}

interface AlertJson {
  kind: string;
  severity: string;
  object: string;
  state: string;
  message: string;
}

function writeText(path: string, bytes: number, seed: number): void {
  const rng = prng(seed);
  const words = ['backup', 'recovery', 'point', 'replica', 'agent', 'server', 'chunk', 'pool', 'volume', 'shadow', 'copy', 'sync'];
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const line = `${Math.floor(rng() * 1e6)} ${Array.from({ length: 8 }, () => words[Math.floor(rng() * words.length)]).join(' ')}\n`;
    parts.push(line);
    n += line.length;
  }
  writeFileSync(path, parts.join('').slice(0, bytes));
}

describe('agent ⇄ server transfer and alerts', { timeout: 480_000 }, () => {
  const tmp = scratch('holdfast-xfer-');
  let server: TestServer;
  let agent: TestAgent;
  let hook: Server;
  const posts: Array<{ event: string; alert: AlertJson }> = [];
  const dir = (n: string): string => join(tmp.dir, n);

  before(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        posts.push(JSON.parse(body) as { event: string; alert: AlertJson });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    server = await TestServer.start(dir('server'));
    agent = await TestAgent.start(server, 'prod1', dir('agent'));
    await server.cliOk(['alerts', 'webhook', `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`]);
  });

  after(async () => {
    await agent?.kill();
    await server?.kill();
    hook?.close();
    tmp.cleanup();
  });

  it("honours the group's bandwidth limit", async () => {
    mkdirSync(dir('rnd'));
    writeRandomFile(join(dir('rnd'), 'r.bin'), 16 * MiB);
    await server.cliOk(['group', 'create', 'throttled', '--sync-every', 'off', '--throttle', '2MiB/s']);
    await server.cliOk(['source', 'add', '--group', 'throttled', '--agent', 'prod1', 'rnd', dir('rnd')]);
    const r = await server.json<SyncJson>(['sync', 'rnd', '--wait']);
    assert.ok(r.sentBytes >= 16 * MiB, `sent ${r.sentBytes}`);
    // 16 MiB at 2 MiB/s with one 4 MiB burst: at least 6 s.
    assert.ok(r.durationMs >= 5500, `a throttled sync of 16 MiB took only ${r.durationMs} ms`);
  });

  it('compresses on the wire when the group says so, and not when it does not', async () => {
    await server.cliOk(['group', 'create', 'zon', '--sync-every', 'off', '--compress', 'on']);
    await server.cliOk(['group', 'create', 'zoff', '--sync-every', 'off', '--compress', 'off']);
    for (const [name, group, seed] of [['text-on', 'zon', 1], ['text-off', 'zoff', 2]] as const) {
      mkdirSync(dir(name));
      writeText(join(dir(name), 'log.txt'), 8 * MiB, seed);
      await server.cliOk(['source', 'add', '--group', group, '--agent', 'prod1', name, dir(name)]);
    }
    const on = await server.json<SyncJson>(['sync', 'text-on', '--wait']);
    const off = await server.json<SyncJson>(['sync', 'text-off', '--wait']);
    assert.ok(on.sentBytes < 0.5 * on.logicalBytes, `compressed: sent ${on.sentBytes} of ${on.logicalBytes}`);
    assert.ok(off.sentBytes >= off.logicalBytes, `uncompressed: sent ${off.sentBytes} of ${off.logicalBytes}`);
    assert.ok(off.storedNewBytes >= off.newBytes, 'stored raw in the pool');
  });

  it('resumes a sync after kill -9 of the agent without sending stored chunks again', async () => {
    mkdirSync(dir('resume'));
    writeRandomFile(join(dir('resume'), 'big.bin'), 32 * MiB);
    await server.cliOk(['group', 'create', 'slow', '--sync-every', 'off', '--throttle', '4MiB/s']);
    await server.cliOk(['source', 'add', '--group', 'slow', '--agent', 'prod1', 'resume', dir('resume')]);
    const job = await server.json<JobJson>(['sync', 'resume']);
    const admin = server.admin();
    await until('12 MiB sent', async () => ((await admin.json<JobJson>('GET', `/api/v1/jobs/${job.id}`)).progress?.sentBytes ?? 0) > 12 * MiB, 60_000, 100);
    await agent.kill('SIGKILL');
    agent.restart();
    const done = await until('the sync to finish after the agent restarted', async () => {
      const j = await admin.json<JobJson>('GET', `/api/v1/jobs/${job.id}`);
      return j.state !== 'queued' && j.state !== 'running' ? j : undefined;
    }, 120_000, 300);
    await admin.close();
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.attempt, 2);
    const received = Number(done.result?.receivedBytes);
    assert.ok(received <= 32 * MiB - 8 * MiB, `the resumed attempt received ${received} bytes of 32 MiB`);
    const to = dir('resume-restored');
    await server.json(['restore', '--source', 'resume', '--to', to]);
    assert.deepEqual(diffSnapshots(snapshotTree(dir('resume')), snapshotTree(to)), []);
  });

  it('raises, posts and resolves alerts: failed job (with its retry), agent offline, missed objective', async () => {
    await server.cliOk(['group', 'create', 'often', '--sync-every', '2s']);
    await server.cliOk(['source', 'add', '--group', 'often', '--agent', 'prod1', 'missing', dir('not-yet')]);
    const active = (): Promise<AlertJson[]> => server.json<AlertJson[]>(['alerts']);
    await until('a failed-job alert', async () => (await active()).some((a) => a.kind === 'job-failed' && a.object === 'missing'), 30_000, 500);
    // The automatic re-run fails as well: the alert becomes critical.
    await until('the critical alert after the retry', async () => (await active()).some((a) => a.kind === 'job-failed' && a.severity === 'critical'), 30_000, 500);
    const jobs = await server.json<JobJson[]>(['jobs', '--source', 'missing']);
    assert.ok(jobs.some((j) => j.origin === 'retry' && j.retryOf !== null));
    mkdirSync(dir('not-yet'));
    writeFileSync(join(dir('not-yet'), 'f'), 'now it exists');
    await until('the failed-job alert to resolve', async () => !(await active()).some((a) => a.kind === 'job-failed'), 30_000, 500);

    await agent.kill('SIGKILL');
    await until('agent offline and objective missed', async () => {
      const a = await active();
      return a.some((x) => x.kind === 'agent-offline' && x.severity === 'critical') && a.some((x) => x.kind === 'rpo-missed' && x.object === 'missing');
    }, 40_000, 500);
    agent.restart();
    await until('both to resolve', async () => !(await active()).some((x) => x.kind === 'agent-offline' || x.kind === 'rpo-missed'), 40_000, 500);
    const kinds = (event: string): string[] => [...new Set(posts.filter((p) => p.event === event).map((p) => p.alert.kind))].sort();
    // (A consistency-check alert may come too: the killed agent lost its change journal.)
    for (const k of ['agent-offline', 'job-failed', 'rpo-missed']) {
      assert.ok(kinds('raised').includes(k), `${k} raised: ${kinds('raised').join(',')}`);
      assert.ok(kinds('resolved').includes(k), `${k} resolved: ${kinds('resolved').join(',')}`);
    }
    await server.cliOk(['group', 'create', 'idle', '--sync-every', 'off']);
  });
});
