/**
 * Writes capped at a size (a database copy's `writeSize`): the codec workers split every write
 * into pieces no larger, at odd sizes too, and the file still holds exactly the chunks' bytes,
 * for a batch of a large file (writeAt) and for whole small files (writeFiles).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodecPool } from '../workers/codec-pool.js';
import { logFrames } from './remote/log-shipper.js';

test('capped writes land byte for byte, in a large file and in small ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-writesize-'));
  const codec = new CodecPool(2);
  try {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const frames = await logFrames(codec, data);
    let offset = 0;
    const pieces = frames.map((f) => {
      const p = { digest: f.digest, length: f.length, flags: f.flags, data: f.data, offset };
      offset += f.length;
      return p;
    });
    for (const maxWrite of [4096 + 3, 64 * 1024]) {
      const path = join(dir, `large-${maxWrite}`);
      const fd = openSync(path, 'w');
      const r = await codec.writeAt({ fd, pieces: pieces.map((p) => ({ ...p, data: new Uint8Array(p.data) })), maxWrite });
      closeSync(fd);
      assert.deepEqual(r, { ok: true, warnings: [] });
      assert.ok(readFileSync(path).equals(data), `writeAt with maxWrite ${maxWrite}`);
    }
    const small = join(dir, 'small');
    const meta = { type: 'file' as const, path: 'small', mode: 0o640, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mtimeNs: '0', atimeNs: '0', xattrs: {} };
    const [w] = await codec.writeFiles([{ path: small, size: data.length, pieces: pieces.map((p) => ({ ...p, data: new Uint8Array(p.data) })), meta, maxWrite: 10_000 }]);
    assert.equal(w?.ok, true, JSON.stringify(w));
    assert.ok(readFileSync(small).equals(data), 'writeFiles with maxWrite');
  } finally {
    await codec.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
