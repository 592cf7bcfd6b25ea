/**
 * The protection server and two agents as separate processes over TLS on loopback: scheduled
 * syncs happen unasked, a restore on another host equals the source with its metadata, and a
 * kill -9 of the server in the middle of a sync loses nothing committed and the sync completes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { diffSnapshots, scratch, snapshotTree } from './cli-harness.js';
import { buildTree, prng, writeRandomFile } from './tree-fixtures.js';
import { setXattr } from '../../src/native/index.js';
import { TestAgent, TestServer, until, type JobJson } from './server-harness.js';

interface PointJson {
  id: string;
  time: string;
}

describe('protection server with two agents', { timeout: 480_000 }, () => {
  const tmp = scratch('holdfast-server-');
  let server: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  const srcA = join(tmp.dir, 'data-a');
  const srcB = join(tmp.dir, 'data-b');
  const slow = join(tmp.dir, 'data-slow');

  before(async () => {
    buildTree(srcA, prng(31), { files: 150 });
    setXattr(join(srcA, 'a'), 'user.note', Buffer.from('kept'));
    symlinkSync('a/b', join(srcA, 'link-to-b'));
    buildTree(srcB, prng(32), { files: 80 });
    mkdirSync(slow);
    writeRandomFile(join(slow, 'big.bin'), 40 * 1024 * 1024);
    server = await TestServer.start(join(tmp.dir, 'server'));
    a = await TestAgent.start(server, 'host-a', join(tmp.dir, 'agent-a'));
    b = await TestAgent.start(server, 'host-b', join(tmp.dir, 'agent-b'));
  });

  after(async () => {
    await a?.kill();
    await b?.kill();
    await server?.kill();
    tmp.cleanup();
  });

  it('syncs every source of a group on schedule without being asked', async () => {
    await server.cliOk(['group', 'create', 'files', '--sync-every', '2s', '--retain', '7d']);
    await server.cliOk(['source', 'add', '--group', 'files', '--agent', 'host-a', '--kind', 'dir', 'docs-a', srcA]);
    await server.cliOk(['source', 'add', '--group', 'files', '--agent', 'host-b', '--kind', 'dir', 'docs-b', srcB]);
    for (const s of ['docs-a', 'docs-b']) {
      await until(`two scheduled recovery points of ${s}`, async () => (await server.json<PointJson[]>(['points', '--source', s])).length >= 2, 60_000, 500);
    }
    const jobs = await server.json<JobJson[]>(['jobs']);
    assert.ok(jobs.some((j) => j.source === 'docs-a' && j.origin === 'schedule' && j.state === 'succeeded'));
    assert.ok(jobs.some((j) => j.source === 'docs-b' && j.origin === 'schedule' && j.state === 'succeeded'));
    const agents = await server.json<Array<{ name: string; status: string; sources: string[] }>>(['agents']);
    assert.deepEqual(agents.map((x) => [x.name, x.status, x.sources]), [['host-a', 'online', ['docs-a']], ['host-b', 'online', ['docs-b']]]);
  });

  it("restores host-a's source on host-b (an alternate host), equal with its metadata", async () => {
    await server.cliOk(['group', 'create', 'manual', '--sync-every', 'off']);
    const to = join(tmp.dir, 'restore-on-b');
    const r = await server.json<{ entries: number; target: string; point: string }>(['restore', '--source', 'docs-a', '--to', to, '--agent', 'host-b']);
    assert.equal(r.target, to);
    assert.deepEqual(diffSnapshots(snapshotTree(srcA), snapshotTree(to)), []);
    const jobs = await server.json<Array<JobJson & { agent: string }>>(['jobs', '--source', 'docs-a']);
    const restoreJob = jobs.find((j) => j.type === 'restore');
    const agents = await server.json<Array<{ id: string; name: string }>>(['agents']);
    assert.equal(restoreJob?.agent, agents.find((x) => x.name === 'host-b')?.id, 'the restore ran on host-b');
    // --path restores one directory, and a non-empty target is refused without --overwrite.
    const one = join(tmp.dir, 'one-dir');
    await server.json(['restore', '--source', 'docs-a', '--path', 'a/b', '--to', one]);
    assert.deepEqual(diffSnapshots(snapshotTree(join(srcA, 'a/b')), snapshotTree(join(one, 'b'))), []);
    const again = await server.cli(['restore', '--source', 'docs-a', '--to', to]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /not empty/);
  });

  it('completes a sync interrupted by kill -9 of the server, and every earlier point still restores', async () => {
    await server.cliOk(['group', 'create', 'slow', '--sync-every', 'off', '--throttle', '4MiB/s']);
    await server.cliOk(['source', 'add', '--group', 'slow', '--agent', 'host-a', '--kind', 'dir', 'big', slow]);
    const job = await server.json<JobJson>(['sync', 'big']);
    let admin = server.admin();
    await until('the sync to send 20 MiB', async () => ((await admin.json<JobJson>('GET', `/api/v1/jobs/${job.id}`)).progress?.sentBytes ?? 0) > 20 * 1024 * 1024, 60_000, 100);
    await server.kill('SIGKILL');
    const before = await admin.close().then(() => undefined);
    void before;
    await server.restart();
    admin = server.admin();
    const done = await until('the interrupted sync to complete after the restart', async () => {
      const j = await admin.json<JobJson>('GET', `/api/v1/jobs/${job.id}`);
      return j.state === 'succeeded' || j.state === 'failed' ? j : undefined;
    }, 120_000, 300);
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    assert.ok(done.attempt >= 2, 'the job ran again after the restart');
    // Sealed packs (8 MiB each; two or more were durable at the kill) survived the crash: the second attempt did not send them again.
    assert.ok(Number(done.result?.receivedBytes) <= 40 * 1024 * 1024 - 8 * 1024 * 1024, `received ${String(done.result?.receivedBytes)} bytes after the restart`);
    const to = join(tmp.dir, 'restore-big');
    await server.json(['restore', '--source', 'big', '--to', to]);
    assert.deepEqual(diffSnapshots(snapshotTree(slow), snapshotTree(to)), []);
    // Stop the schedule, then restore every point of docs-a taken so far.
    await admin.json('PATCH', '/api/v1/groups/files', { syncEvery: 'off' });
    await admin.close();
    const points = await server.json<PointJson[]>(['points', '--source', 'docs-a']);
    assert.ok(points.length >= 2);
    for (const p of points) {
      const t = join(tmp.dir, `docs-a-${p.id}`);
      await server.json(['restore', '--source', 'docs-a', '--point', p.id, '--to', t]);
      assert.deepEqual(diffSnapshots(snapshotTree(srcA), snapshotTree(t)), [], `point ${p.id}`);
    }
  });

  it('reports a sync that fails with a non-zero exit and the reason', async () => {
    await server.cliOk(['source', 'add', '--group', 'manual', '--agent', 'host-b', '--kind', 'dir', 'gone', join(tmp.dir, 'no-such-dir')]);
    const r = await server.cli(['sync', 'gone', '--wait', '--json']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no-such-dir/);
    writeFileSync(join(tmp.dir, 'marker'), 'x');
  });
});
