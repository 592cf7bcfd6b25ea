import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChunkRef } from '../../core/manifest.js';
import { forgetKeptSlots, loadSlots, saveSlots } from './slot-cache.js';

test('the slot cache gives back exactly what was saved, and only for the same point and manifest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-slots-'));
  try {
    const file = join(dir, 'src.qcow2-bitmap.slots');
    const slots: Array<ChunkRef | null> = [['ab'.repeat(32), 16384], null, ['0f'.repeat(32), 16384], ['12'.repeat(32), 100]];
    const header = { pointId: 'p1', manifest: ['cd'.repeat(32)], size: 3 * 16384 + 100, chunk: 16384 };
    await saveSlots(file, header, slots);
    // From memory: a copy, which the next sync may change freely.
    const mem = await loadSlots(file, header);
    assert.deepEqual(mem, slots);
    if (mem) mem[1] = ['99'.repeat(32), 16384];
    assert.deepEqual(await loadSlots(file, header), slots);
    assert.equal(await loadSlots(file, { ...header, pointId: 'p2' }), undefined);
    // From the file, as after a restart.
    forgetKeptSlots();
    assert.deepEqual(await loadSlots(file, header), slots);
    assert.equal(await loadSlots(file, { ...header, pointId: 'p2' }), undefined);
    assert.equal(await loadSlots(file, { ...header, manifest: ['ee'.repeat(32)] }), undefined);
    assert.equal(await loadSlots(file, { ...header, size: header.size + 1 }), undefined);
    // A flipped byte in the slots fails the checksum.
    const b = readFileSync(file);
    b.writeUInt8(b.readUInt8(b.length - 40) ^ 1, b.length - 40);
    writeFileSync(file, b);
    assert.equal(await loadSlots(file, header), undefined);
    assert.equal(await loadSlots(join(dir, 'missing'), header), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
