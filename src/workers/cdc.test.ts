/**
 * The native content-defined cutter against core's JavaScript reference: cut points are part of
 * the storage format, so any difference (one byte, one chunk) fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cdcNext as jsNext, cdcSplit as jsSplit, DEFAULT_CDC, MANIFEST_CDC, type CdcParams } from '../core/chunker.js';
import { hasCdcCuts } from '../native/index.js';
import { cdcNext, cdcSplit } from './cdc.js';

const PARAMS: Array<[string, CdcParams]> = [
  ['default', DEFAULT_CDC],
  ['manifest', MANIFEST_CDC],
  ['small', { min: 64, avg: 256, max: 1024 }],
  ['odd avg', { min: 100, avg: 300, max: 777 }],
  ['avg below min', { min: 500, avg: 128, max: 2000 }],
  ['max below avg', { min: 32, avg: 4096, max: 1000 }],
  ['max below min', { min: 300, avg: 256, max: 200 }],
  ['min 0, avg 1', { min: 0, avg: 1, max: 7 }],
  ['avg 2', { min: 1, avg: 2, max: 16 }],
];

/** Deterministic bytes (xorshift32), so a failure reproduces. */
function pseudoRandom(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

function textLike(n: number): Buffer {
  const words = ['backup', 'chunk', 'the', 'pool', 'restore', 'manifest', 'of', 'agent', '\n', 'digest', '{"path":"/etc/x"}', '  '];
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < n; i++) {
    const w = words[(i * 7919 + (i >> 3)) % words.length] as string;
    parts.push(w, i % 11 === 0 ? '\n' : ' ');
    size += w.length + 1;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

function inputs(): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([7])],
    ['zeros', Buffer.alloc(3 * 1024 * 1024 + 17)],
    ['ones', Buffer.alloc(700_001, 0xff)],
    ['repeated 3 bytes', Buffer.alloc(1_500_000, Buffer.from([1, 2, 3]))],
    ['repeated 4 KiB', Buffer.concat(Array.from({ length: 300 }, () => pseudoRandom(4096, 5)))],
    ['text', textLike(2_000_000)],
    ['pseudo-random 5 MiB', pseudoRandom(5 * 1024 * 1024 + 3, 42)],
  ];
  for (let i = 0; i < 24; i++) out.push([`random #${i}`, randomBytes(Math.floor(Math.random() * 1.5 * 1024 * 1024))]);
  for (const n of [15, 16, 17, 100, 255, 300, 500, 1023, 1024, 1025, 16 * 1024, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 256 * 1024 + 1, 1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1]) {
    out.push([`random of ${n}`, randomBytes(n)]);
  }
  return out;
}

test('the addon has the native cutter (else the comparisons below would test the JS against itself)', () => {
  assert.equal(hasCdcCuts, true);
});

test('native cdcSplit gives exactly the JS cut lengths', () => {
  const data = inputs();
  for (const [pname, p] of PARAMS) {
    for (const [dname, buf] of data) {
      for (const final of [true, false]) {
        // Keep the slow tiny-chunk cases to the smaller inputs.
        if (p.max < 100 && buf.length > 300_000) continue;
        assert.deepEqual(cdcSplit(buf, p, final), jsSplit(buf, p, final), `${pname} / ${dname} / final ${final}`);
      }
    }
  }
});

test('native cdcNext gives the JS length at any start and end', () => {
  const buf = randomBytes(3 * 1024 * 1024);
  const text = textLike(600_000);
  for (const [pname, p] of PARAMS) {
    for (const b of [buf, text]) {
      for (let k = 0; k < 40; k++) {
        const start = Math.floor(Math.random() * b.length);
        const end = start + Math.floor(Math.random() * (b.length - start + 1));
        for (const final of [true, false]) {
          assert.equal(cdcNext(b, start, end, p, final), jsNext(b, start, end, p, final), `${pname} [${start}, ${end}) final ${final}`);
        }
      }
      for (const final of [true, false]) {
        assert.equal(cdcNext(b, 5, 5, p, final), jsNext(b, 5, 5, p, final));
        assert.equal(cdcNext(b, b.length - 3, b.length, p, final), jsNext(b, b.length - 3, b.length, p, final));
      }
    }
  }
});

test('splitting continues past a full batch of lengths (tens of thousands of chunks)', () => {
  const p = { min: 16, avg: 64, max: 256 };
  const buf = randomBytes(4 * 1024 * 1024);
  const got = cdcSplit(buf, p, false);
  assert.ok(got.lengths.length > 10_000);
  assert.deepEqual(got, jsSplit(buf, p, false));
});

test('cut points are pinned: these bytes cut where they always have (a storage format)', () => {
  const buf = pseudoRandom(4 * 1024 * 1024, 0x12345678);
  const want = jsSplit(buf, DEFAULT_CDC, true);
  assert.deepEqual(cdcSplit(buf, DEFAULT_CDC, true), want);
  assert.deepEqual(want.lengths, PINNED);
});

const PINNED = [294697, 282274, 98436, 323827, 354149, 322510, 267770, 410854, 307366, 267742, 300632, 264876, 351103, 265690, 82378];
