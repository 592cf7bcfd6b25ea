import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeIndex, encodeIndex, indexFileOf, IndexRecords, type IndexEntry } from './index-file.js';
import { encodeTrailer, parseTail, parseTrailer, TAIL_BYTES, trailerOf } from './pack-format.js';

const entries: IndexEntry[] = Array.from({ length: 5 }, (_, i) => ({
  digest: randomBytes(32).toString('hex'),
  pack: randomBytes(16).toString('hex'),
  offset: 8 + i * 100,
  storedLength: 100,
  length: 300,
  flags: i % 2,
}));

test('index files round-trip and detect damage', () => {
  const buf = encodeIndex(entries);
  assert.deepEqual(decodeIndex(buf), entries);
  const bad = Buffer.from(buf);
  bad.writeUInt8(bad.readUInt8(20) ^ 1, 20);
  assert.equal(decodeIndex(bad), 'index checksum mismatch');
  assert.equal(decodeIndex(buf.subarray(0, buf.length - 5)), 'index file has a partial entry');
});

test('pack trailers round-trip and detect damage', () => {
  const t = encodeTrailer(entries);
  const tail = parseTail(t.subarray(t.length - TAIL_BYTES));
  assert.ok(typeof tail !== 'string');
  const parsed = parseTrailer(t.subarray(0, tail.trailerBytes), tail.hash);
  assert.deepEqual(parsed, entries.map(({ pack: _pack, ...e }) => e));
  const bad = Buffer.from(t);
  bad.writeUInt8(bad.readUInt8(3) ^ 1, 3);
  assert.equal(parseTrailer(bad.subarray(0, tail.trailerBytes), tail.hash), 'pack trailer checksum mismatch');
  assert.match(parseTail(Buffer.alloc(TAIL_BYTES)) as string, /torn/);
});

test('records built chunk by chunk, the pack id set last, make the same trailer and index file', () => {
  const pack = randomBytes(16).toString('hex');
  const r = new IndexRecords(2); // grows past its first room
  for (const e of entries) r.push(e.digest, e.offset, e.storedLength, e.length, e.flags);
  const t = trailerOf(r.body());
  const tail = parseTail(t.subarray(t.length - TAIL_BYTES));
  assert.ok(typeof tail !== 'string');
  assert.deepEqual(parseTrailer(t.subarray(0, tail.trailerBytes), tail.hash), entries.map(({ pack: _pack, ...e }) => e));
  r.setPack(pack);
  assert.deepEqual(decodeIndex(indexFileOf(r.body())), entries.map((e) => ({ ...e, pack })));
  assert.throws(() => r.push('not hex', 0, 1, 1, 0), /not a digest/);
});
