/**
 * Every tracker runs the tracker contract (src/agent/trackers/tracker.case.test.ts) on a real
 * source of its kind: 'full' on a directory and on a raw image, 'qcow2-bitmap' on an offline
 * qcow2 and on one served by qemu-storage-daemon, 'btrfs' on a subvolume of a loop-mounted btrfs,
 * 'inotify' on a directory whose change journal runs in the test process.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { scratch, sh } from './cli-harness.js';
import { LoopBtrfs, MiB, fingerprint as treeFingerprint } from './btrfs-fixtures.js';
import { GRANULE, StorageDaemon, offlineTarget, qemuIoWrite, randomWrites, requireTools, dirtyBytes } from './qemu-fixtures.js';
import { prng } from './tree-fixtures.js';
import { changeJournals } from '../../src/agent/journal-registry.js';
import { trackerContract, type TrackerFixture } from '../../src/agent/trackers/tracker.case.test.js';
import { keepSpareDaemons } from '../../src/agent/trackers/storage-daemon.js';

const SNAPS = '.holdfast-snapshots';

/** The contract's fingerprint of an image file: one file entry named after it. */
function imageFingerprint(name: string, raw: Buffer): string {
  return `${name} file ${raw.length} ${createHash('sha256').update(raw).digest('hex')}`;
}

/** The contract's fingerprint of a tree (dirs, files by size and digest), from the files themselves. */
function dirFingerprint(root: string, skip: string[] = []): string {
  const lines: string[] = [];
  for (const [p, v] of treeFingerprint(root, skip)) {
    const [type, , size, digest] = v.split(' ');
    lines.push(type === 'file' ? `${p} file ${size} ${digest}` : `${p} ${type}`);
  }
  return lines.sort().join('\n');
}

function dirFixture(): TrackerFixture {
  const s = scratch('holdfast-contract-dir-');
  const root = join(s.dir, 'src');
  let i = 0;
  return {
    tracker: 'full',
    kind: 'dir',
    tracks: false,
    setup: () => {
      mkdirSync(join(root, 'sub'), { recursive: true });
      for (let k = 0; k < 10; k++) writeFileSync(join(root, 'sub', `f${k}`), randomBytes(5000 + k * 1000));
      return Promise.resolve({ path: root, stateDir: join(s.dir, 'state') });
    },
    change: () => {
      const len = 20_000;
      writeFileSync(join(root, `new${i++}`), randomBytes(len));
      return Promise.resolve(len);
    },
    fingerprint: () => Promise.resolve(dirFingerprint(root)),
    teardown: () => Promise.resolve(s.cleanup()),
  };
}

/** A directory the agent's change journal watches (as the agent daemon does for its dir sources). */
function inotifyFixture(): TrackerFixture {
  const s = scratch('holdfast-contract-inotify-');
  const root = join(s.dir, 'src');
  let i = 0;
  return {
    tracker: 'inotify',
    kind: 'dir',
    tracks: true,
    setup: () => {
      mkdirSync(join(root, 'sub', 'deep'), { recursive: true });
      for (let k = 0; k < 10; k++) writeFileSync(join(root, 'sub', `f${k}`), randomBytes(5000 + k * 1000));
      writeFileSync(join(root, 'big'), randomBytes(3 * MiB));
      changeJournals.watch('contract', root);
      return Promise.resolve({ path: root, stateDir: join(s.dir, 'state') });
    },
    change: () => {
      const n = i++;
      writeFileSync(join(root, `new${n}`), randomBytes(20_000));
      const fd = openSync(join(root, 'sub', `f${n % 10}`), 'r+');
      writeSync(fd, randomBytes(100), 0, 100, 10);
      closeSync(fd);
      mkdirSync(join(root, 'sub', 'deep', `d${n}`));
      writeFileSync(join(root, 'sub', 'deep', `d${n}`, 'x'), randomBytes(3000));
      if (n > 0) rmSync(join(root, `new${n - 1}`));
      // the new files, and the modified one read whole (at most 14,000 bytes)
      return Promise.resolve(20_000 + 14_000 + 3000);
    },
    fingerprint: () => Promise.resolve(dirFingerprint(root)),
    teardown: () => {
      changeJournals.stop('contract');
      s.cleanup();
      return Promise.resolve();
    },
  };
}

function rawImageFixture(): TrackerFixture {
  const s = scratch('holdfast-contract-raw-');
  const img = join(s.dir, 'disk.raw');
  return {
    tracker: 'full',
    kind: 'image',
    tracks: false,
    setup: () => {
      writeFileSync(img, randomBytes(4 * MiB));
      return Promise.resolve({ path: img, stateDir: join(s.dir, 'state') });
    },
    change: () => {
      const fd = openSync(img, 'r+');
      writeSync(fd, randomBytes(4096), 0, 4096, 100_000);
      closeSync(fd);
      return Promise.resolve(4 * MiB); // no change map: a changed raw image is read whole
    },
    fingerprint: () => Promise.resolve(imageFingerprint('disk.raw', readFileSync(img))),
    teardown: () => Promise.resolve(s.cleanup()),
  };
}

