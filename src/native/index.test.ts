/** Unit tests of the native addon against real system calls, in a temporary directory (run as root). */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { alignedBuffer, DIRECT_ALIGN, futimens, getXattr, listXattrs, mknod, seekData, seekHole, setXattr, utimensNoFollow } from './index.js';
import type { NativeError } from './index.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const { S_IFBLK, S_IFCHR, S_IFIFO } = fs.constants;

let dir = '';
let serial = 0;
/** A fresh path in the test directory. */
function fresh(name: string): string {
  serial += 1;
  return join(dir, `${serial}-${name}`);
}
function freshFile(name: string, content = ''): string {
  const p = fresh(name);
  fs.writeFileSync(p, content, { mode: 0o644 });
  fs.chmodSync(p, 0o644); // independent of the umask, so ACL masks compare equal
  return p;
}

/** Asserts that `fn` throws a Node-style system error with these properties. */
function assertSysError(fn: () => unknown, want: { code: string; syscall: string; path?: string }): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Error);
    const e = err as NativeError;
    assert.equal(e.code, want.code);
    assert.equal(e.syscall, want.syscall);
    const errnoValue = osConstants.errno[want.code as keyof typeof osConstants.errno];
    assert.equal(e.errno, -errnoValue);
    assert.equal(e.path, want.path);
    assert.match(e.message, new RegExp(`^${want.code}: [a-z].*, ${want.syscall}`));
    if (want.path !== undefined) assert.ok(e.message.endsWith(`, ${want.syscall} '${want.path}'`), e.message);
    return true;
  });
}

function userNames(path: string): string[] {
  return listXattrs(path).filter((n) => n.startsWith('user.')).sort();
}

/** File system type of `path` as df reports it (ext4, btrfs, xfs, tmpfs, overlay, ...). */
function fsTypeOf(path: string): string {
  const lines = execFileSync('df', ['--output=fstype', path], { encoding: 'utf8' }).trim().split('\n');
  return (lines[lines.length - 1] ?? 'unknown').trim();
}

