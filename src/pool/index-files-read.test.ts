import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { forEachIndexFile } from './index-files-read.js';

test('index files come in name order, whole, even when larger than stated or gone', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-idx-'));
  try {
    // More files than are read ahead, so buffers go round; sizes around the buffers' minimum.
    const names = Array.from({ length: 40 }, (_, i) => `${String(i).padStart(3, '0')}.idx`);
    const content = new Map(names.map((n, i) => [n, randomBytes(i % 3 === 0 ? 200_000 : 1000 + i)]));
    for (const [n, b] of content) await writeFile(join(dir, n), b);
    const sizes = names.map((n) => (content.get(n) as Buffer).length);
    sizes[5] = 10; // grew since its stat: still read whole
    sizes[6] = 0; // unknown
    const gone = 'gone.idx'; // listed, then deleted (by gc) before it was read
    const listed = [...names.slice(0, 20), gone, ...names.slice(20)];
    const seen: Array<[string, string | undefined]> = [];
    await forEachIndexFile(dir, listed, [...sizes.slice(0, 20), 100, ...sizes.slice(20)], (name, bytes) => {
      seen.push([name, bytes?.toString('hex')]);
    });
    assert.deepEqual(
      seen.map(([n]) => n),
      listed,
    );
    for (const [name, hex] of seen) {
      if (name === gone) assert.equal(hex, undefined);
      else assert.equal(hex, (content.get(name) as Buffer).toString('hex'), name);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
