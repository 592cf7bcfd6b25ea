import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlDb } from './control-db.js';
import { JobQueue } from './job-queue.js';

function setup(maxRunning: number): { db: ControlDb; q: JobQueue; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-jq-'));
  const db = new ControlDb(join(dir, 'control.sqlite'));
  const now = new Date().toISOString();
  db.addAgent({ id: 'a1', name: 'a1', hostname: 'h', created: now, version: null });
  db.addAgent({ id: 'a2', name: 'a2', hostname: 'h', created: now, version: null });
  return { db, q: new JobQueue(db, { maxRunning, retryDelayMs: 60_000 }), done: () => (db.close(), rmSync(dir, { recursive: true })) };
}

test('never two jobs on one source at once; a queued sync is not queued twice', () => {
  const { q, done } = setup(10);
  const s1 = q.enqueue('sync', 'src', 'a1', {}, 'manual');
  assert.equal(q.enqueue('sync', 'src', 'a1', {}, 'schedule').id, s1.id, 'asking twice gives the same queued sync');
  const r = q.enqueue('restore', 'src', 'a1', { point: 'p' }, 'manual');
  assert.equal(q.take('a1')?.id, s1.id);
  assert.equal(q.take('a1'), undefined, 'the restore waits for the sync of the same source');
  const s2 = q.enqueue('sync', 'src', 'a1', {}, 'manual');
  assert.notEqual(s2.id, s1.id, 'a sync may be queued behind a running one');
  q.end(s1.id, { state: 'succeeded', result: {} });
  assert.equal(q.take('a1')?.id, r.id);
  done();
});

test('the global concurrency limit holds across agents, and jobs go only to their agent', () => {
  const { q, done } = setup(2);
  for (const s of ['x', 'y', 'z']) q.enqueue('sync', s, 'a1', {}, 'manual');
  const w = q.enqueue('sync', 'w', 'a2', {}, 'manual');
  assert.ok(q.take('a1'));
  assert.equal(q.take('a2')?.id, w.id);
  assert.equal(q.take('a1'), undefined, 'two running: the limit');
  done();
});

test('a failed sync is re-run once, after the delay, and the re-run is not re-run', () => {
  const { db, q, done } = setup(4);
  const ended: string[] = [];
  q.onEnd = (job, end, retry) => ended.push(`${job.id}:${end.state}:${retry ? retry.origin : '-'}`);
  const j = q.enqueue('sync', 's', 'a1', {}, 'schedule');
  q.take('a1');
  q.end(j.id, { state: 'failed', error: { code: 'X', message: 'boom' } });
  const retry = db.openJobs().find((x) => x.retryOf === j.id);
  assert.ok(retry);
  assert.equal(retry.origin, 'retry');
  assert.ok(retry.notBefore && Date.parse(retry.notBefore) > Date.now() + 50_000);
  assert.equal(q.take('a1'), undefined, 'not before its time');
  db.db.prepare('UPDATE jobs SET not_before = NULL WHERE id = ?').run(retry.id);
  assert.equal(q.take('a1')?.id, retry.id);
  q.end(retry.id, { state: 'failed', error: { code: 'X', message: 'again' } });
  assert.equal(db.openJobs().length, 0, 'no third attempt');
  assert.deepEqual(ended, [`${j.id}:failed:retry`, `${retry.id}:failed:-`]);
  done();
});

test('an interrupted job goes back to the queue and resumes', () => {
  const { q, db, done } = setup(4);
  const j = q.enqueue('sync', 's', 'a1', {}, 'manual');
  q.take('a1');
  q.requeue(j.id);
  assert.equal(db.job(j.id)?.state, 'queued');
  assert.equal(q.take('a1')?.attempt, 2);
  done();
});

test("a job wakes its own agent's poll at once, not the others'", async () => {
  const { q, done } = setup(4);
  const ac = new AbortController();
  const t0 = Date.now();
  let a2Woke = false;
  const a1 = q.waitForWork('a1', 5_000, ac.signal).then(() => Date.now() - t0);
  void q.waitForWork('a2', 300, ac.signal).then(() => (a2Woke = Date.now() - t0 < 250));
  q.enqueue('sync', 's', 'a1', {}, 'manual');
  assert.ok((await a1) < 1000, 'a1 woke when its job was queued');
  assert.ok(q.take('a2') === undefined && q.take('a1') !== undefined);
  await new Promise((r) => setTimeout(r, 350));
  assert.equal(a2Woke, false, "a2's poll ran to its timeout");
  q.wake(); // nothing is queued for anyone: no poll needs waking
  done();
});
