import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, readSync, rmSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readQcow2Header } from './qcow2-header.js';

/** What `qemu-img info` says, in the reader's terms. */
function qemuSays(path: string): { virtualSize: number; bitmaps: Array<{ name: string; enabled: boolean; broken: boolean }> } {
  const i = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', path], { encoding: 'utf8' })) as {
    'virtual-size': number;
    'format-specific'?: { data?: { bitmaps?: Array<{ name: string; flags: string[] }> } };
  };
  const list = i['format-specific']?.data?.bitmaps ?? [];
  return { virtualSize: i['virtual-size'], bitmaps: list.map((b) => ({ name: b.name, enabled: b.flags.includes('auto'), broken: b.flags.includes('in-use') })) };
}

test("the qcow2 header reader agrees with qemu-img info: size, bitmaps, their flags; raw files are not its business", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-qcow2h-'));
  try {
    const img = join(dir, 'disk.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '3G']);
    assert.deepEqual(await readQcow2Header(img), qemuSays(img));
    const bitmap = (...args: string[]): void => void execFileSync('qemu-img', ['bitmap', ...args.slice(0, -1), '-f', 'qcow2', img, args[args.length - 1] as string]);
    bitmap('--add', 'holdfast.src.1');
    bitmap('--add', '--disable', 'holdfast.src.2');
    bitmap('--add', '--granularity', '131072', 'a-much-longer-bitmap-name-that-needs-padding');
    const got = await readQcow2Header(img);
    assert.equal(got?.bitmaps.length, 3);
    assert.deepEqual(got, qemuSays(img));
    // A bitmap QEMU left in use (not saved cleanly): flag bit 0 of its directory entry.
    const fd = openSync(img, 'r+');
    const head = Buffer.alloc(65536);
    readSync(fd, head, 0, head.length, 0);
    let at = head.readUInt32BE(100);
    while (head.readUInt32BE(at) !== 0x23852875) at += 8 + Math.ceil(head.readUInt32BE(at + 4) / 8) * 8;
    const dirOffset = Number(head.readBigUInt64BE(at + 24));
    const flags = Buffer.alloc(4);
    readSync(fd, flags, 0, 4, dirOffset + 12);
    flags.writeUInt32BE(flags.readUInt32BE(0) | 1);
    writeSync(fd, flags, 0, 4, dirOffset + 12);
    closeSync(fd);
    const broken = await readQcow2Header(img);
    assert.equal(broken?.bitmaps[0]?.broken, true);
    assert.deepEqual(broken, qemuSays(img));
    const raw = join(dir, 'disk.raw');
    writeFileSync(raw, Buffer.alloc(1 << 20));
    assert.equal(await readQcow2Header(raw), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
