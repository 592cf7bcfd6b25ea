import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodecPool } from './codec-pool.js';
import { decodeChunk, encodeChunk, FLAG_ZSTD, MAX_KEPT } from '../core/codec.js';
import { bigBuffer, spareBigBuffer } from './big-buffers.js';
import { randomBytes } from 'node:crypto';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Hashes `buf` (moved to a worker as given) into fixed chunks of `size` and encodes every one. */
async function encodeWhole(codec: CodecPool, buf: Buffer, size: number): Promise<{ chunks: Array<{ data: Uint8Array; flags: number }>; release: () => void }> {
  const { hold, pieces } = await codec.hash([{ buf, rule: { kind: 'fixed', size }, detectZero: false }]);
  let off = 0;
  const held = (pieces[0] as { lengths: number[] }).lengths.map((len): [number, number, number] => {
    const p: [number, number, number] = [0, off, len];
    off += len;
    return p;
  });
  return codec.encodeHeld(hold, held, 3);
}

/** Empties this thread's store of kept big buffers. */
function emptyBigBuffers(): void {
  while (spareBigBuffer(1)) {
    // taken and dropped
  }
}

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

test('verify checks raw and compressed chunks, refuses a mismatch, and hands a moved body back intact', async () => {
  const codec = new CodecPool(1);
  try {
    const a = Buffer.from('x'.repeat(5000));
    const b = Buffer.from('some raw chunk bytes');
    const za = encodeChunk(a, 3);
    assert.equal(za.flags & FLAG_ZSTD, FLAG_ZSTD);
    // One body owning its memory, the chunks lying in it as in an upload.
    const body = Buffer.alloc(za.data.length + b.length + 7);
    za.data.forEach((v, i) => (body[3 + i] = v));
    b.copy(body, 3 + za.data.length);
    const snapshot = Buffer.from(body);
    const items = [
      { data: body.subarray(3, 3 + za.data.length), flags: za.flags, length: a.length, digest: createHash('sha256').update(a).digest('hex') },
      { data: body.subarray(3 + za.data.length, 3 + za.data.length + b.length), flags: 0, length: b.length, digest: createHash('sha256').update(b).digest('hex') },
      { data: body.subarray(3 + za.data.length, 3 + za.data.length + b.length), flags: 0, length: b.length, digest: sha('not these bytes') },
    ];
    const { results, back } = await codec.verify(items, body);
    assert.deepEqual(results.slice(0, 2), [{ ok: true }, { ok: true }]);
    assert.equal(results[2]?.ok, false);
    assert.match((results[2] as { reason: string }).reason, /digest mismatch/);
    assert.equal(body.length, 0, 'the body was moved, not copied');
    assert.deepEqual(back, snapshot, 'and came back as it was');
    // A view into a larger buffer is not moved: it stays usable and nothing comes back.
    const view = Buffer.concat([snapshot, Buffer.alloc(10)]).subarray(0, snapshot.length);
    const kept = await codec.verify([{ ...items[1]!, data: view.subarray(3 + za.data.length, 3 + za.data.length + b.length) }], view);
    assert.deepEqual(kept.results, [{ ok: true }]);
    assert.equal(kept.back, undefined);
    assert.equal(view.length, snapshot.length);
  } finally {
    await codec.close();
  }
});