before(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'holdfast-native-'));
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('extended attributes', () => {
  it('lists none on a new file', () => {
    assert.deepEqual(userNames(freshFile('empty')), []);
  });

  it('sets, lists and gets user.* attributes', () => {
    const p = freshFile('user');
    const big = Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7) & 0xff));
    setXattr(p, 'user.holdfast.a', Buffer.from('alpha'));
    setXattr(p, 'user.holdfast.empty', Buffer.alloc(0));
    setXattr(p, 'user.holdfast.big', big);
    setXattr(p, 'user.holdfast.binary', Buffer.from([0, 1, 0, 255]));
    const many = Array.from({ length: 30 }, (_, i) => `user.holdfast.n${String(i).padStart(2, '0')}`);
    for (const n of many) setXattr(p, n, Buffer.from(n));

    assert.deepEqual(userNames(p), ['user.holdfast.a', 'user.holdfast.big', 'user.holdfast.binary', 'user.holdfast.empty', ...many].sort());
    assert.deepEqual(getXattr(p, 'user.holdfast.a'), Buffer.from('alpha'));
    assert.deepEqual(getXattr(p, 'user.holdfast.empty'), Buffer.alloc(0));
    assert.deepEqual(getXattr(p, 'user.holdfast.big'), big);
    assert.deepEqual(getXattr(p, 'user.holdfast.binary'), Buffer.from([0, 1, 0, 255]));
    assert.ok(Buffer.isBuffer(getXattr(p, 'user.holdfast.a')));

    setXattr(p, 'user.holdfast.a', Buffer.from('replaced'));
    assert.deepEqual(getXattr(p, 'user.holdfast.a'), Buffer.from('replaced'));
  });

  it('takes a plain Uint8Array view, honouring its offset', () => {
    const p = freshFile('view');
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    setXattr(p, 'user.holdfast.view', new Uint8Array(backing.buffer, 2, 3));
    assert.deepEqual(getXattr(p, 'user.holdfast.view'), Buffer.from([1, 2, 3]));
  });

  it('does not follow symlinks', () => {
    const target = freshFile('target');
    setXattr(target, 'user.holdfast.a', Buffer.from('on target'));
    const link = fresh('link');
    fs.symlinkSync(target, link);
    assert.deepEqual(userNames(link), []);
    assertSysError(() => getXattr(link, 'user.holdfast.a'), { code: 'ENODATA', syscall: 'lgetxattr', path: link });
    // The kernel allows user.* only on regular files and directories.
    assertSysError(() => setXattr(link, 'user.holdfast.a', Buffer.from('x')), { code: 'EPERM', syscall: 'lsetxattr', path: link });
  });

  it('round-trips a POSIX ACL as its raw system.posix_acl_access value', () => {
    const source = freshFile('acl-source');
    const copy = freshFile('acl-copy');
    execFileSync('setfacl', ['-m', 'u:nobody:r', source]);
    assert.ok(listXattrs(source).includes('system.posix_acl_access'));

    const acl = getXattr(source, 'system.posix_acl_access');
    assert.ok(acl.length > 4, 'ACL value has a header and entries');
    setXattr(copy, 'system.posix_acl_access', acl);

    const getfacl = (p: string): string => execFileSync('getfacl', ['--omit-header', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(getfacl(copy), /^user:nobody:r--$/m);
    assert.equal(getfacl(copy), getfacl(source));
    assert.deepEqual(getXattr(copy, 'system.posix_acl_access'), acl);
  });

  it('throws ENODATA for a missing attribute', () => {
    const p = freshFile('nodata');
    assertSysError(() => getXattr(p, 'user.holdfast.missing'), { code: 'ENODATA', syscall: 'lgetxattr', path: p });
    assert.throws(() => getXattr(p, 'user.holdfast.missing'), { message: `ENODATA: no data available, lgetxattr '${p}'` });
  });

  it('throws ENOENT for a missing file and ENOTSUP for an unknown namespace', () => {
    const missing = join(dir, 'no-such-file');
    assertSysError(() => listXattrs(missing), { code: 'ENOENT', syscall: 'llistxattr', path: missing });
    assertSysError(() => getXattr(missing, 'user.x'), { code: 'ENOENT', syscall: 'lgetxattr', path: missing });
    const p = freshFile('namespace');
    assertSysError(() => setXattr(p, 'nonamespace', Buffer.from('x')), { code: 'ENOTSUP', syscall: 'lsetxattr', path: p });
  });

  it('rejects bad arguments before any system call', () => {
    const p = freshFile('args');
    assert.throws(() => getXattr(`${p}\0suffix`, 'user.x'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => setXattr(p, 'user.x', 'text' as unknown as Buffer), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => listXattrs(42 as unknown as string), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('sparse files', () => {
  it('reports data and hole boundaries with seekData and seekHole', (t) => {
    const p = fresh('sparse');
    const fd = fs.openSync(p, 'w+');
    try {
      fs.ftruncateSync(fd, 2 * MiB);
      fs.writeSync(fd, Buffer.alloc(4 * KiB, 0xaa), 0, 4 * KiB, 0);
      fs.writeSync(fd, Buffer.alloc(4 * KiB, 0xbb), 0, 4 * KiB, MiB);
      fs.fsyncSync(fd);

      const fsType = fsTypeOf(dir);
      t.diagnostic(`filesystem under ${tmpdir()}: ${fsType}`);
      // An offset inside data or a hole answers itself; otherwise the next boundary.
      const walk = [
        seekData(fd, 0), seekHole(fd, 0), seekData(fd, 100), seekData(fd, 4 * KiB), seekHole(fd, 4 * KiB),
        seekHole(fd, MiB), seekData(fd, MiB + 4 * KiB), seekHole(fd, MiB + 4 * KiB),
      ];
      const exact = [0, 4 * KiB, 100, MiB, 4 * KiB, MiB + 4 * KiB, -1, MiB + 4 * KiB];
      // Without hole reporting the kernel calls the whole file data (the only hole is at EOF).
      const allData = [0, 2 * MiB, 100, 4 * KiB, 2 * MiB, 2 * MiB, MiB + 4 * KiB, 2 * MiB];
      if (['ext4', 'btrfs', 'xfs', 'tmpfs'].includes(fsType)) {
        assert.deepEqual(walk, exact);
      } else {
        assert.ok([exact, allData].some((w) => w.every((v, i) => walk[i] === v)), `unexpected answer on ${fsType}: ${walk.join(',')}`);
      }

      // At and beyond the end of the file there is neither data nor hole.
      assert.equal(seekData(fd, 2 * MiB), -1);
      assert.equal(seekHole(fd, 2 * MiB), -1);
      assert.equal(seekData(fd, 2 ** 53), -1);
      assert.equal(seekHole(fd, 2 ** 53), -1);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('rejects offsets outside 0..2^53 and throws EBADF without a path', () => {
    const fd = fs.openSync(freshFile('offsets'), 'r');
    try {
      assert.throws(() => seekData(fd, -1), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => seekHole(fd, 2 ** 54), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => seekHole(fd, 1.5), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    } finally {
      fs.closeSync(fd);
    }
    assertSysError(() => seekData(2 ** 31 - 1, 0), { code: 'EBADF', syscall: 'lseek' });
  });
});

describe('mknod', () => {
  it('creates a fifo', () => {
    const p = fresh('fifo');
    mknod(p, S_IFIFO | 0o600, 0);
    const st = fs.lstatSync(p);
    assert.ok(st.isFIFO());
    assert.equal(st.mode & 0o7777, 0o600);
  });

  it('creates a character device with the rdev fs.lstat reports', () => {
    const p = fresh('null');
    const rdev = fs.statSync('/dev/null').rdev; // makedev(1, 3)
    mknod(p, S_IFCHR | 0o600, rdev);
    const st = fs.lstatSync(p);
    assert.ok(st.isCharacterDevice());
    assert.equal(st.rdev, rdev);
    assert.equal(execFileSync('stat', ['-c', '%t,%T', p], { encoding: 'utf8' }).trim(), '1,3');
  });

  it('creates a block device from a bigint rdev', () => {
    const p = fresh('loop0');
    mknod(p, S_IFBLK | 0o600, 7n << 8n); // makedev(7, 0)
    const st = fs.lstatSync(p, { bigint: true });
    assert.ok(st.isBlockDevice());
    assert.equal(st.rdev, 7n << 8n);
    assert.equal(execFileSync('stat', ['-c', '%t,%T', p], { encoding: 'utf8' }).trim(), '7,0');
  });

  it('throws EEXIST with the path', () => {
    const p = freshFile('exists');
    assertSysError(() => mknod(p, S_IFIFO | 0o600, 0), { code: 'EEXIST', syscall: 'mknod', path: p });
  });
});

describe('times', () => {
  it('utimensNoFollow sets a symlink\'s own times to the nanosecond and leaves the target alone', () => {
    const target = freshFile('time-target');
    fs.utimesSync(target, 1000, 2000);
    const targetBefore = fs.statSync(target, { bigint: true });
    const link = fresh('time-link');
    fs.symlinkSync(target, link);

    const atimeNs = 1_234_567_890_123_456_789n;
    const mtimeNs = 1_300_000_000_987_654_321n;
    utimensNoFollow(link, atimeNs, mtimeNs);

    const linkAfter = fs.lstatSync(link, { bigint: true });
    assert.equal(linkAfter.mtimeNs, mtimeNs);
    assert.equal(linkAfter.atimeNs, atimeNs);
    const targetAfter = fs.statSync(target, { bigint: true });
    assert.equal(targetAfter.mtimeNs, targetBefore.mtimeNs);
    assert.equal(targetAfter.atimeNs, targetBefore.atimeNs);
  });

  it('utimensNoFollow works on a dangling symlink and a plain file', () => {
    const link = fresh('dangling');
    fs.symlinkSync(join(dir, 'nowhere'), link);
    utimensNoFollow(link, 5n, 1_000_000_007n);
    assert.equal(fs.lstatSync(link, { bigint: true }).mtimeNs, 1_000_000_007n);

    const file = freshFile('plain');
    utimensNoFollow(file, 1n, 1_600_000_000_000_000_001n);
    assert.equal(fs.lstatSync(file, { bigint: true }).mtimeNs, 1_600_000_000_000_000_001n);
  });

  it('futimens sets an open file\'s times to the nanosecond, before 1970 too', () => {
    const p = freshFile('futimens', 'content');
    const fd = fs.openSync(p, 'r+');
    try {
      const atimeNs = -1_500_000_001n; // 1969: floor division, tv_nsec stays positive
      const mtimeNs = 1_700_000_000_000_000_001n;
      futimens(fd, atimeNs, mtimeNs);
      const st = fs.fstatSync(fd, { bigint: true });
      assert.equal(st.atimeNs, atimeNs);
      assert.equal(st.mtimeNs, mtimeNs);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('throws with code and path, and rejects out-of-range times', () => {
    const missing = join(dir, 'missing-for-times');
    assertSysError(() => utimensNoFollow(missing, 0n, 0n), { code: 'ENOENT', syscall: 'utimensat', path: missing });
    assertSysError(() => futimens(2 ** 31 - 1, 0n, 0n), { code: 'EBADF', syscall: 'futimens' });
    const p = freshFile('range');
    assert.throws(() => utimensNoFollow(p, 1n << 64n, 0n), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => utimensNoFollow(p, 0n, 5 as unknown as bigint), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('listDirStats', () => {
  it('returns every entry with lstat fields equal to fs.lstat, and errors for none', async () => {
    const { listDirStats, STAT, STAT_FIELDS } = await import('./index.js');
    const { mkdtempSync, writeFileSync, symlinkSync, mkdirSync, lstatSync, rmSync } = fs;
    const dir = mkdtempSync(join(tmpdir(), 'hf-lds-'));
    try {
      writeFileSync(join(dir, 'a'), 'hello');
      symlinkSync('a', join(dir, 'link'));
      mkdirSync(join(dir, 'sub'));
      const { names, stats } = listDirStats(dir);
      assert.deepEqual([...names].sort(), ['a', 'link', 'sub']);
      names.forEach((name, i) => {
        const st = lstatSync(join(dir, name), { bigint: true });
        const f = (k: keyof typeof STAT): bigint => stats[i * STAT_FIELDS + STAT[k]] as bigint;
        assert.equal(f('mode'), st.mode, name);
        assert.equal(f('size'), st.size, name);
        assert.equal(f('ino'), st.ino, name);
        assert.equal(f('mtimeNs'), st.mtimeNs, name);
        assert.equal(f('ctimeNs'), st.ctimeNs, name);
        assert.equal(f('nlink'), st.nlink, name);
      });
      assert.throws(() => listDirStats(join(dir, 'missing')), (err: NodeJS.ErrnoException) => err.code === 'ENOENT' && err.syscall === 'opendir');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('listDirStatsAsync gives the same listing from a pool thread, and rejects like fs', async () => {
    const { listDirStats, listDirStatsAsync } = await import('./index.js');
    const dir = fs.mkdtempSync(join(tmpdir(), 'hf-lds-async-'));
    try {
      for (let i = 0; i < 300; i++) fs.writeFileSync(join(dir, `f${i}-${'x'.repeat(i % 40)}`), String(i));
      fs.mkdirSync(join(dir, 'sub'));
      const [a, b] = await Promise.all([listDirStatsAsync(dir), listDirStatsAsync(join(dir, 'sub'))]);
      const sync = listDirStats(dir);
      assert.deepEqual(a.names, sync.names);
      assert.deepEqual([...a.stats], [...sync.stats]);
      assert.deepEqual(b.names, []);
      await assert.rejects(listDirStatsAsync(join(dir, 'missing')), (err: NodeJS.ErrnoException) => err.code === 'ENOENT' && err.syscall === 'opendir' && err.path === join(dir, 'missing'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('direct I/O buffers', () => {
  it('alignedBuffer gives a block-aligned view that an O_DIRECT read accepts', () => {
    const buf = alignedBuffer(2 * DIRECT_ALIGN);
    assert.ok(buf, 'the addon tells addresses');
    assert.equal(buf.length, 2 * DIRECT_ALIGN);
    const dir = fs.mkdtempSync(join(tmpdir(), 'hf-direct-'));
    try {
      const path = join(dir, 'f');
      const data = Buffer.alloc(3 * DIRECT_ALIGN, 7);
      fs.writeFileSync(path, data);
      let fd: number;
      try {
        fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
      } catch {
        return; // a file system without O_DIRECT (tmpfs): nothing more to check here
      }
      try {
        // Misaligned memory fails with EINVAL; the aligned view must not.
        assert.equal(fs.readSync(fd, buf, 0, buf.length, DIRECT_ALIGN), buf.length);
        assert.ok(buf.equals(data.subarray(0, buf.length)));
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
