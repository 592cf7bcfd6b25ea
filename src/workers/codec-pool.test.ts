import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodecPool } from './codec-pool.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

test('a codec worker hashes while its own read waits on a slow file, and each reply reaches its request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-codec-pool-'));
  const fifo = join(dir, 'slow');
  execFileSync('mkfifo', [fifo]);
  const codec = new CodecPool(1); // one worker: the read and the hash share it
  let unblocked = false;
  const unblock = (): void => {
    if (unblocked) return;
    unblocked = true;
    // Opening for writing meets the worker's open for reading (queued or waiting already); the
    // worker's positional read then fails at once, so nothing needs writing.
    closeSync(openSync(fifo, 'w'));
  };
  try {
    const plain = join(dir, 'plain');
    writeFileSync(plain, 'plain bytes');
    const expect = { size: 11, mtimeNs: '0', ctimeNs: '0', ino: '0' };
    // The batch's second file is a FIFO: its open waits for a writer (and a positional read of it then fails).
    const reading = codec.readHash([
      { path: plain, rule: { kind: 'whole' }, expect },
      { path: fifo, rule: { kind: 'whole' }, expect },
    ]);
    const hashing = codec.hash([{ buf: Buffer.from('other'), rule: { kind: 'whole' }, detectZero: false }]);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), 5000)));
    const first = await Promise.race([hashing, late]);
    clearTimeout(timer);
    assert.notEqual(first, 'late', 'the hash waited for the blocked read');
    assert.deepEqual((await hashing).pieces[0]?.digests, [sha('other')]);
    unblock();
    const { results } = await reading;
    const [r, slow] = results;
    assert.ok(r?.ok, `the plain file was read: ${JSON.stringify(r)}`);
    assert.deepEqual(r.piece.digests, [sha('plain bytes')]);
    assert.ok(slow && !slow.ok && slow.code === 'ESPIPE', `the FIFO's failure is its own result: ${JSON.stringify(slow)}`);
  } finally {
    unblock();
    await codec.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
