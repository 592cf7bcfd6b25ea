/**
 * End to end: a restore run as root recreates everything a directory tree carries besides bytes —
 * owners, modes (setuid, setgid, sticky), nanosecond times, user xattrs (binary too), POSIX ACLs,
 * symlinks (with their own owner and times, dangling ones too), hard links, sparse holes, empty
 * files and directories, fifos, devices, deep paths and odd names — for the whole tree into a new
 * target, for one path (--path) into another target, and with --overwrite over a changed copy.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, linkSync, writeFileSync, writeSync, chmodSync, lchownSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { diffSnapshots, holdfast, scratch, snapshotTree } from './cli-harness.js';
import { backupPoint, initPool, run, setMtimeNs, writeRandomFile } from './pool-fixtures.js';
import { getXattr, mknod, setXattr } from '../../src/native/index.js';

const MiB = 1024 * 1024;
const SPARSE_SIZE = 64 * MiB;
/** data written into the sparse file: [offset, length] */
const SPARSE_DATA: Array<[number, number]> = [
  [0, 64 * 1024],
  [20 * MiB + 12345, 100 * 1024],
  [SPARSE_SIZE - 4096, 4096],
];
const TOUCHED = '2021-03-04 05:06:07.123456789';
const TOUCHED_NS = BigInt(Date.UTC(2021, 2, 4, 5, 6, 7)) * 1_000_000n + 123_456_789n;
const BINARY_XATTR = Buffer.from([0, 255, 1, 254, 0, 0, 10, 13, 0x80, 0xc3, 0x28, ...Array.from({ length: 200 }, (_, i) => i)]);
const DEEP = Array.from({ length: 40 }, (_, i) => `level-${String(i).padStart(2, '0')}`).join('/');
const NEWLINE_NAME = 'new\nline';
const UNICODE_NAME = 'ünïcødé-名前-😀.txt';

/** `getfacl -p` of a path, without the "# file:" line (which names the path). */
function acl(path: string): string {
  return run('getfacl', ['-p', path])
    .split('\n')
    .filter((l) => !l.startsWith('# file:'))
    .join('\n');
}

function blocks(path: string): number {
  return Number(run('stat', ['-c', '%b', path]).trim());
}

function duKiB(path: string): number {
  return Number(run('du', ['-k', path]).split('\t')[0]);
}

