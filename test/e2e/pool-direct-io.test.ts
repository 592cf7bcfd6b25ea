/**
 * Packs are written with O_DIRECT where the pool's file system allows it and buffered where it
 * does not (tmpfs), and a directory backup reads its small files the same way: a source of
 * odd-sized files and a large file, backed up from and into each file system, restores byte for
 * byte, and `verify --full` finds every chunk sound.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { holdfast, scratch } from './cli-harness.js';

describe('pools and sources with and without direct I/O', () => {
  const s = scratch('holdfast-direct-io-');
  const shm = mkdtempSync('/dev/shm/holdfast-direct-io-');
  after(() => {
    s.cleanup();
    rmSync(shm, { recursive: true, force: true });
  });
  // Off the block size on purpose, so that files and chunks end inside blocks.
  const files: Record<string, Buffer> = { 'one-byte': randomBytes(1), odd: randomBytes(12_345), large: randomBytes(9 * 1024 * 1024 + 777) };
  for (let i = 0; i < 40; i++) files[`text-${i}`] = Buffer.from(`line ${i} `.repeat(300 + i * 37));

  for (const [label, base] of [['ext4 (direct)', s.dir], ['tmpfs (buffered)', shm]] as const) {
    it(`backs up and restores bit-exact on ${label}`, async () => {
      const src = join(base, 'src');
      mkdirSync(src);
      for (const [name, data] of Object.entries(files)) writeFileSync(join(src, name), data);
      const pool = join(base, 'pool');
      assert.equal((await holdfast(['pool', 'init', pool])).code, 0);
      const b = await holdfast(['backup', '--pool', pool, '--source', 'files', src]);
      assert.equal(b.code, 0, b.stderr);
      const to = join(base, 'restored');
      const r = await holdfast(['restore', '--pool', pool, '--source', 'files', '--to', to]);
      assert.equal(r.code, 0, r.stderr);
      for (const [name, data] of Object.entries(files)) assert.ok(readFileSync(join(to, name)).equals(data), `${label}: ${name}`);
      const v = await holdfast(['verify', '--pool', pool, '--full']);
      assert.equal(v.code, 0, v.stderr + v.stdout);
    });
  }
});
