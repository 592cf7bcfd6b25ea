/**
 * Quiescing: pre runs before the snapshot and post after it, post even when the pre command or
 * the snapshot fails; commands are killed at their timeout; fsfreeze really blocks writers on an
 * ext4 (a loop device) while the snapshot is taken, thaws afterwards, and a watchdog thaws it at
 * the timeout whatever the agent does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quiesce, runCommand } from './quiesce.js';

function scratch(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-quiesce-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('pre, snapshot, post run in that order; post runs when the snapshot fails', async () => {
  const s = scratch();
  try {
    const log = join(s.dir, 'log');
    const o = { preSnapshot: `echo pre >> '${log}'`, postSnapshot: `echo post:$HOLDFAST_SOURCE_PATH >> '${log}'`, timeoutMs: 5000 };
    const r = await quiesce('/src', o, () => {
      writeFileSync(log, 'snap\n', { flag: 'a' });
      return Promise.resolve(42);
    });
    assert.equal(r.value, 42);
    assert.deepEqual(r.warnings, []);
    assert.equal(readFileSync(log, 'utf8'), 'pre\nsnap\npost:/src\n');
    await assert.rejects(quiesce('/src', o, () => Promise.reject(new Error('snapshot failed'))), /snapshot failed/);
    assert.match(readFileSync(log, 'utf8'), /pre\npost:\/src\n$/);
  } finally {
    s.done();
  }
});

test('a failing or slow pre command stops the sync (post still runs); a failing post is a warning', async () => {
  const s = scratch();
  try {
    const log = join(s.dir, 'log');
    let took = false;
    const take = (): Promise<void> => {
      took = true;
      return Promise.resolve();
    };
    await assert.rejects(quiesce('/x', { preSnapshot: 'echo nope >&2; exit 3', postSnapshot: `echo post >> '${log}'`, timeoutMs: 5000 }, take), /pre-snapshot command failed \(exit status 3\): nope/);
    assert.equal(took, false);
    assert.equal(readFileSync(log, 'utf8'), 'post\n');
    const started = Date.now();
    await assert.rejects(quiesce('/x', { preSnapshot: 'sleep 20', timeoutMs: 300 }, take), /timed out after 300 ms/);
    assert.ok(Date.now() - started < 5000, 'the timeout did not kill the command');
    const r = await quiesce('/x', { postSnapshot: 'exit 1', timeoutMs: 5000 }, take);
    assert.match(r.warnings.join(), /post-snapshot command failed/);
  } finally {
    s.done();
  }
});

test('runCommand kills the whole process group at the timeout', async () => {
  const r = await runCommand('sleep 20 & sleep 20; wait', 200);
  assert.equal(r.code, 124);
});

test('fsfreeze blocks writers while the snapshot is taken, and thaws after', async () => {
  const s = scratch();
  const img = join(s.dir, 'ext4.img');
  const mnt = join(s.dir, 'mnt');
  let dev = '';
  try {
    writeFileSync(img, '');
    truncateSync(img, 32 * 1024 * 1024);
    assert.equal(spawnSync('mkfs.ext4', ['-q', img]).status, 0);
    dev = spawnSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).stdout.trim();
    mkdirSync(mnt);
    assert.equal(spawnSync('mount', [dev, mnt]).status, 0);
    const file = join(mnt, 'f');
    let writer: Promise<unknown> | undefined;
    const r = await quiesce(mnt, { fsfreeze: true, timeoutMs: 10_000 }, async () => {
      // A writer on a frozen filesystem waits (uninterruptibly) until the thaw.
      writer = runCommand(`echo x > '${file}'`, 20_000);
      await new Promise((res) => setTimeout(res, 500));
      return existsSync(file) ? readFileSync(file, 'utf8') : '';
    });
    assert.equal(r.value, '', 'a write went through while the filesystem was frozen');
    await writer;
    assert.equal(readFileSync(file, 'utf8'), 'x\n', 'the filesystem was not thawed');
    // The watchdog: a freeze never outlives its timeout, even if the sync hangs (or is killed).
    const started = Date.now();
    await quiesce(mnt, { fsfreeze: true, timeoutMs: 1000 }, () => runCommand(`echo y > '${file}'`, 20_000));
    const waited = Date.now() - started;
    assert.ok(waited >= 900 && waited < 8000, `the writer waited ${waited} ms`);
    assert.equal(readFileSync(file, 'utf8'), 'y\n');
    await assert.rejects(quiesce('/', { fsfreeze: true, timeoutMs: 1000 }, () => Promise.resolve()), /refusing to fsfreeze the root/);
  } finally {
    spawnSync('fsfreeze', ['-u', mnt]);
    spawnSync('umount', [mnt]);
    if (dev) spawnSync('losetup', ['-d', dev]);
    s.done();
  }
});
