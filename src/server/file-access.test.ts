import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canList, canRead, canSearch, decodeAcl } from './file-access.js';

/** A kernel ACL xattr value from [tag, perm, id] triples. */
function acl(entries: Array<[number, number, number]>): string {
  const buf = Buffer.alloc(4 + 8 * entries.length);
  buf.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    buf.writeUInt16LE(tag, 4 + 8 * i);
    buf.writeUInt16LE(perm, 6 + 8 * i);
    buf.writeUInt32LE(id, 8 + 8 * i);
  });
  return buf.toString('base64');
}
const U = 0xffffffff;
const alice = { uid: 1000, gids: [1000, 100] };
const bob = { uid: 1001, gids: [1001] };
const carol = { uid: 1002, gids: [1002, 200] };

test('mode bits: owner, group, other', () => {
  assert.equal(canRead({ mode: 0o600, uid: 1000, gid: 1000 }, alice), true);
  assert.equal(canRead({ mode: 0o600, uid: 1000, gid: 1000 }, bob), false);
  assert.equal(canRead({ mode: 0o640, uid: 1001, gid: 100 }, alice), true);
  assert.equal(canRead({ mode: 0o604, uid: 1000, gid: 100 }, { uid: 1003, gids: [100] }), false, 'the group class applies, not other');
  assert.equal(canRead({ mode: 0o044, uid: 1000, gid: 1000 }, alice), false, 'the owner class applies even when others may read');
  assert.equal(canSearch({ mode: 0o711, uid: 0, gid: 0 }, bob), true);
  assert.equal(canList({ mode: 0o711, uid: 0, gid: 0 }, bob), false);
});

test('POSIX ACL: named user and group entries, the mask, and other', () => {
  const a = acl([[0x01, 6, U], [0x02, 4, 1001], [0x04, 0, U], [0x08, 4, 200], [0x10, 4, U], [0x20, 0, U]]);
  const e = { mode: 0o640, uid: 1000, gid: 1000, acl: a };
  assert.equal(canRead(e, bob), true, 'named user');
  assert.equal(canRead(e, carol), true, 'named group');
  assert.equal(canRead(e, { uid: 1005, gids: [1005] }), false, 'other');
  const masked = acl([[0x01, 6, U], [0x02, 6, 1001], [0x04, 0, U], [0x10, 0, U], [0x20, 4, U]]);
  assert.equal(canRead({ mode: 0o604, uid: 1000, gid: 1000, acl: masked }, bob), false, 'the mask limits a named user, and other does not apply');
  assert.equal(canRead({ mode: 0o600, uid: 1000, gid: 1000, acl: 'garbage' }, alice), false, 'a malformed ACL grants nothing');
  assert.deepEqual(decodeAcl(acl([[0x20, 5, U]])), [{ tag: 0x20, perm: 5, id: U }]);
});
