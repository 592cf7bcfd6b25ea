import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cdcSplit, fixedSplit, isAllZero, DEFAULT_CDC } from './chunker.js';

test('cdc cuts respect min and max and cover the input', () => {
  const data = randomBytes(8 * 1024 * 1024);
  const { lengths, rest } = cdcSplit(data, DEFAULT_CDC, true);
  assert.equal(rest, 0);
  assert.equal(lengths.reduce((a, b) => a + b, 0), data.length);
  for (const l of lengths.slice(0, -1)) {
    assert.ok(l >= DEFAULT_CDC.min && l <= DEFAULT_CDC.max, `chunk of ${l}`);
  }
  const avg = data.length / lengths.length;
  assert.ok(avg > DEFAULT_CDC.avg / 2 && avg < DEFAULT_CDC.avg * 2, `average ${avg}`);
});

test('cdc resynchronises after an insertion: most chunks survive', () => {
  const data = randomBytes(4 * 1024 * 1024);
  const edited = Buffer.concat([data.subarray(0, 1_000_000), Buffer.from('inserted bytes'), data.subarray(1_000_000)]);
  const cuts = (b: Buffer): Set<string> => {
    const out = new Set<string>();
    let pos = 0;
    for (const l of cdcSplit(b, DEFAULT_CDC, true).lengths) {
      out.add(b.subarray(pos, pos + l).toString('base64').slice(0, 40) + l);
      pos += l;
    }
    return out;
  };
  const a = cuts(data);
  const b = cuts(edited);
  const shared = [...a].filter((x) => b.has(x)).length;
  assert.ok(shared >= a.size - 3, `only ${shared} of ${a.size} chunks shared`);
});

test('cdc waits for more data unless final', () => {
  const data = randomBytes(DEFAULT_CDC.max - 1);
  assert.deepEqual(cdcSplit(data, DEFAULT_CDC, false), { lengths: [], rest: data.length });
  assert.equal(cdcSplit(data, DEFAULT_CDC, true).rest, 0);
});

test('fixed split and zero detection', () => {
  assert.deepEqual(fixedSplit(40, 16), [16, 16, 8]);
  assert.deepEqual(fixedSplit(0, 16), []);
  assert.equal(isAllZero(new Uint8Array(100_000)), true);
  const b = new Uint8Array(100_000);
  b[99_999] = 1;
  assert.equal(isAllZero(b), false);
  assert.equal(isAllZero(b.subarray(3, 50)), true);
});