/** Builds the source tree; times are set last, so directory mtimes are final. */
function buildSource(src: string, outside: string): void {
  mkdirSync(src);
  const f = (rel: string, content: string | Buffer = `content of ${rel}\n`, mode = 0o644): string => {
    const p = join(src, rel);
    writeFileSync(p, content);
    chmodSync(p, mode);
    return p;
  };
  const d = (rel: string, mode = 0o755): string => {
    const p = join(src, rel);
    mkdirSync(p, { recursive: true });
    chmodSync(p, mode);
    return p;
  };

  // Owners and special modes.
  chownSync(f('owned-1234', 'owned by 1234:5678\n', 0o640), 1234, 5678);
  chownSync(f('owned-nobody', 'owned by nobody\n', 0o600), 65534, 65534);
  chownSync(f('setuid', '#!/bin/sh\necho setuid\n', 0o755), 1234, 5678);
  chmodSync(join(src, 'setuid'), 0o4755); // after chown, which clears setuid
  chownSync(d('setgid-dir'), 0, 5678);
  chmodSync(join(src, 'setgid-dir'), 0o2750);
  f('setgid-dir/inside');
  d('sticky-dir', 0o1777);
  chownSync(f('sticky-dir/tmpfile', 'x', 0o666), 1234, 1234);
  f('setgid-file', 'sgid\n', 0o2755);

  // Times with nanoseconds, set with touch (see the end for everything else).
  f('nanotime', 'touched\n');

  // Extended attributes.
  const x = f('xattrs', 'has xattrs\n');
  setXattr(x, 'user.text', Buffer.from('hello, world'));
  setXattr(x, 'user.binary', BINARY_XATTR);
  setXattr(x, 'user.empty', Buffer.alloc(0));
  setXattr(d('xattr-dir'), 'user.on-a-dir', Buffer.from('dir value'));

  // POSIX ACLs: access ACL on a file; access + default ACL on a directory.
  run('setfacl', ['-m', 'u:1234:rw-,g:5678:r--', f('acl-file', 'acl\n', 0o640)]);
  const ad = d('acl-dir', 0o750);
  run('setfacl', ['-m', 'u:1234:rwx,g:5678:r-x', ad]);
  run('setfacl', ['-d', '-m', 'u:1234:rwx,g:5678:r-x,o::---', ad]);
  f('acl-dir/inherited', 'inherits the default ACL\n', 0o640);
  d('acl-dir/subdir', 0o750); // inherits access and default ACL
  run('setfacl', ['-b', f('acl-dir/no-acl', 'ACL removed\n', 0o600)]);

  // Symlinks: relative, with its own owner and mtime; dangling; absolute (never followed).
  d('links');
  symlinkSync('../owned-1234', join(src, 'links/symlink'));
  lchownSync(join(src, 'links/symlink'), 4321, 8765);
  symlinkSync('does/not/exist', join(src, 'links/dangling'));
  symlinkSync(join(outside, 'outside-file'), join(src, 'links/absolute'));

  // Hard links: a pair, and a triple spread over directories.
  d('hard/sub');
  linkSync(f('hard/pair-a', 'pair\n', 0o600), join(src, 'hard/pair-b'));
  chownSync(join(src, 'hard/pair-a'), 1234, 5678);
  const t1 = f('hard/triple-1', 'triple\n', 0o644);
  linkSync(t1, join(src, 'hard/sub/triple-2'));
  linkSync(t1, join(src, 'triple-3'));
  // A group whose first name (in walk order) lies outside hard/, for the --path restore.
  const first = f('aaa-first-link', 'linked into hard/\n');
  linkSync(first, join(src, 'hard/x1'));
  linkSync(first, join(src, 'hard/x2'));

  // A sparse file: 64 MiB with data in three places.
  const fd = openSync(join(src, 'sparse'), 'w', 0o644);
  for (const [off, len] of SPARSE_DATA) writeSync(fd, Buffer.alloc(len, `data at ${off};`), 0, len, off);
  closeSync(fd);
  run('truncate', ['-s', String(SPARSE_SIZE), join(src, 'sparse')]);

  // Empty things, special files, deep paths, odd names.
  f('empty-file', '');
  d('empty-dir');
  mknod(join(src, 'fifo'), 0o010000 | 0o640, 0); // S_IFIFO
  run('mknod', ['-m', '0666', join(src, 'null-dev'), 'c', '1', '3']);
  d(DEEP);
  f(`${DEEP}/leaf.txt`, 'deep down\n');
  f('name with spaces.txt', 'spaces\n');
  f(UNICODE_NAME, 'unicode\n');
  f(NEWLINE_NAME, 'newline in the name\n');
  d('dir with space');
  writeRandomFile(join(src, 'dir with space/file in dir'), 300 * 1024, 0o640);

  // The root directory has its own owner, mode and xattr.
  chownSync(src, 1234, 5678);
  chmodSync(src, 0o750);
  setXattr(src, 'user.root', Buffer.from('root of the tree'));

  // Times last, deepest first: every object gets its own nanosecond mtime.
  let ns = 1_600_000_000_000_000_001n;
  const walk = (abs: string): void => {
    if (lstatSync(abs).isDirectory()) for (const name of readdirSync(abs)) walk(join(abs, name));
    setMtimeNs(abs, ns);
    ns += 1_000_000_007n;
  };
  walk(src);
  run('touch', ['-d', TOUCHED, join(src, 'nanotime')], { TZ: 'UTC' });
}

