/** The tree signature's byte format, whichever way an item's stat came (a listing's array or an lstat). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodecPool } from '../workers/codec-pool.js';
import { TreeSignature } from './tree-signature.js';
import { walkTree, type WalkItem } from './tree-walker.js';

const FIELDS = ['mode', 'uid', 'gid', 'size', 'ino', 'dev', 'nlink', 'rdev', 'mtimeNs', 'ctimeNs'] as const;

/** The signature computed the plain way: settings, then per item path NUL, ten int64s, xattrs JSON, newline. */
function expected(settings: object, items: WalkItem[]): string {
  const h = createHash('sha256').update(JSON.stringify(settings)).update('\n');
  for (const it of items) {
    const f = Buffer.alloc(80);
    FIELDS.forEach((k, i) => f.writeBigInt64LE(it.st[k], i * 8));
    h.update(it.rel).update('\0').update(f).update(it.xattrs ? JSON.stringify(it.xattrs) : '').update('\n');
  }
  return h.digest('hex');
}

test('a signature hashes each item as path, ten stat fields and xattrs, from listing arrays and lstat alike', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hf-sig-'));
  const codec = new CodecPool();
  try {
    mkdirSync(join(root, 'd'));
    for (let i = 0; i < 3000; i++) writeFileSync(join(root, 'd', `f-é-${i}`), String(i)); // past one 256 KiB batch
    const items: WalkItem[] = [];
    for await (const it of walkTree(root, { exclude: new Set(), warnings: [], codec })) items.push(it);
    // A huge xattr value goes around the batch buffer; a second item after it comes back to it.
    items.push({ ...(items[1] as WalkItem), rel: 'big', xattrs: { 'user.big': 'x'.repeat(400_000) } });
    items.push({ ...(items[2] as WalkItem), rel: 'after' });
    const settings = { v: 2, root };
    const fromWalk = new TreeSignature(settings);
    for (const it of items) fromWalk.add(it);
    const fromLstat = new TreeSignature(settings);
    for (const it of items) fromLstat.add({ ...it, st: lstatSync(it.abs, { bigint: true }) });
    const want = expected(settings, items);
    assert.equal(fromWalk.digest(), want);
    assert.equal(fromLstat.digest(), want);
  } finally {
    await codec.close();
    rmSync(root, { recursive: true, force: true });
  }
});
