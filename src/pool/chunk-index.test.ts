import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ChunkIndex } from './chunk-index.js';
import { encodeIndex, indexBody, type IndexEntry } from './index-file.js';

const entry = (i: number): IndexEntry => ({
  digest: randomBytes(32).toString('hex'),
  pack: randomBytes(16).toString('hex'),
  offset: i * 7,
  storedLength: i + 1,
  length: i + 2,
  flags: i % 2,
});

test('finds every entry among many, added one by one and from index file records', () => {
  const idx = new ChunkIndex();
  const a = Array.from({ length: 5000 }, (_, i) => entry(i));
  for (const e of a) idx.add(e);
  const b = Array.from({ length: 5000 }, (_, i) => entry(i + 5000));
  idx.addRecords(indexBody(encodeIndex(b)) as Buffer);
  assert.equal(idx.size, 10_000);
  for (const e of [...a, ...b]) {
    const { digest, ...loc } = e;
    assert.deepEqual(idx.get(digest), loc);
  }
  assert.equal(idx.has(randomBytes(32).toString('hex')), false);
  assert.equal([...idx.entries()].length, 10_000);
});

test('the first location of a digest wins', () => {
  const idx = new ChunkIndex();
  const e = entry(1);
  idx.add(e);
  idx.add({ ...e, offset: 999 });
  idx.addRecords(indexBody(encodeIndex([{ ...e, offset: 555 }])) as Buffer);
  assert.equal(idx.size, 1);
  assert.equal(idx.get(e.digest)?.offset, e.offset);
});

test('lengthOf gives the plaintext length of present chunks and undefined for absent or malformed digests', () => {
  const idx = new ChunkIndex();
  const a = Array.from({ length: 3000 }, (_, i) => entry(i));
  for (const e of a) idx.add(e);
  for (const e of a) assert.equal(idx.lengthOf(e.digest), e.length);
  assert.equal(idx.lengthOf(randomBytes(32).toString('hex')), undefined);
  const d = (a[0] as IndexEntry).digest;
  assert.equal(idx.lengthOf(d.slice(0, 62)), undefined);
  assert.equal(idx.lengthOf(`${d.slice(0, 62)}zz`), undefined);
  assert.equal(idx.lengthOf(`${d}00`), undefined);
});

test('records after a duplicate or a skipped one in the same file keep their own locations', () => {
  const idx = new ChunkIndex();
  const first = entry(0);
  idx.add(first);
  const body = Array.from({ length: 2000 }, (_, i) => entry(i + 1));
  // A digest already indexed, one repeated within the file, one the caller refuses.
  body.splice(10, 0, { ...first, offset: 4242 });
  body.splice(500, 0, { ...(body[400] as IndexEntry), offset: 31337 });
  const refused = body[900] as IndexEntry;
  idx.addRecords(indexBody(encodeIndex(body)) as Buffer, (d) => d.toString('hex') === refused.digest);
  assert.equal(idx.size, 1 + 2000 - 1);
  assert.equal(idx.get(first.digest)?.offset, first.offset);
  assert.equal(idx.has(refused.digest), false);
  for (const e of body) {
    if (e === refused || e.offset === 4242 || e.offset === 31337) continue;
    const { digest, ...loc } = e;
    assert.deepEqual(idx.get(digest), loc);
  }
  assert.equal([...idx.entries()].length, idx.size);
});

test('a newer file replaces a digest location, except where skip refuses it', () => {
  const idx = new ChunkIndex();
  const a = entry(1);
  const b = entry(2);
  idx.add(a);
  idx.add(b);
  const moved = { ...a, pack: randomBytes(16).toString('hex'), offset: 77 };
  const refused = { ...b, pack: randomBytes(16).toString('hex'), offset: 88 };
  const added = entry(3);
  idx.addRecords(indexBody(encodeIndex([moved, refused, added])) as Buffer, (_d, p) => p.toString('hex') === refused.pack, true);
  assert.equal(idx.size, 3);
  const { digest: _a, ...movedLoc } = moved;
  assert.deepEqual(idx.get(a.digest), movedLoc);
  assert.equal(idx.get(b.digest)?.offset, b.offset);
  assert.equal(idx.get(added.digest)?.offset, added.offset);
  assert.equal([...idx.entries()].length, 3);
});