describe('restore recreates metadata', () => {
  const s = scratch('holdfast-meta-');
  const src = join(s.dir, 'src');
  const pool = join(s.dir, 'pool');
  const outside = join(s.dir, 'outside');
  const full = join(s.dir, 'restored', 'full'); // neither exists before the restore
  let point = '';

  before(async () => {
    mkdirSync(outside);
    writeFileSync(join(outside, 'outside-file'), 'must never change\n');
    buildSource(src, outside);
    await initPool(pool);
    point = await backupPoint(pool, 'meta', src);
    const r = await holdfast(['restore', '--pool', pool, '--source', 'meta', '--point', point, '--to', full]);
    assert.equal(r.code, 0, r.stderr);
  });

  after(() => s.cleanup());

  it('restores the whole tree identically, root directory included', () => {
    const diff = diffSnapshots(snapshotTree(src, { skipRootMeta: false }), snapshotTree(full, { skipRootMeta: false }));
    assert.deepEqual(diff, []);
    const st = lstatSync(full, { bigint: true });
    assert.equal(st.mode & 0o7777n, 0o750n);
    assert.equal(st.uid, 1234n);
    assert.equal(st.gid, 5678n);
    assert.equal(st.mtimeNs, lstatSync(src, { bigint: true }).mtimeNs);
    assert.equal(getXattr(full, 'user.root').toString(), 'root of the tree');
  });

  it('restores owners other than root', () => {
    const a = lstatSync(join(full, 'owned-1234'));
    assert.deepEqual([a.uid, a.gid], [1234, 5678]);
    const b = lstatSync(join(full, 'owned-nobody'));
    assert.deepEqual([b.uid, b.gid], [65534, 65534]);
    const c = lstatSync(join(full, 'sticky-dir/tmpfile'));
    assert.deepEqual([c.uid, c.gid], [1234, 1234]);
  });

  it('restores setuid, setgid and sticky modes', () => {
    const mode = (rel: string): number => lstatSync(join(full, rel)).mode & 0o7777;
    assert.equal(mode('setuid'), 0o4755);
    assert.equal(lstatSync(join(full, 'setuid')).uid, 1234); // the owner did not cost the setuid bit
    assert.equal(mode('setgid-file'), 0o2755);
    assert.equal(mode('setgid-dir'), 0o2750);
    assert.equal(lstatSync(join(full, 'setgid-dir')).gid, 5678);
    assert.equal(mode('sticky-dir'), 0o1777);
    assert.equal(mode('owned-nobody'), 0o600);
  });

  it('restores mtimes to the nanosecond, on files, directories and symlinks', () => {
    assert.equal(lstatSync(join(full, 'nanotime'), { bigint: true }).mtimeNs, TOUCHED_NS);
    for (const rel of ['owned-1234', 'acl-dir', 'links', 'links/symlink', 'links/dangling', 'sparse', 'fifo', 'null-dev', DEEP, `${DEEP}/leaf.txt`, NEWLINE_NAME]) {
      const want = lstatSync(join(src, rel), { bigint: true }).mtimeNs;
      assert.equal(lstatSync(join(full, rel), { bigint: true }).mtimeNs, want, rel);
      assert.notEqual(want % 1_000_000_000n, 0n, `${rel}: the source time has nanoseconds`);
    }
  });

  it('restores user xattrs, binary and empty values included', () => {
    const x = join(full, 'xattrs');
    assert.equal(getXattr(x, 'user.text').toString(), 'hello, world');
    assert.deepEqual(getXattr(x, 'user.binary'), BINARY_XATTR);
    assert.equal(getXattr(x, 'user.empty').length, 0);
    assert.equal(getXattr(join(full, 'xattr-dir'), 'user.on-a-dir').toString(), 'dir value');
  });

  it('restores POSIX ACLs: access on files, access and default on directories', () => {
    for (const rel of ['acl-file', 'acl-dir', 'acl-dir/inherited', 'acl-dir/subdir', 'acl-dir/no-acl']) {
      assert.equal(acl(join(full, rel)), acl(join(src, rel)), rel);
    }
    assert.match(acl(join(full, 'acl-file')), /^user:1234:rw-$/m);
    assert.match(acl(join(full, 'acl-dir')), /^default:user:1234:rwx$/m);
    assert.match(acl(join(full, 'acl-dir/subdir')), /^default:group:5678:r-x$/m);
    assert.doesNotMatch(acl(join(full, 'acl-dir/no-acl')), /1234/);
  });

  it('restores symlinks with their own owner and mtime, dangling ones too, without following them', () => {
    const l = lstatSync(join(full, 'links/symlink'), { bigint: true });
    assert.ok(l.isSymbolicLink());
    assert.equal(readlinkSync(join(full, 'links/symlink')), '../owned-1234');
    assert.deepEqual([l.uid, l.gid], [4321n, 8765n]);
    assert.equal(l.mtimeNs, lstatSync(join(src, 'links/symlink'), { bigint: true }).mtimeNs);
    // The symlink's target kept its own owner: lchown, not chown.
    assert.equal(statSync(join(full, 'links/symlink')).uid, 1234);
    assert.ok(lstatSync(join(full, 'links/dangling')).isSymbolicLink());
    assert.equal(readlinkSync(join(full, 'links/dangling')), 'does/not/exist');
    assert.equal(existsSync(join(full, 'links/dangling')), false);
    assert.equal(readlinkSync(join(full, 'links/absolute')), join(outside, 'outside-file'));
    assert.equal(readFileSync(join(outside, 'outside-file'), 'utf8'), 'must never change\n');
  });

  it('restores hard links: the names of a pair and of a triple share one inode', () => {
    const ino = (rel: string): number => lstatSync(join(full, rel)).ino;
    assert.equal(ino('hard/pair-a'), ino('hard/pair-b'));
    assert.equal(lstatSync(join(full, 'hard/pair-a')).nlink, 2);
    assert.equal(ino('hard/triple-1'), ino('hard/sub/triple-2'));
    assert.equal(ino('hard/triple-1'), ino('triple-3'));
    assert.equal(lstatSync(join(full, 'triple-3')).nlink, 3);
    assert.deepEqual([lstatSync(join(full, 'hard/pair-b')).uid, lstatSync(join(full, 'hard/pair-b')).gid], [1234, 5678]);
    assert.notEqual(ino('hard/pair-a'), ino('hard/triple-1'));
  });

  it('restores a sparse file with the same bytes and its holes unallocated', () => {
    const p = join(full, 'sparse');
    assert.equal(statSync(p).size, SPARSE_SIZE);
    assert.deepEqual(readFileSync(p), readFileSync(join(src, 'sparse')));
    const dataBlocks = SPARSE_DATA.reduce((n, [, len]) => n + len, 0) / 512;
    assert.ok(blocks(p) < SPARSE_SIZE / 512 / 16, `restored file has ${blocks(p)} blocks of 512 bytes`);
    assert.ok(blocks(p) <= 2 * blocks(join(src, 'sparse')) + 64, `restored ${blocks(p)} blocks, source ${blocks(join(src, 'sparse'))}, data ${dataBlocks}`);
    assert.ok(duKiB(p) < 1024, `du says ${duKiB(p)} KiB`);
  });

  it('restores empty files and directories, fifos and character devices', () => {
    assert.equal(statSync(join(full, 'empty-file')).size, 0);
    assert.ok(statSync(join(full, 'empty-file')).isFile());
    assert.deepEqual(readdirSync(join(full, 'empty-dir')), []);
    assert.ok(lstatSync(join(full, 'fifo')).isFIFO());
    assert.equal(lstatSync(join(full, 'fifo')).mode & 0o7777, 0o640);
    const dev = lstatSync(join(full, 'null-dev'));
    assert.ok(dev.isCharacterDevice());
    assert.equal(dev.rdev, lstatSync(join(src, 'null-dev')).rdev);
    assert.equal(dev.rdev, (1 << 8) | 3);
    assert.equal(dev.mode & 0o7777, 0o666);
  });

  it('restores deep paths and names with spaces, unicode and newlines', () => {
    assert.equal(readFileSync(join(full, DEEP, 'leaf.txt'), 'utf8'), 'deep down\n');
    assert.equal(readFileSync(join(full, 'name with spaces.txt'), 'utf8'), 'spaces\n');
    assert.equal(readFileSync(join(full, UNICODE_NAME), 'utf8'), 'unicode\n');
    assert.equal(readFileSync(join(full, NEWLINE_NAME), 'utf8'), 'newline in the name\n');
    assert.deepEqual(readFileSync(join(full, 'dir with space/file in dir')), readFileSync(join(src, 'dir with space/file in dir')));
    assert.ok(readdirSync(full).includes(NEWLINE_NAME));
  });

  it('--path restores one file into another target, under its own name, with its metadata', async () => {
    const to = join(s.dir, 'one-file');
    const r = await holdfast(['restore', '--pool', pool, '--source', 'meta', '--point', point, '--path', 'dir with space/file in dir', '--to', to]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(to), ['file in dir']);
    assert.deepEqual(diffSnapshots(snapshotTree(join(src, 'dir with space/file in dir')), snapshotTree(join(to, 'file in dir'))), []);
  });

  it('--path restores one directory into another target, under its own name, hard links included', async () => {
    for (const sub of ['acl-dir', 'hard']) {
      const to = join(s.dir, `one-dir-${sub}`);
      const r = await holdfast(['restore', '--pool', pool, '--source', 'meta', '--point', point, '--path', sub, '--to', to]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readdirSync(to), [sub]);
      assert.deepEqual(diffSnapshots(snapshotTree(join(src, sub)), snapshotTree(join(to, sub))), [], sub);
    }
    // hard/x1 and hard/x2 are one file whose first name (aaa-first-link) is outside the selection.
    const to = join(s.dir, 'one-dir-hard');
    assert.equal(lstatSync(join(to, 'hard/x1')).ino, lstatSync(join(to, 'hard/x2')).ino, 'hard/x1 and hard/x2 share one inode');
  });

  it('--overwrite over a changed copy gives exactly the recovery point', async () => {
    const t = join(s.dir, 'overwrite');
    const first = await holdfast(['restore', '--pool', pool, '--source', 'meta', '--point', point, '--to', t]);
    assert.equal(first.code, 0, first.stderr);
    // Change contents, metadata and types.
    writeFileSync(join(t, 'owned-1234'), 'changed\n');
    writeFileSync(join(t, 'hard/pair-b'), 'changed through the second name\n');
    chmodSync(join(t, 'setuid'), 0o777);
    chownSync(join(t, 'owned-nobody'), 0, 0);
    setXattr(join(t, 'xattrs'), 'user.text', Buffer.from('changed'));
    run('setfacl', ['-b', join(t, 'acl-file')]);
    run('setfacl', ['-m', 'u:999:rwx', join(t, 'acl-dir')]);
    rmSync(join(t, 'empty-dir'), { recursive: true });
    writeFileSync(join(t, 'empty-dir'), 'a file where a directory was\n');
    rmSync(join(t, 'fifo'));
    mkdirSync(join(t, 'fifo/inner'), { recursive: true });
    rmSync(join(t, 'links/symlink'));
    writeFileSync(join(t, 'links/symlink'), 'a file where a symlink was\n');
    rmSync(join(t, 'name with spaces.txt'));
    symlinkSync(join(outside, 'outside-file'), join(t, 'name with spaces.txt'));
    rmSync(join(t, 'hard/sub/triple-2'));
    writeFileSync(join(t, 'hard/sub/triple-2'), 'no longer a link\n');
    rmSync(join(t, 'level-00'), { recursive: true });
    writeFileSync(join(t, 'sparse'), Buffer.alloc(SPARSE_SIZE, 1)); // fully allocated, other bytes
    setMtimeNs(t, 1n);

    const r = await holdfast(['restore', '--pool', pool, '--source', 'meta', '--point', point, '--to', t, '--overwrite']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(diffSnapshots(snapshotTree(src, { skipRootMeta: false }), snapshotTree(t, { skipRootMeta: false })), []);
    assert.equal(readFileSync(join(outside, 'outside-file'), 'utf8'), 'must never change\n');
    assert.ok(blocks(join(t, 'sparse')) < SPARSE_SIZE / 512 / 16, 'the sparse file is sparse again');
    assert.equal(lstatSync(join(t, 'hard/sub/triple-2')).ino, lstatSync(join(t, 'triple-3')).ino);
  });
});
