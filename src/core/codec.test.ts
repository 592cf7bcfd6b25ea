import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeChunk, encodeChunk, FLAG_ZSTD, splitAndHash } from './codec.js';
import { digestOf } from './digest.js';

test('compressible chunks are compressed, random ones stored raw, and both decode', () => {
  const text = Buffer.from('holdfast '.repeat(4000));
  const rnd = randomBytes(32 * 1024);
  const t = encodeChunk(text, 3);
  const r = encodeChunk(rnd, 3);
  assert.equal(t.flags & FLAG_ZSTD, FLAG_ZSTD);
  assert.ok(t.data.length < text.length / 10);
  assert.equal(r.flags, 0);
  for (const [plain, enc] of [[text, t], [rnd, r]] as const) {
    const d = decodeChunk(enc.data, enc.flags, plain.length, digestOf(plain));
    assert.ok(d.ok);
    assert.ok(Buffer.from(d.data).equals(plain));
  }
});

test('a damaged chunk never decodes as data', () => {
  const text = Buffer.from('recovery point '.repeat(3000));
  const enc = encodeChunk(text, 3);
  const bad = Buffer.from(enc.data);
  bad.writeUInt8((bad.readUInt8(Math.floor(bad.length / 2)) ^ 0xff), Math.floor(bad.length / 2));
  const d = decodeChunk(bad, enc.flags, text.length, digestOf(text));
  assert.equal(d.ok, false);
  const raw = randomBytes(1000);
  const flipped = Buffer.from(raw);
  flipped.writeUInt8(flipped.readUInt8(10) ^ 1, 10);
  const d2 = decodeChunk(flipped, 0, raw.length, digestOf(raw));
  assert.equal(d2.ok, false);
  assert.match((d2 as { reason: string }).reason, /digest mismatch/);
});

test('splitAndHash names chunks by the digest of their plaintext and skips zero chunks', () => {
  const buf = Buffer.concat([randomBytes(16384), Buffer.alloc(16384), randomBytes(100)]);
  const h = splitAndHash(buf, { kind: 'fixed', size: 16384 }, true);
  assert.deepEqual(h.lengths, [16384, 16384, 100]);
  assert.deepEqual(h.zero, [false, true, false]);
  assert.equal(h.digests[0], digestOf(buf.subarray(0, 16384)));
  assert.equal(h.digests[1], '');
  assert.equal(h.used, buf.length);
});

test('the incompressibility probe skips random data only', async () => {
  const { looksIncompressible } = await import('./codec.js');
  assert.equal(looksIncompressible(randomBytes(16384)), true);
  assert.equal(looksIncompressible(Buffer.from('a fairly ordinary line of text, repeated. '.repeat(400))), false);
  const half = Buffer.concat([randomBytes(8192), Buffer.alloc(8192)]);
  assert.equal(looksIncompressible(half), false);
  assert.equal(encodeChunk(half, 3).flags, FLAG_ZSTD);
  assert.equal(looksIncompressible(randomBytes(1000)), false); // too small to judge: try zstd
});