test('verify hands back the plaintext of the items marked keep, and only of those that verify', async () => {
  const codec = new CodecPool(1);
  try {
    const a = Buffer.from('page text '.repeat(400));
    const b = Buffer.from('a raw manifest chunk');
    const c = Buffer.from('y'.repeat(3000));
    const za = encodeChunk(a, 1);
    const zc = encodeChunk(c, 1);
    const item = (plain: Buffer, enc: { data: Uint8Array; flags: number }, keep: boolean, digest = sha(plain.toString())) => ({ data: Buffer.from(enc.data), flags: enc.flags, length: plain.length, digest, keep });
    const { results, kept } = await codec.verify([
      item(a, za, true),
      item(c, zc, false),
      item(b, { data: b, flags: 0 }, true),
      item(c, zc, true, sha('other text')),
    ]);
    assert.ok(kept);
    const at = (i: number): [number, number] => (results[i] as { at: [number, number] }).at;
    assert.deepEqual(kept.subarray(at(0)[0], at(0)[0] + at(0)[1]), a);
    assert.deepEqual(results[1], { ok: true });
    assert.deepEqual(kept.subarray(at(2)[0], at(2)[0] + at(2)[1]), b);
    assert.equal(results[3]?.ok, false, 'a kept item that does not verify is refused, its bytes not handed out');
    assert.equal(at(2)[0], a.length, 'kept plaintexts lie one after the other');
    // Past MAX_KEPT in one call, items are verified but not kept: the sender's lengths do not size
    // what the worker allocates.
    const big = Buffer.alloc(MAX_KEPT / 2 + 1, 1);
    const zb = encodeChunk(big, 1);
    const many = await codec.verify([item(big, zb, true), item(big, zb, true), item(a, za, true)]);
    assert.deepEqual(many.results.map((r) => r.ok), [true, true, true]);
    assert.deepEqual(many.results.map((r) => (r as { at?: unknown }).at !== undefined), [true, false, true]);
    assert.equal(many.kept?.length, big.length + a.length);
  } finally {
    await codec.close();
  }
});

test('encode output buffers come back for the next batch once released, and chunks encoded into one decode to their data', async () => {
  const codec = new CodecPool(1);
  const MiB = 1024 * 1024;
  try {
    emptyBigBuffers();
    const encodeAll = (data: Buffer): ReturnType<typeof encodeWhole> => encodeWhole(codec, Buffer.from(data), 256 * 1024);
    // Half random (stored raw), half text (compressed).
    const data = Buffer.concat([randomBytes(2 * MiB), Buffer.from('a line of text\n'.repeat((2 * MiB) / 15 + 1)).subarray(0, 2 * MiB)]);
    const first = await encodeAll(data);
    assert.equal(spareBigBuffer(1), undefined, 'nothing is kept before the release');
    first.release();
    const kept = spareBigBuffer(4 * MiB);
    assert.ok(kept, 'the released output is kept');
    // Give it back, so that the next batch is encoded into it.
    const { keepBigBuffer } = await import('./big-buffers.js');
    keepBigBuffer(kept.buffer);
    const second = await encodeAll(data);
    assert.equal(spareBigBuffer(1), undefined, 'the next batch took the kept buffer');
    let at = 0;
    for (const c of second.chunks) {
      const len = Math.min(256 * 1024, data.length - at);
      const r = decodeChunk(c.data, c.flags, len, createHash('sha256').update(data.subarray(at, at + len)).digest('hex'));
      assert.ok(r.ok, 'a chunk encoded into the reused buffer decodes to its data');
      at += len;
    }
    assert.equal(at, data.length);
    second.release();
  } finally {
    await codec.close();
  }
});

test('the buffers a restore write came in go back to the main thread for the next reads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-codec-spent-'));
  const codec = new CodecPool(1);
  try {
    emptyBigBuffers();
    const plain = randomBytes(1536 * 1024);
    const enc = encodeChunk(plain, 0);
    const run = bigBuffer(enc.data.length);
    run.set(enc.data);
    const fd = openSync(join(dir, 'out'), 'w');
    try {
      const r = await codec.writeAt({ fd, pieces: [{ data: run, flags: enc.flags, length: plain.length, digest: createHash('sha256').update(plain).digest('hex'), offset: 0 }] });
      assert.ok(r.ok);
    } finally {
      closeSync(fd);
    }
    const back = spareBigBuffer(plain.length);
    assert.ok(back, 'the run buffer came back');
    assert.ok(back.length >= 2 * 1024 * 1024);
  } finally {
    await codec.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a codec worker that dies is replaced: later jobs are answered', { timeout: 30_000 }, async () => {
  const codec = new CodecPool(2);
  try {
    const hashOne = async (s: string): Promise<string> => (await codec.hash([{ buf: Buffer.from(s), rule: { kind: 'whole' }, detectZero: false }])).pieces[0]?.digests[0] as string;
    assert.equal(await hashOne('before'), sha('before'));
    // Both workers die (as an uncaught error or a resource limit would end them).
    const slots = (codec as unknown as { slots: Array<{ worker: { terminate(): Promise<number> } }> }).slots;
    await Promise.all(slots.map((s) => s.worker.terminate()));
    // Every later job still reaches a live worker, whichever slot it lands on.
    const after = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((s) => hashOne(s)));
    assert.deepEqual(after, ['a', 'b', 'c', 'd', 'e', 'f'].map(sha));
  } finally {
    await codec.close();
  }
});