function qcow2Fixture(live: boolean): TrackerFixture {
  const s = scratch(`holdfast-contract-qcow2${live ? '-live' : ''}-`);
  const img = join(s.dir, 'disk.qcow2');
  const size = 16 * MiB;
  const rng = prng(42);
  const vm = new StorageDaemon(img, s.dir);
  return {
    tracker: 'qcow2-bitmap',
    kind: 'image',
    tracks: true,
    setup: async () => {
      requireTools('qemu-img', 'qemu-io', 'qemu-storage-daemon');
      sh('qemu-img', ['create', '-q', '-f', 'qcow2', img, String(size)]);
      await qemuIoWrite(s.dir, offlineTarget(img), randomWrites(rng, size, 10));
      if (live) await vm.start();
      // Offline, as in an agent: each committed sync leaves a spare daemon the next one takes
      // (the CLI's path, a daemon started per sync, is tracker-qcow2.test.ts's).
      else await keepSpareDaemons(true);
      return { path: img, stateDir: join(s.dir, 'state'), extra: live ? { qemu: { qmpSocket: vm.qmpSocket, node: vm.node, nbdSocket: vm.nbdSocket } } : {} };
    },
    change: async () => {
      const ws = randomWrites(rng, size, 6);
      await qemuIoWrite(s.dir, live ? vm.target : offlineTarget(img), ws);
      return dirtyBytes(ws, size);
    },
    fingerprint: () => {
      const raw = join(s.dir, 'now.raw');
      const src = live ? ['--image-opts', vm.target[1] as string] : ['-f', 'qcow2', img];
      sh('qemu-img', ['convert', '-U', ...src, '-O', 'raw', raw]);
      const fp = imageFingerprint('disk.qcow2', readFileSync(raw));
      rmSync(raw);
      return Promise.resolve(fp);
    },
    teardown: async () => {
      if (live) await vm.stop();
      else await keepSpareDaemons(false);
      s.cleanup();
    },
  };
}

function btrfsFixture(): TrackerFixture {
  const s = scratch('holdfast-contract-btrfs-');
  const fs = new LoopBtrfs(s.dir);
  let vol = '';
  let i = 0;
  return {
    tracker: 'btrfs',
    kind: 'btrfs',
    tracks: true,
    setup: () => {
      requireTools('mkfs.btrfs', 'btrfs');
      fs.setup(300);
      vol = fs.subvolume('vol');
      mkdirSync(join(vol, 'd'));
      writeFileSync(join(vol, 'd', 'big'), randomBytes(8 * MiB));
      // Sparse: data at 1-5 MiB and 7-11 MiB of 12 MiB; changes land inside the data.
      const sparse = openSync(join(vol, 'd', 'sparse'), 'w');
      writeSync(sparse, randomBytes(4 * MiB), 0, 4 * MiB, 1 * MiB);
      writeSync(sparse, randomBytes(4 * MiB), 0, 4 * MiB, 7 * MiB);
      closeSync(sparse);
      truncateSync(join(vol, 'd', 'sparse'), 12 * MiB);
      for (let k = 0; k < 10; k++) writeFileSync(join(vol, `f${k}`), randomBytes(3000 * (k + 1)));
      return Promise.resolve({ path: vol, stateDir: join(s.dir, 'state') });
    },
    change: () => {
      const fd = openSync(join(vol, 'd', 'big'), 'r+');
      writeSync(fd, randomBytes(GRANULE), 0, GRANULE, (1 + (i % 6)) * MiB);
      closeSync(fd);
      const sp = openSync(join(vol, 'd', 'sparse'), 'r+');
      writeSync(sp, randomBytes(4096), 0, 4096, (i % 2 ? 8 : 2) * MiB + 300_000);
      closeSync(sp);
      writeFileSync(join(vol, `new${i++}`), randomBytes(10_000));
      // Around each change: at most the chunk before, the next cut and a look-ahead (≤ 3 MiB);
      // reading the sparse file whole (8 MiB of data) would exceed this.
      return Promise.resolve(3 * MiB + 3 * MiB + 10_000);
    },
    fingerprint: () => Promise.resolve(dirFingerprint(vol, [SNAPS])),
    teardown: () => {
      try {
        fs.teardown();
      } finally {
        s.cleanup();
      }
      return Promise.resolve();
    },
  };
}

trackerContract('full, directory', dirFixture());
trackerContract('inotify, directory', inotifyFixture());
trackerContract('full, raw image', rawImageFixture());
trackerContract('qcow2-bitmap, offline image (spare daemons)', qcow2Fixture(false));
trackerContract('qcow2-bitmap, running QEMU', qcow2Fixture(true));
trackerContract('btrfs, subvolume', btrfsFixture());
