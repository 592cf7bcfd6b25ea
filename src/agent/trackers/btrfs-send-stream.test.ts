/**
 * The send-stream parser on streams built here (byte for byte as btrfs writes them), and on a
 * real `btrfs send` when a btrfs is mounted at HOLDFAST_BTRFS_MOUNT (the e2e tests cover the
 * real thing otherwise): created paths, written ranges carried through later renames, and old
 * paths found back through renamed directories.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSendStream, sendChanges } from './btrfs-send-stream.js';

function tlv(type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16LE(type, 0);
  h.writeUInt16LE(value.length, 2);
  return Buffer.concat([h, value]);
}
const path = (p: string): Buffer => tlv(15, Buffer.from(p));
const pathTo = (p: string): Buffer => tlv(16, Buffer.from(p));
function u64(type: number, n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return tlv(type, b);
}
function cmd(c: number, ...attrs: Buffer[]): Buffer {
  const payload = Buffer.concat(attrs);
  const h = Buffer.alloc(10);
  h.writeUInt32LE(payload.length, 0);
  h.writeUInt16LE(c, 4);
  return Buffer.concat([h, payload]); // crc is not checked: the stream comes from a local pipe
}
function stream(...cmds: Buffer[]): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32LE(1);
  return Buffer.concat([Buffer.from('btrfs-stream\0', 'latin1'), v, ...cmds, cmd(21)]);
}

test('commands and attributes are parsed; a bad magic or a cut command is refused', () => {
  const s = stream(cmd(3, path('a')), cmd(22, path('a'), u64(18, 4096), u64(4, 8192)));
  const cmds = [...parseSendStream(s)];
  assert.deepEqual(cmds.map((c) => c.cmd), [3, 22, 21]);
  assert.equal(cmds[1]?.attrs.get(15)?.toString(), 'a');
  assert.throws(() => [...parseSendStream(Buffer.from('not a stream at all'))], /magic/);
  assert.throws(() => [...parseSendStream(s.subarray(0, s.length - 14))], /past the end|cut|inside/);
});

test('created files, written ranges and truncations land on the final paths', () => {
  const c = sendChanges(
    stream(
      cmd(3, path('o261-8-0')),
      cmd(22, path('o261-8-0'), u64(18, 0), u64(4, 4)),
      cmd(9, path('o261-8-0'), pathTo('n')),
      cmd(22, path('d/big'), u64(18, 409600), u64(4, 12288)),
      cmd(9, path('d'), pathTo('x/d2')),
      cmd(17, path('x/d2/small'), u64(4, 10)),
      cmd(10, path('hl'), tlv(17, Buffer.from('n'))),
    ),
  );
  // A link is another name for an existing inode: it shares what happened to its target.
  assert.deepEqual([...c.created].sort(), ['hl', 'n']);
  assert.deepEqual(c.written.get('hl'), [{ offset: 0, length: 4 }]);
  assert.deepEqual(c.written.get('x/d2/big'), [{ offset: 409600, length: 12288 }]);
  assert.deepEqual(c.written.get('n'), [{ offset: 0, length: 4 }]);
  assert.equal(c.truncated.get('x/d2/small'), 10);
  assert.equal(c.oldPath('x/d2/big'), 'd/big');
  assert.equal(c.oldPath('x/d2'), 'd');
  assert.equal(c.oldPath('untouched/file'), 'untouched/file');
});

test('a file renamed as btrfs sends it (link to the new name, unlink the old) keeps its old path', () => {
  const c = sendChanges(stream(cmd(10, path('x/renamed'), tlv(17, Buffer.from('x/d2/big'))), cmd(11, path('x/d2/big')), cmd(9, path('x'), pathTo('y'))));
  assert.equal(c.created.size, 0);
  assert.equal(c.oldPath('y/renamed'), 'x/d2/big');
  assert.equal(c.written.size, 0);
});

test('chains of renames (through orphan names, swaps) are followed both ways', () => {
  // a and b swap names through an orphan, as btrfs send does it.
  const c = sendChanges(stream(cmd(9, path('a'), pathTo('o300-5-0')), cmd(9, path('b'), pathTo('a')), cmd(9, path('o300-5-0'), pathTo('b')), cmd(22, path('b'), u64(18, 0), u64(4, 1))));
  assert.equal(c.oldPath('a'), 'b');
  assert.equal(c.oldPath('b'), 'a');
  assert.deepEqual(c.written.get('b'), [{ offset: 0, length: 1 }]);
  assert.equal(c.created.size, 0);
});

test("a clone of a file's own bytes at the same offset changes nothing; any other clone is a write", () => {
  const uuid = (type: number, b: number): Buffer => tlv(type, Buffer.alloc(16, b));
  const clone = (p: string, off: number, len: number, from: string, fromOff: number, root: number): Buffer =>
    cmd(16, path(p), u64(18, off), u64(24, len), uuid(20, root), u64(21, 7), tlv(22, Buffer.from(from)), u64(23, fromOff));
  const SELF = 0xaa;
  const PARENT = 0xbb;
  const c = sendChanges(
    stream(
      cmd(2, path('s1'), uuid(1, SELF), u64(2, 8), uuid(20, PARENT), u64(21, 7)),
      // As btrfs sends a 4 KiB write into a 4 MiB extent: the extent's other parts are cloned from the parent's file.
      clone('f', 1048576, 1347584, 'f', 1048576, PARENT),
      cmd(22, path('f'), u64(18, 2396160), u64(4, 8192)),
      clone('f', 2404352, 2838528, 'f', 2404352, PARENT),
      clone('s', 0, 4096, 's', 0, SELF),
      clone('g', 0, 4096, 'f', 0, SELF),
      clone('h', 0, 4096, 'h', 4096, PARENT),
      // Renamed after the clone: 'old' in the parent is 'new' now, so its own bytes.
      clone('old', 0, 4096, 'old', 0, PARENT),
      cmd(9, path('old'), pathTo('new')),
      // The parent's 'x' is another file than this stream's 'x' (renamed from 'y').
      cmd(9, path('y'), pathTo('x')),
      clone('x', 0, 4096, 'x', 0, PARENT),
    ),
  );
  assert.deepEqual(c.written.get('f'), [{ offset: 2396160, length: 8192 }]);
  assert.equal(c.written.get('s'), undefined);
  assert.equal(c.written.get('new'), undefined);
  assert.deepEqual(c.written.get('g'), [{ offset: 0, length: 4096 }]);
  assert.deepEqual(c.written.get('h'), [{ offset: 0, length: 4096 }]);
  assert.deepEqual(c.written.get('x'), [{ offset: 0, length: 4096 }]);
});