test('a large read buffer that is not one segment (a segment joined with its carry) comes back from the worker to be kept', async () => {
  const codec = new CodecPool(1);
  const MiB = 1024 * 1024;
  try {
    emptyBigBuffers();
    // As the file chunker joins a segment with the carry before it: a kept buffer, rounded to 5 MiB.
    const joined = bigBuffer(4 * MiB + 100 * 1024);
    randomBytes(joined.length).copy(joined);
    assert.equal(joined.buffer.byteLength, 5 * MiB);
    await encodeWhole(codec, joined, 1024 * 1024);
    const back = spareBigBuffer(5 * MiB);
    assert.ok(back, 'the 5 MiB buffer came back and was kept');
    assert.equal(back.buffer.byteLength, 5 * MiB);
  } finally {
    await codec.close();
  }
});

test('a batch of small files is read whole and hashed right, direct where the file system allows and buffered on tmpfs', async () => {
  // Sizes off the block size, one of exactly a block, one of 1 MiB: the batch is over 1 MiB, so it
  // is read into one kept buffer with each file at an aligned place (direct reads on ext4).
  const sizes = [1, 4095, 4096, 4097, 70_000, 1024 * 1024, 333_333];
  for (const base of [tmpdir(), '/dev/shm']) {
    const dir = mkdtempSync(join(base, 'hf-small-read-'));
    const codec = new CodecPool(1);
    try {
      const files = sizes.map((size, i) => {
        const path = join(dir, `f${i}`);
        const data = randomBytes(size);
        writeFileSync(path, data);
        const st = statSync(path, { bigint: true });
        return { path, data, expect: { size, mtimeNs: st.mtimeNs.toString(), ctimeNs: st.ctimeNs.toString(), ino: st.ino.toString() } };
      });
      // one file changed after its stat: reported as not the same, never hashed as if it were
      writeFileSync(files[2]!.path, randomBytes(4096));
      const { hold, results } = await codec.readHash(files.map((f) => ({ path: f.path, rule: { kind: 'whole' as const }, expect: f.expect })));
      results.forEach((r, i) => {
        assert.ok(r.ok, `${base}: file ${i} read`);
        const f = files[i]!;
        if (i === 2) return assert.equal(r.same, false, `${base}: the rewritten file is not the one stat saw`);
        assert.equal(r.same, true, `${base}: file ${i} held still`);
        assert.deepEqual(r.piece.lengths, [f.data.length], `${base}: file ${i} length`);
        assert.equal(r.piece.digests[0], createHash('sha256').update(f.data).digest('hex'), `${base}: file ${i} digest`);
      });
      // the held bytes encode to the files' contents (all but the rewritten one)
      const kept = files.map((f, i) => ({ f, i })).filter(({ i }) => i !== 2);
      const { chunks, release } = await codec.encodeHeld(hold, kept.map(({ f, i }): [number, number, number] => [i, 0, f.data.length]), 3);
      chunks.forEach((c, k) => {
        const { f, i } = kept[k]!;
        const d = decodeChunk(c.data, c.flags, f.data.length, createHash('sha256').update(f.data).digest('hex'));
        assert.ok(d.ok && Buffer.from(d.data).equals(f.data), `${base}: file ${i} encoded`);
      });
      release();
    } finally {
      await codec.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
