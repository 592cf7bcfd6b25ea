/**
 * btrfs fixtures for the tracker tests: a filesystem on a loop device (truncate, losetup,
 * mkfs.btrfs, mount; undone in reverse), random changes to a tree in a subvolume (writes inside
 * large files, appends, truncations, new and deleted files, renames of files and directories,
 * hard links, mode changes), and a fingerprint of a tree to compare a restore with. Needs root
 * and btrfs-progs.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, chmodSync, rmSync, truncateSync, unlinkSync, writeFileSync, writeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { randInt } from './tree-fixtures.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
const CDC_MAX = 1 * MiB;
const SMALL_FILE = 1 * MiB;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

export class LoopBtrfs {
  readonly mount: string;
  private readonly file: string;
  private device: string | undefined;

  constructor(dir: string) {
    this.file = join(dir, 'btrfs.img');
    this.mount = join(dir, 'mnt');
  }

  setup(sizeMiB = 600): void {
    writeFileSync(this.file, '');
    truncateSync(this.file, sizeMiB * MiB);
    run('mkfs.btrfs', ['-q', this.file]);
    this.device = run('losetup', ['--find', '--show', this.file]).trim();
    mkdirSync(this.mount, { recursive: true });
    run('mount', [this.device, this.mount]);
  }

  subvolume(name: string): string {
    const p = join(this.mount, name);
    run('btrfs', ['subvolume', 'create', p]);
    return p;
  }

  teardown(): void {
    if (existsSync(this.mount)) spawnSync('umount', [this.mount]);
    if (this.device) spawnSync('losetup', ['-d', this.device]);
    this.device = undefined;
  }
}

/** path → "type mode size digest" (or link target), every object under root but `skip`. */
export function fingerprint(root: string, skip: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (abs: string, rel: string): void => {
    const st = lstatSync(abs);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out.set(rel, `dir ${mode}`);
      for (const name of readdirSync(abs).sort()) {
        const r = rel === '.' ? name : `${rel}/${name}`;
        if (!skip.includes(r)) visit(join(abs, name), r);
      }
    } else if (st.isSymbolicLink()) out.set(rel, `symlink ${readlinkSync(abs)}`);
    else if (st.isFile()) out.set(rel, `file ${mode} ${st.size} ${createHash('sha256').update(readFileSync(abs)).digest('hex')}`);
    else out.set(rel, `other ${mode}`);
  };
  visit(root, '.');
  return out;
}

export function diffFingerprints(a: Map<string, string>, b: Map<string, string>): string[] {
  const lines: string[] = [];
  for (const [p, x] of a) if (b.get(p) !== x) lines.push(`${p}: ${x} vs ${b.get(p) ?? 'missing'}`);
  for (const p of b.keys()) if (!a.has(p)) lines.push(`${p}: extra`);
  return lines;
}

function files(root: string, skip: string): string[] {
  const out: string[] = [];
  const visit = (abs: string): void => {
    for (const name of readdirSync(abs)) {
      const p = join(abs, name);
      if (p === skip) continue;
      const st = lstatSync(p);
      if (st.isDirectory()) visit(p);
      else if (st.isFile()) out.push(p);
    }
  };
  visit(root);
  return out.sort();
}

function dirs(root: string, skip: string): string[] {
  const out: string[] = [];
  const visit = (abs: string): void => {
    for (const name of readdirSync(abs)) {
      const p = join(abs, name);
      if (p !== skip && lstatSync(p).isDirectory()) {
        out.push(p);
        visit(p);
      }
    }
  };
  visit(root);
  return out.sort();
}

/** A starting tree: a few large files (CDC re-chunking), small ones, nested directories. */
export function seedTree(root: string): void {
  for (const d of ['a/b', 'a/c', 'd']) mkdirSync(join(root, d), { recursive: true });
  for (let i = 0; i < 4; i++) writeFileSync(join(root, 'a', `big${i}.bin`), randomBytes((6 + i * 3) * MiB));
  for (let i = 0; i < 40; i++) writeFileSync(join(root, i % 2 ? 'a/b' : 'd', `s${i}.txt`), randomBytes(100 + i * 997));
  writeFileSync(join(root, 'a/c/notes.txt'), 'text\n'.repeat(5000));
}

/**
 * One round of random changes under root (never inside `skip`). Returns an upper bound of the
 * bytes a tracker that reads only what changed may read for it.
 */
export function mutate(root: string, skip: string, rng: () => number, ops: number): number {
  let bound = 0;
  const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(rng() * xs.length)];
  for (let i = 0; i < ops; i++) {
    const all = files(root, skip);
    const f = pick(all);
    const op = rng();
    if (!f) break;
    const size = lstatSync(f).size;
    if (op < 0.3 && size > SMALL_FILE) {
      // overwrite inside a large file
      const len = randInt(rng, 1, 64) * 4 * KiB;
      const off = randInt(rng, 0, Math.max(0, size - len));
      const fd = openSync(f, 'r+');
      writeSync(fd, randomBytes(len), 0, len, off);
      closeSync(fd);
      bound += Math.min(size, len + 4 * CDC_MAX);
    } else if (op < 0.4) {
      const len = randInt(rng, 1, 300) * KiB;
      appendFileSync(f, randomBytes(len));
      bound += size + len <= SMALL_FILE ? size + len : len + 2 * CDC_MAX;
    } else if (op < 0.47 && size > 0) {
      const to = randInt(rng, 0, size - 1);
      truncateSync(f, to);
      bound += to <= SMALL_FILE ? to : 2 * CDC_MAX;
    } else if (op < 0.6) {
      const d = pick([root, ...dirs(root, skip)]) ?? root;
      const len = randInt(rng, 0, 200 * KiB);
      writeFileSync(join(d, `n${Date.now().toString(36)}${i}.bin`), randomBytes(len));
      bound += len;
    } else if (op < 0.7 && all.length > 10) {
      unlinkSync(f);
    } else if (op < 0.8) {
      const d = pick([root, ...dirs(root, skip)]) ?? root;
      renameSync(f, join(d, `r${i}-${Date.now().toString(36)}`));
    } else if (op < 0.87) {
      const ds = dirs(root, skip);
      const d = pick(ds);
      if (d) {
        const dest = join(root, `moved${i}-${Date.now().toString(36)}`);
        renameSync(d, dest);
      }
    } else if (op < 0.93) {
      chmodSync(f, pick([0o600, 0o644, 0o640, 0o755]) ?? 0o644);
    } else {
      const link = `${f}.hl${i}`;
      if (fstatLinks(f) < 3) {
        linkSync(f, link);
        bound += size; // a new link is read as a new path
      }
    }
  }
  return bound;
}

function fstatLinks(p: string): number {
  const fd = openSync(p, 'r');
  try {
    return fstatSync(fd).nlink;
  } finally {
    closeSync(fd);
  }
}

export function removeTree(p: string): void {
  rmSync(p, { recursive: true, force: true });
}
